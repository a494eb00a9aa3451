"""The blocking client: :class:`Client` and its job handle :class:`Job`."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional

import httpx

from . import _core
from .errors import ApiConnectionError, ApiError, WaitTimeout, error_from_response
from .models import JobPage, JobStatus, Queue, Worker
from .retry import RETRYABLE_STATUS, RetryPolicy, is_retryable_exception
from .sse import SSEDecoder, Utf8StreamDecoder

__all__ = ["Client", "Job"]


class _DeadlineReached(Exception):
    """Internal: retrying would run past the caller's deadline."""


class Job:
    """A handle on one job, by id. Making one sends nothing: ``client.job(id)`` re-attaches
    to a job submitted by any process, and the first request goes out when a method is
    called.

    Attributes:
        id: the job's id.
        created: ``True`` when this handle's ``submit`` created the job (HTTP 202), ``False``
            when the id was already known and the existing job was returned (HTTP 200),
            ``None`` for a handle from ``client.job(id)``.
        last_status: the latest :class:`JobStatus` this handle has seen, or ``None``.
    """

    def __init__(self, client: "Client", job_id: str, status: Optional[JobStatus] = None,
                 created: Optional[bool] = None) -> None:
        self._client = client
        self.id = _core.check_id(job_id)
        self.created = created
        self.last_status = status

    def __repr__(self) -> str:
        state = self.last_status.state if self.last_status else "?"
        return f"<Job {self.id} {state}>"

    def status(self) -> JobStatus:
        """The job now, with its timeline (``GET /v1/jobs/{id}``). Raises :class:`NotFound`
        if the API knows no such job."""
        self.last_status = self._client._get_job(self.id)
        return self.last_status

    def wait(self, timeout: Optional[float] = None, *, poll_s: float = _core.DEFAULT_POLL_S) -> JobStatus:
        """Blocks until the job ends, by long polls of ``GET /v1/jobs/{id}/wait``.

        Returns the final :class:`JobStatus` when the job ``completed``. Raises
        :class:`JobFailed` or :class:`JobCancelled` (with ``.status``, ``.result``,
        ``.reason``) for the other ends, and :class:`WaitTimeout` when ``timeout`` seconds
        pass first (the job is left running). Connection errors and 502/503/504 (an API
        restart) are retried with backoff; the wait resumes where it was.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.
            poll_s: the longest single long poll (at most 60, the API's bound).
        """
        return self._client._wait(self, timeout, poll_s)

    def events(self) -> Iterator[JobStatus]:
        """Iterates over the job's snapshots as it changes (``GET /v1/jobs/{id}/events``,
        server-sent events), ending after the stream's ``end`` event.

        A dropped connection or an API restart is followed by a reconnect with
        ``Last-Event-ID``, with backoff, bounded by the client's :class:`RetryPolicy`
        (counted afresh after each event). The last snapshot is the job's end; this does
        not raise for ``failed`` or ``cancelled`` (look at ``state``).
        """
        return self._client._events(self)

    def cancel(self, wait_s: float = 10.0) -> JobStatus:
        """Cancels the job (``POST /v1/jobs/{id}/cancel``) and returns it as the cancel left
        it: ``cancelled`` once the worker stopped the whole process tree, the job's own end if
        it ended first, or, if neither happened within ``wait_s`` (0..60), the job not yet
        ended with ``cancel_requested`` true. Cancelling is idempotent."""
        self.last_status = self._client._cancel(self.id, wait_s)
        return self.last_status


class Client:
    """A blocking client of the genworker HTTP API.

        client = Client("http://127.0.0.1:8080", token="…")
        job = client.submit("t2v-A14B", {"prompt": "A red fox"})
        status = job.wait()

    Args:
        url: the API's base URL.
        token: a bearer token (``Authorization: Bearer <token>``), or ``None``.
        timeout: seconds for an ordinary request; long polls and cancels add their own wait.
        retry: how connection errors and 502/503/504 are retried (:class:`RetryPolicy`).
        headers: extra headers for every request.
        verify: TLS verification, as ``httpx`` takes it (``True``, ``False``, a CA bundle path
            or an ``ssl.SSLContext``).
        http_client: an ``httpx.Client`` to use instead of the client's own (not closed by
            :meth:`close`).
    """

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0, *,
                 retry: Optional[RetryPolicy] = None, headers: Optional[Mapping[str, str]] = None,
                 verify: Any = True, http_client: Optional[httpx.Client] = None) -> None:
        self.url = _core.normalize_url(url)
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self._headers = _core.base_headers(token, headers)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(verify=verify, timeout=self.timeout)
        self._sleep = time.sleep
        self._clock = time.monotonic

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Client":
        """A client from ``GENWORKER_API_URL`` and ``GENWORKER_API_TOKEN`` (keyword arguments
        override them)."""
        kwargs.setdefault("url", os.environ.get("GENWORKER_API_URL", ""))
        kwargs.setdefault("token", os.environ.get("GENWORKER_API_TOKEN") or None)
        return cls(**kwargs)

    def close(self) -> None:
        """Closes the connection pool (when the client created it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.url}>"

    # --- public API ---

    def submit(self, task: str, params: Mapping[str, Any], id: Optional[str] = None,
               timeout_s: Optional[int] = None, **extra: Any) -> Job:
        """Submits a job (``POST /v1/jobs``) and returns its handle.

        The id is the idempotency key: one is made up (uuid4, hex) when ``id`` is ``None``,
        and connection errors and 502/503/504 are retried with backoff, since sending the
        same id again can never start a second run. Submitting an id the API already knows
        returns the existing job (``job.created`` is then ``False``), whatever its task and
        params.

        Args:
            task: ``t2v-A14B``, ``i2v-A14B``, ``ti2v-5B``, ``s2v-14B`` or ``animate-14B``.
            params: the task's params (see :mod:`genworker_client.tasks`).
            id: the job id, ``[A-Za-z0-9_-]{1,128}``.
            timeout_s: the job's own time limit on the worker (default 3600).
            **extra: more top-level fields of the job message (protocol 1.1: ``output``,
                ``webhook``).
        """
        body = _core.submit_body(task, params, id, timeout_s, extra)
        resp = self._request("POST", "/v1/jobs", json=body)
        status = _core.parse_job(resp)
        return Job(self, status.id or body["id"], status, created=resp.status_code == 202)

    def job(self, id: str) -> Job:
        """A handle on an existing job, by id. Sends nothing until a method of the handle is
        called; works from any process."""
        return Job(self, id)

    def jobs_page(self, state: Optional[str] = None, task: Optional[str] = None, submitter: Optional[str] = None,
                  since: Any = None, until: Any = None, limit: Optional[int] = None,
                  cursor: Optional[str] = None) -> JobPage:
        """One page of ``GET /v1/jobs`` (newest first). ``since``/``until`` take a
        ``datetime`` or an RFC 3339 string; ``limit`` is 1..1000 (API default 100); pass the
        previous page's ``next_cursor`` as ``cursor``."""
        q = _core.list_params(state, task, submitter, since, until, limit, cursor)
        return JobPage.from_dict(_core.parse_json(self._request("GET", "/v1/jobs", params=q)))

    def jobs(self, state: Optional[str] = None, task: Optional[str] = None, submitter: Optional[str] = None,
             since: Any = None, until: Any = None, *, page_size: int = 100,
             limit: Optional[int] = None) -> Iterator[JobStatus]:
        """Iterates over the jobs that match, newest first, following ``next_cursor`` page
        after page (pages of ``page_size``); stops after ``limit`` jobs when given. Lazy: no
        request until iterated."""
        cursor: Optional[str] = None
        n = 0
        while True:
            page = self.jobs_page(state, task, submitter, since, until, page_size, cursor)
            for j in page.jobs:
                if limit is not None and n >= limit:
                    return
                n += 1
                yield j
            if not page.next_cursor or not page.jobs or (limit is not None and n >= limit):
                return
            cursor = page.next_cursor

    def workers(self) -> List[Worker]:
        """The workers heard from in the API's window (``GET /v1/workers``)."""
        data = _core.parse_json(self._request("GET", "/v1/workers"))
        return [Worker.from_dict(w) for w in (data.get("workers") or []) if isinstance(w, dict)]

    def queues(self) -> List[Queue]:
        """The queues and their depths (``GET /v1/queues``)."""
        data = _core.parse_json(self._request("GET", "/v1/queues"))
        return [Queue.from_dict(q) for q in (data.get("queues") or []) if isinstance(q, dict)]

    # --- internals ---

    def _request(self, method: str, path: str, *, params: Optional[Dict[str, str]] = None,
                 json: Any = None, timeout: Optional[httpx.Timeout] = None,
                 deadline: Optional[float] = None) -> httpx.Response:
        """One request, retried on connection errors and 502/503/504 with backoff; raises
        the mapped :class:`ApiError` for other error statuses."""
        state = self.retry.start(clock=self._clock)
        while True:
            try:
                resp = self._http.request(method, self.url + path, params=params, json=json,
                                          headers=self._headers,
                                          timeout=timeout if timeout is not None else self.timeout)
            except httpx.TransportError as exc:
                if not is_retryable_exception(exc):
                    raise ApiConnectionError(f"{method} {path}: {exc!r}") from exc
                delay = state.next_delay()
                if delay is None:
                    raise ApiConnectionError(
                        f"{method} {path}: the API could not be reached after {state.attempt + 1} tries: {exc!r}"
                    ) from exc
                self._pause(delay, deadline, exc)
                continue
            if resp.status_code in RETRYABLE_STATUS:
                delay = state.next_delay(_core.retry_after(resp.headers))
                if delay is None:
                    raise error_from_response(resp.status_code, resp.content, resp.headers)
                self._pause(delay, deadline, error_from_response(resp.status_code, resp.content, resp.headers))
                continue
            _core.raise_for_status(resp)
            return resp

    def _pause(self, delay: float, deadline: Optional[float], cause: BaseException) -> None:
        if deadline is not None and self._clock() + delay >= deadline:
            raise _DeadlineReached() from cause
        self._sleep(delay)

    def _long_timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(self.timeout + seconds, connect=self.timeout)

    def _get_job(self, job_id: str) -> JobStatus:
        return _core.parse_job(self._request("GET", _core.job_path(job_id)))

    def _cancel(self, job_id: str, wait_s: float) -> JobStatus:
        wait_s = min(max(0.0, float(wait_s)), _core.MAX_WAIT_S)
        resp = self._request("POST", _core.job_path(job_id, "/cancel"),
                             params={"wait_s": _core.seconds_param(wait_s)}, timeout=self._long_timeout(wait_s))
        return _core.parse_job(resp)

    def _wait(self, job: Job, timeout: Optional[float], poll_s: float) -> JobStatus:
        path = _core.job_path(job.id, "/wait")
        poll_s = min(max(0.0, float(poll_s)), _core.MAX_WAIT_S)
        deadline = None if timeout is None else self._clock() + max(0.0, float(timeout))
        first = True
        while True:
            poll = poll_s
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0 and not first:
                    raise _timeout(job, timeout)
                poll = min(poll, max(0.0, remaining))
            first = False
            started = self._clock()
            try:
                resp = self._request("GET", path, params={"timeout_s": _core.seconds_param(poll)},
                                     timeout=self._long_timeout(poll), deadline=deadline)
            except _DeadlineReached as exc:
                raise _timeout(job, timeout) from exc.__cause__
            status = _core.parse_job(resp)
            job.last_status = status
            done = _core.outcome(status)
            if done is not None:
                return done
            # A server that answers at once (before timeout_s) must not make this spin.
            if poll >= 1.0 and self._clock() - started < 0.2:
                self._sleep(0.5)

    def _events(self, job: Job) -> Iterator[JobStatus]:
        path = _core.job_path(job.id, "/events")
        state = self.retry.start(clock=self._clock)
        last_id: Optional[str] = None
        server_retry_ms: Optional[int] = None
        last: Optional[JobStatus] = None
        timeout = httpx.Timeout(self.timeout, read=_core.SSE_READ_TIMEOUT_S)
        while True:
            headers = dict(self._headers)
            headers["Accept"] = "text/event-stream"
            headers["Cache-Control"] = "no-cache"
            if last_id:
                headers["Last-Event-ID"] = last_id
            failure: BaseException
            try:
                with self._http.stream("GET", self.url + path, headers=headers, timeout=timeout) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        err = error_from_response(resp.status_code, resp.content, resp.headers)
                        if resp.status_code not in RETRYABLE_STATUS:
                            raise err
                        failure = err
                    else:
                        decoder = SSEDecoder(last_event_id=last_id)
                        text = Utf8StreamDecoder()
                        for chunk in resp.iter_bytes():
                            for ev in decoder.feed(text.decode(chunk)):
                                last_id = decoder.last_event_id
                                if decoder.retry is not None:
                                    server_retry_ms = decoder.retry
                                state.reset()
                                snap, is_end = _core.event_snapshot(ev)
                                if snap is not None and (last is None or snap.raw != last.raw):
                                    last = snap
                                    job.last_status = snap
                                    yield snap
                                if is_end:
                                    return
                        if last is not None and last.ended:
                            return  # the stream closed after the job's end without an `end` event
                        failure = ApiConnectionError("the event stream closed before its end event")
            except httpx.TransportError as exc:
                if not is_retryable_exception(exc):
                    raise ApiConnectionError(f"GET {path}: {exc!r}") from exc
                failure = exc
            at_least = (server_retry_ms or 0) / 1000.0
            delay = state.next_delay(at_least)
            if delay is None:
                if isinstance(failure, ApiError):
                    raise failure
                raise ApiConnectionError(f"GET {path}: the event stream kept failing: {failure!r}") from failure
            self._sleep(delay)


def _timeout(job: Job, timeout: Optional[float]) -> WaitTimeout:
    s = job.last_status
    state = s.state if s is not None else "unknown"
    return WaitTimeout(job.id, s, f"job {job.id} has not ended after {timeout} s (last state: {state})")

