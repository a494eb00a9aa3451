"""JobStatus & co. from the API's JSON, and request helpers, no server."""
from datetime import datetime, timedelta, timezone

import pytest

from genworker_client import JobPage, JobStatus, Queue, Worker
from genworker_client._core import check_id, job_path, list_params, seconds_param, submit_body
from genworker_client.models import format_time, parse_time

JOB = {
    "id": "fox-001", "task": "t2v-A14B", "state": "completed", "attempt": 1, "worker": "gpu-1",
    "submitter": "alice", "submitted_at": "2026-11-29T01:02:30Z", "started_at": "2026-11-29T01:02:32.5Z",
    "ended_at": "2026-11-29T01:09:34.123456789+01:00", "cancel_requested": False,
    "progress": {"percent": 100, "step": 40, "total": 40, "eta_s": 0, "phase": None},
    "result": {"version": 1, "id": "fox-001", "event": "completed", "status": "completed",
               "output": "/out/fox-001.mp4", "message": "completed"},
    "timeline": [{"event": "submitted", "at": "2026-11-29T01:02:30Z", "by": "alice"},
                 {"event": "claimed", "at": "2026-11-29T01:02:31Z", "attempt": 1, "worker": "gpu-1"},
                 {"event": "ended", "at": None, "attempt": 1}],
    "new_field": [1, 2],
}


def test_job_status_from_dict():
    s = JobStatus.from_dict(JOB)
    assert s.id == "fox-001" and s.state == "completed" and s.ended and s.attempt == 1
    assert s.submitted_at == datetime(2026, 11, 29, 1, 2, 30, tzinfo=timezone.utc)
    assert s.started_at.microsecond == 500000
    assert s.ended_at.utcoffset() == timedelta(hours=1) and s.ended_at.microsecond == 123456
    assert s.progress.percent == 100 and s.progress.phase is None
    assert [t.event for t in s.timeline] == ["submitted", "claimed", "ended"]
    assert s.timeline[1].worker == "gpu-1" and s.timeline[2].at is None
    assert s.output == "/out/fox-001.mp4" and s.message == "completed" and s.reason is None
    assert s.raw["new_field"] == [1, 2] and s.to_dict() == JOB


def test_minimal_job_and_nulls():
    s = JobStatus.from_dict({"id": "j", "state": "queued", "cancel_requested": False, "task": None,
                             "progress": None, "result": None})
    assert not s.ended and s.progress is None and s.result is None and s.timeline == []
    assert s.reason is None and s.output_uri is None


def test_not_a_job():
    with pytest.raises(ValueError):
        JobStatus.from_dict({"state": "queued"})
    with pytest.raises(ValueError):
        JobStatus.from_dict(["x"])


def test_page_workers_queues():
    p = JobPage.from_dict({"jobs": [JOB], "next_cursor": "abc"})
    assert p.jobs[0].id == "fox-001" and p.next_cursor == "abc"
    assert JobPage.from_dict({"jobs": [], "next_cursor": None}).next_cursor is None
    w = Worker.from_dict({"name": "w1", "slots": 1, "busy": 1, "online": True, "running": ["fox-001"],
                          "last_heartbeat": "2026-11-29T01:02:30Z", "node": None})
    assert w.running == ["fox-001"] and w.last_heartbeat.year == 2026 and w.node is None
    q = Queue.from_dict({"name": "genworker.jobs", "depth": 3})
    assert (q.name, q.depth) == ("genworker.jobs", 3)


@pytest.mark.parametrize("text,ok", [
    ("2026-01-02T03:04:05Z", True), ("2026-01-02T03:04:05.1+02:00", True), ("2026-01-02 03:04:05", True),
    ("2026-01-02T03:04:05-0530", True), ("yesterday", False), ("2026-13-02T03:04:05Z", False), (None, False),
])
def test_parse_time(text, ok):
    assert (parse_time(text) is not None) == ok


def test_format_time():
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05Z"
    assert format_time(datetime(2026, 1, 2, 4, 4, 5, 250000, tzinfo=timezone(timedelta(hours=1)))) == \
        "2026-01-02T03:04:05.250000Z"
    assert format_time("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05Z"
    with pytest.raises(TypeError):
        format_time(5)


def test_submit_body():
    b = submit_body("t2v-A14B", {"prompt": "p"}, None, None, {})
    assert len(b["id"]) == 32 and b["task"] == "t2v-A14B" and b["params"] == {"prompt": "p"} and "timeout_s" not in b
    b = submit_body("t2v-A14B", {"prompt": "p"}, "my_id-1", 60, {"webhook": {"url": "https://x"}})
    assert b == {"id": "my_id-1", "task": "t2v-A14B", "params": {"prompt": "p"}, "timeout_s": 60,
                 "webhook": {"url": "https://x"}}
    for bad in ("", "a/b", "a" * 129, "sp ace"):
        with pytest.raises(ValueError):
            submit_body("t2v-A14B", {}, bad, None, {})
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError):
            submit_body("t2v-A14B", {}, None, bad, {})


def test_small_helpers():
    assert job_path("a_b-C") == "/v1/jobs/a_b-C" and job_path("x", "/wait") == "/v1/jobs/x/wait"
    with pytest.raises(ValueError):
        check_id("../etc")
    assert [seconds_param(v) for v in (10, 10.0, 0.25, 1 / 3, -1)] == ["10", "10", "0.25", "0.333", "0"]
    assert list_params("queued", None, None, datetime(2026, 1, 1, tzinfo=timezone.utc), None, 5, "c") == \
        {"state": "queued", "since": "2026-01-01T00:00:00Z", "limit": "5", "cursor": "c"}
