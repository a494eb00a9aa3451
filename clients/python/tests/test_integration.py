"""Integration tests against the REAL genworker API (no mocks).

Environment:
    GENWORKER_API_URL          the API's base URL (unset: every test here is skipped, loudly)
    GENWORKER_API_TOKEN        a token with role submit
    GENWORKER_API_TOKEN_READ   a token with role read
    GENWORKER_API_TOKEN_ADMIN  a token with role admin
    GENWORKER_API_RESTART      a shell command that restarts the API process
    GENWORKER_REQUIRE_INTEGRATION=1  makes a missing GENWORKER_API_URL an error, not a skip

The fleet behind the API runs the stand-in generator (examples/standin): a t2v-A14B job with
``[[step_s=S]]`` in its prompt and ``sample_steps`` N takes about N*S seconds. The worker has
one slot, so the tests cancel what they leave running.
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from conftest import NOT_RUN_MARK
from genworker_client import (AsyncClient, Client, Forbidden, JobCancelled, NotFound, Unauthorized, WaitTimeout)

API_URL = os.environ.get("GENWORKER_API_URL", "").strip()
TOKEN = os.environ.get("GENWORKER_API_TOKEN") or None
TOKEN_READ = os.environ.get("GENWORKER_API_TOKEN_READ") or None
TOKEN_ADMIN = os.environ.get("GENWORKER_API_TOKEN_ADMIN") or None
RESTART = os.environ.get("GENWORKER_API_RESTART") or None

if not API_URL:
    _msg = (f"{NOT_RUN_MARK}: GENWORKER_API_URL is unset, so tests/test_integration.py did not run against "
            "a real API. A skip is not a pass.")
    sys.stderr.write("\n" + "!" * 100 + "\n" + _msg + "\n" + "!" * 100 + "\n")
    if os.environ.get("GENWORKER_REQUIRE_INTEGRATION") == "1":
        pytest.fail(_msg + " (GENWORKER_REQUIRE_INTEGRATION=1)", pytrace=False)
    pytest.skip(_msg, allow_module_level=True)

pytestmark = pytest.mark.integration

TASK = "t2v-A14B"
RUN = uuid.uuid4().hex[:8]
TEST_TIMEOUT_S = 300


def new_id(name):
    return f"pyc-{RUN}-{name}-{uuid.uuid4().hex[:6]}"


def params(step_s, steps, tag=""):
    return {"prompt": f"a red fox {tag} [[step_s={step_s}]]", "size": "832*480", "sample_steps": steps}


def need(value, name):
    if not value:
        pytest.skip(f"{NOT_RUN_MARK}: {name} is unset")
    return value


@pytest.fixture(autouse=True)
def _hard_timeout():
    """A test that hangs (a wait or a stream that never ends) fails instead."""
    def alarm(signum, frame):
        raise TimeoutError(f"integration test ran over {TEST_TIMEOUT_S} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def client():
    with Client(API_URL, token=need(TOKEN, "GENWORKER_API_TOKEN")) as c:
        yield c


@pytest.fixture
def read_client():
    with Client(API_URL, token=need(TOKEN_READ, "GENWORKER_API_TOKEN_READ")) as c:
        yield c


@pytest.fixture
def admin_client():
    with Client(API_URL, token=need(TOKEN_ADMIN, "GENWORKER_API_TOKEN_ADMIN")) as c:
        yield c


@pytest.fixture
def cleanup():
    """Jobs to cancel after the test (the worker has one slot: nothing may hog it)."""
    ids = []
    yield ids
    token = TOKEN_ADMIN or TOKEN
    with Client(API_URL, token=token) as c:
        for job_id in ids:
            try:
                st = c.job(job_id).status()
                if not st.ended:
                    c.job(job_id).cancel(wait_s=0)
            except Exception as exc:  # noqa: BLE001 - best effort
                sys.stderr.write(f"cleanup of {job_id}: {exc!r}\n")


def wait_for_state(job, states, timeout=150.0):
    deadline = time.monotonic() + timeout
    while True:
        st = job.status()
        if st.state in states:
            return st
        if st.ended or time.monotonic() > deadline:
            pytest.fail(f"job {job.id} is {st.state}, expected one of {states}")
        time.sleep(0.2)


def total_slots(c):
    slots = sum(w.slots for w in c.workers() if w.online)
    return max(1, slots)


# --- the basics ---


def test_submit_then_wait_completed(client):
    job_id = new_id("basic")
    job = client.submit(TASK, params(0.05, 20), id=job_id, timeout_s=600)
    assert job.id == job_id and job.created is True
    assert job.last_status.id == job_id and job.last_status.state in ("queued", "running", "completed")
    st = job.wait(timeout=240)
    assert st.state == "completed" and st.ended
    assert st.result is not None and st.result.get("event") == "completed" and st.result.get("id") == job_id
    assert st.result.get("status", "completed") == "completed"
    assert st.task == TASK and st.attempt == 1 and st.cancel_requested is False
    assert st.ended_at is not None
    events = [t.event for t in st.timeline]
    assert events[0] == "submitted" and "claimed" in events and events[-1] == "ended", events
    again = client.job(job_id).status()
    assert again.state == "completed" and again.result == st.result


def test_unknown_job_is_not_found(client):
    with pytest.raises(NotFound) as ei:
        client.job(new_id("nope")).status()
    assert ei.value.status == 404 and ei.value.code == "not_found"


def test_reattach_from_another_process(client):
    job_id = new_id("reattach")
    job = client.submit(TASK, params(0.1, 30), id=job_id)
    code = (
        "import json, os, sys\n"
        "from genworker_client import Client\n"
        "with Client(os.environ['GENWORKER_API_URL'], token=os.environ['GENWORKER_API_TOKEN']) as c:\n"
        "    j = c.job(sys.argv[1])\n"
        "    first = j.status()\n"
        "    final = j.wait(timeout=240)\n"
        "    print(json.dumps({'first': first.state, 'state': final.state, 'result': final.result}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, job_id], env=dict(os.environ), capture_output=True,
                          text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["first"] in ("queued", "running", "completed")
    assert out["state"] == "completed"
    mine = job.wait(timeout=60)
    assert out["result"] == mine.result


def test_wait_timeout_leaves_the_job_running(client, cleanup):
    job_id = new_id("timeout")
    cleanup.append(job_id)
    job = client.submit(TASK, params(0.2, 40), id=job_id)  # about 8 s
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as ei:
        job.wait(timeout=1.5)
    elapsed = time.monotonic() - t0
    assert 1.4 <= elapsed < 15, elapsed
    assert ei.value.status is not None and ei.value.status.state in ("queued", "running")
    st = job.status()
    assert st.state in ("queued", "running") and st.cancel_requested is False
    final = job.wait(timeout=240)  # it was left alone, so it completes
    assert final.state == "completed" and final.attempt == 1


def test_events_to_the_end(client):
    job_id = new_id("events")
    job = client.submit(TASK, params(0.1, 50), id=job_id)  # about 5 s
    snaps = []
    for st in job.events():
        assert st.id == job_id
        snaps.append(st)
        assert len(snaps) < 10000
    states = [s.state for s in snaps]
    assert snaps and snaps[-1].state == "completed", states
    assert all(not s.ended for s in snaps[:-1]), states
    running = [s for s in snaps if s.state == "running"]
    assert running, f"no running snapshot: {states}"
    with_progress = [s.progress.percent for s in running if s.progress and s.progress.percent is not None]
    assert with_progress, "no progress in any running snapshot"
    assert with_progress == sorted(with_progress), with_progress
    assert snaps[-1].result and snaps[-1].result.get("event") == "completed"
    # a stream opened after the end gives the final job and ends
    late = list(client.job(job_id).events())
    assert late and late[-1].state == "completed" and late[-1].result == snaps[-1].result


# --- cancel ---


def test_cancel_a_running_job(client, cleanup):
    job_id = new_id("cancel-run")
    cleanup.append(job_id)
    job = client.submit(TASK, params(0.5, 40), id=job_id)  # about 20 s
    wait_for_state(job, {"running"})
    t0 = time.monotonic()
    st = job.cancel(wait_s=30)
    elapsed = time.monotonic() - t0
    assert st.state == "cancelled", (st.state, st.result)
    assert st.cancel_requested is True
    assert st.reason == "cancelled_while_running", st.result
    assert elapsed < 30, elapsed
    assert "cancel_requested" in [t.event for t in st.timeline]
    with pytest.raises(JobCancelled) as ei:
        job.wait(timeout=30)
    assert ei.value.status.state == "cancelled" and ei.value.reason == "cancelled_while_running"
    # cancelling again changes nothing
    assert job.cancel(wait_s=0).state == "cancelled"


def test_cancel_a_queued_job(client, admin_client, cleanup):
    n = total_slots(admin_client) + 2
    jobs = []
    for i in range(n):
        job_id = new_id(f"queued{i}")
        cleanup.append(job_id)
        jobs.append(client.submit(TASK, params(0.5, 40, tag=str(i)), id=job_id))  # about 20 s each
    wait_for_state(jobs[0], {"running"})
    queued = jobs[-1]
    st = queued.status()
    assert st.state == "queued", f"expected the last of {n} long jobs to be queued, it is {st.state}"
    # an admin may cancel anyone's job
    st = admin_client.job(queued.id).cancel(wait_s=2)
    assert st.cancel_requested is True
    assert st.state in ("queued", "cancelled"), st.state
    if st.state == "cancelled":
        assert st.reason == "cancelled_before_start"
    # free the slot(s): the queued job is then taken and ends without running
    for j in jobs[:-1]:
        j.cancel(wait_s=0)
    with pytest.raises(JobCancelled) as ei:
        queued.wait(timeout=200)
    assert ei.value.reason == "cancelled_before_start", ei.value.result
    final = queued.status()
    assert final.state == "cancelled" and final.cancel_requested
    assert "claimed" not in [t.event for t in final.timeline] or final.result.get("exit_code") is None


# --- one id, one run ---


def test_same_id_twice_is_one_job_one_run(client):
    job_id = new_id("idem")
    p = params(0.05, 40)
    first = client.submit(TASK, p, id=job_id)
    second = client.submit(TASK, p, id=job_id)
    assert first.created is True and second.created is False
    assert second.id == first.id == job_id
    r1 = first.wait(timeout=240)
    r2 = second.wait(timeout=60)
    assert r1.result == r2.result and r1.result is not None
    assert r1.attempt == 1
    claimed = [t for t in r1.timeline if t.event == "claimed"]
    assert len(claimed) == 1, r1.timeline
    # and after the end: the recorded job, nothing runs again
    third = client.submit(TASK, p, id=job_id)
    assert third.created is False and third.last_status.state == "completed"
    assert third.last_status.result == r1.result
    time.sleep(2)
    st = client.job(job_id).status()
    assert st.attempt == 1 and len([t for t in st.timeline if t.event == "claimed"]) == 1
    assert st.result == r1.result


# --- auth ---


def test_wrong_token_is_unauthorized():
    with Client(API_URL, token="wrong-" + uuid.uuid4().hex) as bad:
        with pytest.raises(Unauthorized) as ei:
            bad.submit(TASK, params(0.02, 5), id=new_id("badtok"))
        assert ei.value.status == 401 and ei.value.code == "unauthorized"
        with pytest.raises(Unauthorized):
            bad.workers()
        with pytest.raises(Unauthorized):
            bad.job(new_id("badtok")).status()


def test_read_token_cannot_submit_or_cancel(read_client, client, cleanup):
    job_id = new_id("readonly")
    with pytest.raises(Forbidden) as ei:
        read_client.submit(TASK, params(0.02, 5), id=job_id)
    assert ei.value.status == 403 and ei.value.code == "forbidden"
    with pytest.raises(NotFound):
        read_client.job(job_id).status()  # the refused submit created nothing
    mine = client.submit(TASK, params(0.02, 5), id=new_id("readable"))
    cleanup.append(mine.id)
    assert read_client.job(mine.id).status().id == mine.id  # reads are fine
    with pytest.raises(Forbidden):
        read_client.job(mine.id).cancel(wait_s=0)
    mine.wait(timeout=240)


def test_submit_token_cannot_cancel_anothers_job(client, admin_client, cleanup):
    job_id = new_id("admins")
    cleanup.append(job_id)
    admins = admin_client.submit(TASK, params(0.5, 40), id=job_id)
    with pytest.raises(Forbidden):
        client.job(job_id).cancel(wait_s=0)
    assert admins.status().cancel_requested is False
    admins.cancel(wait_s=0)


# --- listing ---


def test_list_jobs_with_cursor(client, read_client):
    since = datetime.now(timezone.utc) - timedelta(minutes=10)
    ids = [new_id(f"list{i}") for i in range(3)]
    for job_id in ids:
        client.submit(TASK, params(0.02, 5), id=job_id)
    for job_id in ids:
        client.job(job_id).wait(timeout=240)
    page = read_client.jobs_page(since=since, limit=1)
    assert len(page.jobs) == 1 and page.next_cursor
    seen = []
    for st in read_client.jobs(since=since, page_size=2):
        seen.append(st.id)
        if set(ids) <= set(seen) or len(seen) > 5000:
            break
    assert set(ids) <= set(seen), "the listing did not include the jobs just submitted"
    assert len(seen) == len(set(seen)), "a job came twice across pages"
    # newest first: the last submitted before the first
    assert seen.index(ids[2]) < seen.index(ids[0])
    done = [s.id for s in read_client.jobs(state="completed", since=since, limit=1000)]
    assert set(ids) <= set(done)
    assert not set(ids) & {s.id for s in read_client.jobs(state="queued", since=since, limit=1000)}
    submitter = client.job(ids[0]).status().submitter
    if submitter:
        assert ids[0] in {s.id for s in read_client.jobs(submitter=submitter, since=since, limit=1000)}


def test_workers_and_queues(read_client):
    workers = read_client.workers()
    assert workers, "no worker heard from"
    assert all(w.name and w.slots >= 1 and 0 <= w.busy <= w.slots for w in workers)
    queues = read_client.queues()
    assert queues and all(q.name and q.depth >= 0 for q in queues)


# --- the async client, against the same API ---


def test_async_client_submit_events_wait():
    async def main():
        async with AsyncClient(API_URL, token=need(TOKEN, "GENWORKER_API_TOKEN")) as c:
            job = await c.submit(TASK, params(0.05, 30), id=new_id("async"))
            assert job.created
            states = [s.state async for s in job.events()]
            assert states[-1] == "completed", states
            st = await job.wait(timeout=30)
            assert st.state == "completed"
            again = await c.job(job.id).status()
            assert again.result == st.result
            with pytest.raises(WaitTimeout):
                j2 = await c.submit(TASK, params(0.2, 30), id=new_id("async-to"))
                try:
                    await j2.wait(timeout=1)
                finally:
                    await j2.cancel(wait_s=0)

    asyncio.run(main())


# --- the API restarts in the middle ---


class _Counting(httpx.BaseTransport):
    """The real transport, counting the failures the client rode out (not a mock)."""

    def __init__(self):
        self.inner = httpx.HTTPTransport()
        self.errors = []

    def handle_request(self, request):
        try:
            resp = self.inner.handle_request(request)
        except Exception as exc:
            self.errors.append(repr(exc))
            raise
        if resp.status_code >= 500:
            self.errors.append(resp.status_code)
        return resp

    def close(self):
        self.inner.close()


def _restart_in_background(delay_s):
    out = {}

    def run():
        time.sleep(delay_s)
        out["started"] = time.monotonic()
        p = subprocess.run(RESTART, shell=True, capture_output=True, text=True, timeout=180)
        out["ended"] = time.monotonic()
        out["rc"] = p.returncode
        out["output"] = (p.stdout + p.stderr)[-2000:]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_wait_survives_an_api_restart(client):
    need(RESTART, "GENWORKER_API_RESTART")
    job_id = new_id("restart")
    client.submit(TASK, params(0.25, 40), id=job_id)  # about 10 s
    transport = _Counting()
    with Client(API_URL, token=TOKEN, http_client=httpx.Client(transport=transport)) as waiter:
        thread, out = _restart_in_background(1.0)
        t0 = time.monotonic()
        st = waiter.job(job_id).wait(timeout=240)
        t1 = time.monotonic()
        thread.join(200)
    assert out.get("rc") == 0, f"GENWORKER_API_RESTART failed: {out}"
    assert out["started"] < t1, "the restart began after the wait had ended"
    assert st.state == "completed" and st.result and st.result.get("event") == "completed"
    sys.stderr.write(f"\nwait across restart: {t1 - t0:.1f} s, failures ridden out: {transport.errors}\n")


def test_events_survive_an_api_restart(client):
    need(RESTART, "GENWORKER_API_RESTART")
    job_id = new_id("restart-ev")
    client.submit(TASK, params(0.25, 40), id=job_id)  # about 10 s
    transport = _Counting()
    with Client(API_URL, token=TOKEN, http_client=httpx.Client(transport=transport)) as follower:
        thread, out = _restart_in_background(2.0)
        snaps = list(follower.job(job_id).events())
        thread.join(200)
    assert out.get("rc") == 0, f"GENWORKER_API_RESTART failed: {out}"
    assert snaps and snaps[-1].state == "completed", [s.state for s in snaps]
    assert all(not s.ended for s in snaps[:-1])
    sys.stderr.write(f"\nevents across restart: {len(snaps)} snapshots, failures ridden out: {transport.errors}\n")
