"""Error mapping (genworker_client.errors), no server."""
import json
import pickle

import pytest

from genworker_client import (ApiError, BadRequest, Forbidden, JobCancelled, JobError, JobFailed, JobStatus, NotFound,
                              TooLarge, Unauthorized, Unavailable, WaitTimeout)
from genworker_client._core import outcome
from genworker_client.errors import error_from_response


def body(code, message):
    return json.dumps({"error": {"code": code, "message": message}}).encode()


@pytest.mark.parametrize("status,code,cls", [
    (400, "bad_request", BadRequest),
    (401, "unauthorized", Unauthorized),
    (403, "forbidden", Forbidden),
    (404, "not_found", NotFound),
    (413, "too_large", TooLarge),
    (503, "unavailable", Unavailable),
])
def test_api_error_document(status, code, cls):
    e = error_from_response(status, body(code, "words"))
    assert type(e) is cls and isinstance(e, ApiError)
    assert (e.status, e.code, e.message) == (status, code, "words")
    assert str(e) == f"{status} {code}: words"


def test_status_wins_over_code_and_code_maps_unusual_status():
    assert type(error_from_response(404, body("forbidden", "x"))) is NotFound
    assert type(error_from_response(418, body("forbidden", "x"))) is Forbidden
    e = error_from_response(409, body("conflict", "x"))
    assert type(e) is ApiError and e.code == "conflict"


def test_non_json_bodies():
    e = error_from_response(502, b"<html>Bad Gateway</html>")
    assert type(e) is ApiError and e.code == "http_502" and "Bad Gateway" in e.message
    e = error_from_response(401, b"")
    assert type(e) is Unauthorized and e.code == "http_401" and e.message == "Unauthorized"
    e = error_from_response(500, b"\xff\xfe")
    assert e.code == "http_500"
    e = error_from_response(400, json.dumps({"error": "flat string"}).encode())
    assert type(e) is BadRequest and e.code == "http_400"


def test_api_errors_pickle():
    e = error_from_response(403, body("forbidden", "read role"))
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is Forbidden and (e2.status, e2.code, e2.message) == (403, "forbidden", "read role")


def status(state, **result):
    return JobStatus.from_dict({"id": "j", "state": state, "cancel_requested": False, "result": result or None})


def test_outcome():
    assert outcome(status("queued")) is None
    assert outcome(status("running")) is None
    s = status("completed", event="completed", output="/o.mp4")
    assert outcome(s) is s
    with pytest.raises(JobFailed) as ei:
        outcome(status("failed", event="failed", reason="exit_code", message="exit code 3"))
    assert ei.value.reason == "exit_code" and ei.value.status.state == "failed" and ei.value.job_id == "j"
    assert "exit_code" in str(ei.value)
    with pytest.raises(JobCancelled) as ei:
        outcome(status("cancelled", event="cancelled", reason="cancelled_while_running"))
    assert ei.value.result["reason"] == "cancelled_while_running"
    assert isinstance(ei.value, JobError)


def test_wait_timeout_is_a_timeout_error():
    e = WaitTimeout("j", None, "not yet")
    assert isinstance(e, TimeoutError) and isinstance(e, JobError)
    assert e.status is None and e.result is None and str(e) == "not yet"
    e2 = pickle.loads(pickle.dumps(WaitTimeout("j", status("running"), "m")))
    assert e2.status.state == "running"
