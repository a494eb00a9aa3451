"""The clients' retry, wait and event-stream logic over httpx.MockTransport: no server,
no sleeping. (The integration tests run the same paths against the real API.)"""
import asyncio
import json

import httpx
import pytest

from genworker_client import (ApiConnectionError, AsyncClient, Client, Forbidden, JobCancelled, JobFailed, NotFound,
                              RetryPolicy, Unauthorized, Unavailable, WaitTimeout)


def job(state, id="j1", **kw):
    d = {"id": id, "state": state, "cancel_requested": False}
    d.update(kw)
    return d


def err(status, code):
    return httpx.Response(status, json={"error": {"code": code, "message": code + "!"}})


class Script:
    """A handler answering from a list of responses (or exceptions), recording requests."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(request)
        return step


def make_client(handler, **kw):
    c = Client("http://api.test", token="tok", http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kw)
    c._sleep = lambda s: None
    return c


def make_async_client(handler, **kw):
    c = AsyncClient("http://api.test", token="tok",
                    http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kw)

    async def no_sleep(s):
        return None

    c._sleep = no_sleep
    return c


CONNECT = httpx.ConnectError("connection refused")


def test_submit_retries_with_the_same_id():
    s = Script(CONNECT, err(503, "unavailable"), httpx.Response(502, text="bad gateway"),
               lambda r: httpx.Response(202, json=job("queued", id=json.loads(r.content)["id"])))
    c = make_client(s)
    j = c.submit("t2v-A14B", {"prompt": "p"}, timeout_s=60)
    assert j.created is True and j.last_status.state == "queued"
    bodies = [json.loads(r.content) for r in s.requests]
    assert len(bodies) == 4 and len({b["id"] for b in bodies}) == 1 and bodies[0]["id"] == j.id
    assert bodies[0] == {"id": j.id, "task": "t2v-A14B", "params": {"prompt": "p"}, "timeout_s": 60}
    assert s.requests[0].headers["authorization"] == "Bearer tok"
    assert s.requests[0].url.path == "/v1/jobs" and s.requests[0].method == "POST"


def test_submit_known_id_is_200_not_created():
    c = make_client(Script(httpx.Response(200, json=job("completed", id="same"))))
    j = c.submit("t2v-A14B", {"prompt": "p"}, id="same")
    assert j.created is False and j.id == "same" and j.last_status.ended


def test_errors_are_not_retried():
    for status, code, cls in [(401, "unauthorized", Unauthorized), (403, "forbidden", Forbidden),
                              (404, "not_found", NotFound)]:
        s = Script(err(status, code))
        with pytest.raises(cls) as ei:
            make_client(s).submit("t2v-A14B", {"prompt": "p"})
        assert len(s.requests) == 1 and ei.value.code == code


def test_retries_are_bounded():
    s = Script(CONNECT)
    with pytest.raises(ApiConnectionError):
        make_client(s, retry=RetryPolicy(max_attempts=3)).job("x").status()
    assert len(s.requests) == 4
    s = Script(err(503, "unavailable"))
    with pytest.raises(Unavailable):
        make_client(s, retry=RetryPolicy(max_attempts=2)).workers()
    assert len(s.requests) == 3


def test_job_handle_sends_nothing_until_used():
    s = Script(httpx.Response(200, json=job("running")))
    c = make_client(s)
    j = c.job("j1")
    assert s.requests == [] and j.created is None
    assert j.status().state == "running" and s.requests[0].url.path == "/v1/jobs/j1"


def test_wait_resumes_after_connection_errors():
    s = Script(httpx.Response(200, json=job("running")), CONNECT, httpx.ReadError("reset"), err(503, "unavailable"),
               httpx.Response(200, json=job("completed", result={"event": "completed", "output": "/o.mp4"})))
    status = make_client(s).job("j1").wait(poll_s=0.5)
    assert status.state == "completed" and status.output == "/o.mp4"
    r = s.requests[0]
    assert r.url.path == "/v1/jobs/j1/wait" and r.url.params["timeout_s"] == "0.5"


def test_wait_raises_for_failed_and_cancelled():
    with pytest.raises(JobFailed) as ei:
        make_client(Script(httpx.Response(200, json=job("failed", result={"reason": "timeout"})))).job("j1").wait()
    assert ei.value.reason == "timeout"
    with pytest.raises(JobCancelled):
        make_client(Script(httpx.Response(200, json=job("cancelled", result={"reason": "cancelled_before_start"})))) \
            .job("j1").wait()


def test_wait_timeout_leaves_the_job():
    s = Script(httpx.Response(200, json=job("running")))
    j = make_client(s).job("j1")
    with pytest.raises(WaitTimeout) as ei:
        j.wait(timeout=0.2)
    assert ei.value.status.state == "running"
    assert all(r.method == "GET" for r in s.requests)  # no cancel was sent
    assert float(s.requests[0].url.params["timeout_s"]) <= 0.2


def test_wait_timeout_while_the_api_is_down():
    c = make_client(Script(CONNECT), retry=RetryPolicy(initial_delay=1, jitter=0))
    with pytest.raises(WaitTimeout) as ei:
        c.job("j1").wait(timeout=0.5)
    assert ei.value.status is None and isinstance(ei.value.__cause__, httpx.ConnectError)


def test_cancel():
    s = Script(httpx.Response(200, json=job("cancelled", cancel_requested=True)))
    st = make_client(s).job("j1").cancel(wait_s=75)
    assert st.state == "cancelled" and st.cancel_requested
    assert s.requests[0].method == "POST" and s.requests[0].url.path == "/v1/jobs/j1/cancel"
    assert s.requests[0].url.params["wait_s"] == "60"  # clamped to the API's bound


def test_jobs_follows_cursors():
    pages = {None: {"jobs": [job("completed", id="a"), job("failed", id="b")], "next_cursor": "c1"},
             "c1": {"jobs": [job("queued", id="c")], "next_cursor": "c2"},
             "c2": {"jobs": [], "next_cursor": None}}
    s = Script(lambda r: httpx.Response(200, json=pages[r.url.params.get("cursor")]))
    c = make_client(s)
    assert [j.id for j in c.jobs(state="completed", page_size=2)] == ["a", "b", "c"]
    assert s.requests[0].url.params["limit"] == "2" and s.requests[0].url.params["state"] == "completed"
    assert [j.id for j in c.jobs(limit=2)] == ["a", "b"]


def sse(*events):
    out = []
    for ev in events:
        name, id_, data = ev
        out.append(f"event: {name}\n" + (f"id: {id_}\n" if id_ else "") + (f"data: {json.dumps(data)}\n" if data else "") + "\n")
    return "".join(out).encode()


def dropping(body, exc=None):
    def gen():
        yield body[: len(body) // 2]
        yield body[len(body) // 2:]
        if exc is not None:
            raise exc
    return gen()


def test_events_reconnect_with_last_event_id():
    first = sse(("job", "1", job("queued")), ("job", "2", job("running", progress={"percent": 10})))
    second = sse(("job", "2", job("running", progress={"percent": 10})),  # unchanged: not yielded twice
                 ("job", "3", job("completed")), ("end", "4", None))
    s = Script(
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=dropping(first, httpx.ReadError("x"))),
        CONNECT,
        httpx.Response(503, json={"error": {"code": "unavailable", "message": "restarting"}}),
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=dropping(b": keepalive\n\n" + second)),
    )
    j = make_client(s).job("j1")
    states = [x.state for x in j.events()]
    assert states == ["queued", "running", "completed"] and j.last_status.state == "completed"
    assert "last-event-id" not in s.requests[0].headers
    assert [r.headers.get("last-event-id") for r in s.requests[1:]] == ["2", "2", "2"]
    assert s.requests[0].headers["accept"] == "text/event-stream"


def test_events_clean_eof_counts_as_a_drop_and_is_bounded():
    s = Script(lambda r: httpx.Response(200, content=b": nothing\n\n"))
    with pytest.raises(ApiConnectionError):
        list(make_client(s, retry=RetryPolicy(max_attempts=3)).job("j1").events())
    assert len(s.requests) == 4


def test_events_404_is_raised():
    with pytest.raises(NotFound):
        list(make_client(Script(err(404, "not_found"))).job("nope").events())


def test_async_client_same_behaviour():
    async def main():
        s = Script(CONNECT, lambda r: httpx.Response(202, json=job("queued", id=json.loads(r.content)["id"])),
                   httpx.Response(200, json=job("running")), CONNECT,
                   httpx.Response(200, json=job("cancelled", result={"reason": "cancelled_while_running"})))
        c = make_async_client(s)
        j = await c.submit("t2v-A14B", {"prompt": "p"})
        assert j.created
        with pytest.raises(JobCancelled) as ei:
            await j.wait(poll_s=0.1)
        assert ei.value.reason == "cancelled_while_running"

        async def body():
            yield sse(("job", "1", job("running")))
            raise httpx.ReadError("drop")

        async def body2():
            yield sse(("job", "2", job("completed")), ("end", "3", None))

        s2 = Script(httpx.Response(200, content=body()), httpx.Response(200, content=body2()))
        c2 = make_async_client(s2)
        states = [x.state async for x in c2.job("j1").events()]
        assert states == ["running", "completed"] and s2.requests[1].headers["last-event-id"] == "1"

        pages = {None: {"jobs": [job("completed", id="a")], "next_cursor": "n"}, "n": {"jobs": [job("queued", id="b")]}}
        c3 = make_async_client(Script(lambda r: httpx.Response(200, json=pages[r.url.params.get("cursor")])))
        assert [j.id async for j in c3.jobs()] == ["a", "b"]
        await c.aclose()

    asyncio.run(main())
