"""Makes skipped integration tests impossible to miss: a skip is not a pass."""
import os

NOT_RUN_MARK = "INTEGRATION TESTS NOT RUN"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reports = terminalreporter.stats.get("skipped", [])
    hits = [r for r in reports if NOT_RUN_MARK in str(getattr(r, "longrepr", ""))]
    if not hits:
        return
    tr = terminalreporter
    tr.write_sep("!", NOT_RUN_MARK, red=True, bold=True)
    seen = set()
    for r in hits:
        reason = str(r.longrepr[-1]) if isinstance(r.longrepr, tuple) else str(r.longrepr)
        if reason not in seen:
            seen.add(reason)
            tr.write_line(reason, red=True, bold=True)
    tr.write_line(
        "Skipped integration tests prove nothing about the client against the API. Set GENWORKER_API_URL, "
        "GENWORKER_API_TOKEN, GENWORKER_API_TOKEN_READ, GENWORKER_API_TOKEN_ADMIN and GENWORKER_API_RESTART "
        "(or GENWORKER_REQUIRE_INTEGRATION=1 to make their absence an error).",
        red=True,
    )
    tr.write_sep("!", NOT_RUN_MARK, red=True, bold=True)
