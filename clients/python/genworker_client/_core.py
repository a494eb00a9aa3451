"""What the sync and async clients share: request building, response handling, the
decision a wait or an event stream takes on each snapshot. No I/O here."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote

import httpx

from . import __version__
from .errors import ApiError, JobCancelled, JobFailed, error_from_response
from .models import CANCELLED, COMPLETED, FAILED, JobStatus, format_time
from .sse import ServerSentEvent

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
USER_AGENT = f"genworker-client-python/{__version__}"
MAX_WAIT_S = 60.0  # the API's bound on /wait's timeout_s and /cancel's wait_s
DEFAULT_POLL_S = 30.0
SSE_READ_TIMEOUT_S = 60.0  # the API sends a keepalive comment every 15 s


def check_id(job_id: str) -> str:
    """Raises ``ValueError`` unless ``job_id`` matches ``[A-Za-z0-9_-]{1,128}``."""
    if not isinstance(job_id, str) or not ID_RE.match(job_id):
        raise ValueError(f"job id must match [A-Za-z0-9_-]{{1,128}}: {job_id!r}")
    return job_id


def new_id() -> str:
    """A fresh job id (uuid4, hex)."""
    return uuid.uuid4().hex


def job_path(job_id: str, suffix: str = "") -> str:
    return "/v1/jobs/" + quote(check_id(job_id), safe="") + suffix


def base_headers(token: Optional[str], extra: Optional[Mapping[str, str]]) -> Dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if extra:
        headers.update(extra)
    return headers


def normalize_url(url: str) -> str:
    if not isinstance(url, str) or not url:
        raise ValueError("url is required (e.g. http://127.0.0.1:8080)")
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def submit_body(task: str, params: Mapping[str, Any], job_id: Optional[str], timeout_s: Optional[int],
                extra: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``POST /v1/jobs`` body: the job message, with an id made up when none is given
    (the id is what makes retrying the submit safe)."""
    if not isinstance(task, str) or not task:
        raise ValueError("task is required")
    if not isinstance(params, Mapping):
        raise TypeError("params must be a mapping")
    body: Dict[str, Any] = dict(extra)
    body["id"] = check_id(job_id) if job_id is not None else new_id()
    body["task"] = task
    body["params"] = dict(params)
    if timeout_s is not None:
        if isinstance(timeout_s, bool) or int(timeout_s) != timeout_s or timeout_s < 1:
            raise ValueError("timeout_s must be a whole number of seconds >= 1")
        body["timeout_s"] = int(timeout_s)
    return body


def list_params(state: Optional[str], task: Optional[str], submitter: Optional[str], since: Any, until: Any,
                limit: Optional[int], cursor: Optional[str]) -> Dict[str, str]:
    q: Dict[str, str] = {}
    if state is not None:
        q["state"] = state
    if task is not None:
        q["task"] = task
    if submitter is not None:
        q["submitter"] = submitter
    if since is not None:
        q["since"] = format_time(since)
    if until is not None:
        q["until"] = format_time(until)
    if limit is not None:
        q["limit"] = str(int(limit))
    if cursor is not None:
        q["cursor"] = cursor
    return q


def seconds_param(value: float) -> str:
    """A number for a query string: ``10`` rather than ``10.0``, at most 3 decimals."""
    value = max(0.0, float(value))
    if value == int(value):
        return str(int(value))
    return ("%.3f" % value).rstrip("0").rstrip(".")


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds from a ``Retry-After`` header given in seconds (an HTTP date is ignored)."""
    v = headers.get("retry-after") if headers else None
    if not v:
        return 0.0
    try:
        return max(0.0, float(v))
    except ValueError:
        return 0.0


def raise_for_status(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        raise error_from_response(resp.status_code, resp.content, resp.headers)


def parse_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise ApiError(resp.status_code, "bad_response", f"the API's answer is not JSON: {resp.text[:200]!r}") from exc


def parse_job(resp: httpx.Response) -> JobStatus:
    data = parse_json(resp)
    try:
        return JobStatus.from_dict(data)
    except ValueError as exc:
        raise ApiError(resp.status_code, "bad_response", str(exc)) from exc


def outcome(status: JobStatus) -> Optional[JobStatus]:
    """For a wait: the status if the job completed, ``None`` if it has not ended; raises
    ``JobFailed`` / ``JobCancelled`` for the other ends."""
    if status.state == COMPLETED:
        return status
    if status.state == FAILED:
        raise JobFailed(status.id, status, _end_message(status))
    if status.state == CANCELLED:
        raise JobCancelled(status.id, status, _end_message(status))
    return None


def _end_message(status: JobStatus) -> str:
    parts = [f"job {status.id} {status.state}"]
    if status.reason:
        parts.append(f"({status.reason})")
    if status.message and status.message != status.reason:
        parts.append(f": {status.message}")
    return " ".join(parts[:2]) + ("".join(parts[2:]) if len(parts) > 2 else "")


def event_snapshot(ev: ServerSentEvent) -> Tuple[Optional[JobStatus], bool]:
    """What an SSE event means: ``(snapshot or None, is_end)``.

    ``event: job`` (or an untyped event) carries a job; ``event: end`` closes the stream and
    may carry the final job too. Data that is not a job document is ignored."""
    is_end = ev.event == "end"
    if ev.event not in ("job", "message", "end"):
        return None, False
    snap: Optional[JobStatus] = None
    if ev.data.strip():
        try:
            snap = JobStatus.from_dict(json.loads(ev.data))
        except ValueError:
            snap = None
    return snap, is_end
