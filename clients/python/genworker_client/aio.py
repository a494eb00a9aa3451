"""The asyncio client: :class:`AsyncClient` and its job handle :class:`AsyncJob`. The same
API as :mod:`genworker_client.client`, with ``await`` (and ``async for``)."""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional

import httpx

from . import _core
from .errors import ApiConnectionError, ApiError, WaitTimeout, error_from_response
from .models import JobPage, JobStatus, Queue, Worker
from .retry import RETRYABLE_STATUS, RetryPolicy, is_retryable_exception
from .sse import SSEDecoder, Utf8StreamDecoder

__all__ = ["AsyncClient", "AsyncJob"]


class _DeadlineReached(Exception):
    """Internal: retrying would run past the caller's deadline."""


class AsyncJob:
    """A handle on one job, by id (asyncio). See :class:`genworker_client.Job`; the methods
    are coroutines, and :meth:`events` is an async iterator."""

    def __init__(self, client: "AsyncClient", job_id: str, status: Optional[JobStatus] = None,
                 created: Optional[bool] = None) -> None:
        self._client = client
        self.id = _core.check_id(job_id)
        self.created = created
        self.last_status = status

    def __repr__(self) -> str:
        state = self.last_status.state if self.last_status else "?"
        return f"<AsyncJob {self.id} {state}>"

    async def status(self) -> JobStatus:
        """The job now, with its timeline. Raises :class:`NotFound` for an unknown id."""
        self.last_status = await self._client._get_job(self.id)
        return self.last_status

    async def wait(self, timeout: Optional[float] = None, *, poll_s: float = _core.DEFAULT_POLL_S) -> JobStatus:
        """Waits for the job's end (long polls). Returns the status when ``completed``;
        raises :class:`JobFailed`, :class:`JobCancelled`, or :class:`WaitTimeout` after
        ``timeout`` seconds (the job left running). Survives API restarts."""
        return await self._client._wait(self, timeout, poll_s)

    def events(self) -> AsyncIterator[JobStatus]:
        """Async iterator over the job's snapshots (server-sent events) until the stream's
        ``end``; reconnects with ``Last-Event-ID`` after a drop, with bounded backoff."""
        return self._client._events(self)

    async def cancel(self, wait_s: float = 10.0) -> JobStatus:
        """Cancels the job and returns it as the cancel left it (see
        :meth:`genworker_client.Job.cancel`)."""
        self.last_status = await self._client._cancel(self.id, wait_s)
        return self.last_status


class AsyncClient:
    """An asyncio client of the genworker HTTP API; the same arguments and methods as
    :class:`genworker_client.Client`, as coroutines.

        async with AsyncClient(url, token=token) as client:
            job = await client.submit("t2v-A14B", {"prompt": "A red fox"})
            async for status in job.events():
                print(status.state, status.progress)
    """

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0, *,
                 retry: Optional[RetryPolicy] = None, headers: Optional[Mapping[str, str]] = None,
                 verify: Any = True, http_client: Optional[httpx.AsyncClient] = None) -> None:
        self.url = _core.normalize_url(url)
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self._headers = _core.base_headers(token, headers)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(verify=verify, timeout=self.timeout)
        self._sleep = asyncio.sleep
        self._clock = time.monotonic

    @classmethod
    def from_env(cls, **kwargs: Any) -> "AsyncClient":
        """A client from ``GENWORKER_API_URL`` and ``GENWORKER_API_TOKEN``."""
        kwargs.setdefault("url", os.environ.get("GENWORKER_API_URL", ""))
        kwargs.setdefault("token", os.environ.get("GENWORKER_API_TOKEN") or None)
        return cls(**kwargs)

    async def aclose(self) -> None:
        """Closes the connection pool (when the client created it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncClient {self.url}>"

    # --- public API ---

    async def submit(self, task: str, params: Mapping[str, Any], id: Optional[str] = None,
                     timeout_s: Optional[int] = None, **extra: Any) -> AsyncJob:
        """Submits a job (idempotent by id; retried on connection errors and 502/503/504).
        See :meth:`genworker_client.Client.submit`."""
        body = _core.submit_body(task, params, id, timeout_s, extra)
        resp = await self._request("POST", "/v1/jobs", json=body)
        status = _core.parse_job(resp)
        return AsyncJob(self, status.id or body["id"], status, created=resp.status_code == 202)

    def job(self, id: str) -> AsyncJob:
        """A handle on an existing job, by id (no request until used)."""
        return AsyncJob(self, id)

    async def jobs_page(self, state: Optional[str] = None, task: Optional[str] = None,
                        submitter: Optional[str] = None, since: Any = None, until: Any = None,
                        limit: Optional[int] = None, cursor: Optional[str] = None) -> JobPage:
        """One page of ``GET /v1/jobs``; see :meth:`genworker_client.Client.jobs_page`."""
        q = _core.list_params(state, task, submitter, since, until, limit, cursor)
        return JobPage.from_dict(_core.parse_json(await self._request("GET", "/v1/jobs", params=q)))

    async def jobs(self, state: Optional[str] = None, task: Optional[str] = None, submitter: Optional[str] = None,
                   since: Any = None, until: Any = None, *, page_size: int = 100,
                   limit: Optional[int] = None) -> AsyncIterator[JobStatus]:
        """Async iterator over the matching jobs, newest first, following the cursors."""
        cursor: Optional[str] = None
        n = 0
        while True:
            page = await self.jobs_page(state, task, submitter, since, until, page_size, cursor)
            for j in page.jobs:
                if limit is not None and n >= limit:
                    return
                n += 1
                yield j
            if not page.next_cursor or not page.jobs or (limit is not None and n >= limit):
                return
            cursor = page.next_cursor

    async def workers(self) -> List[Worker]:
        """The workers heard from in the API's window."""
        data = _core.parse_json(await self._request("GET", "/v1/workers"))
        return [Worker.from_dict(w) for w in (data.get("workers") or []) if isinstance(w, dict)]

    async def queues(self) -> List[Queue]:
        """The queues and their depths."""
        data = _core.parse_json(await self._request("GET", "/v1/queues"))
        return [Queue.from_dict(q) for q in (data.get("queues") or []) if isinstance(q, dict)]

    # --- internals (mirror client.Client) ---

    async def _request(self, method: str, path: str, *, params: Optional[Dict[str, str]] = None,
                       json: Any = None, timeout: Optional[httpx.Timeout] = None,
                       deadline: Optional[float] = None) -> httpx.Response:
        state = self.retry.start(clock=self._clock)
        while True:
            try:
                resp = await self._http.request(method, self.url + path, params=params, json=json,
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
                await self._pause(delay, deadline, exc)
                continue
            if resp.status_code in RETRYABLE_STATUS:
                delay = state.next_delay(_core.retry_after(resp.headers))
                if delay is None:
                    raise error_from_response(resp.status_code, resp.content, resp.headers)
                await self._pause(delay, deadline, error_from_response(resp.status_code, resp.content, resp.headers))
                continue
            _core.raise_for_status(resp)
            return resp

    async def _pause(self, delay: float, deadline: Optional[float], cause: BaseException) -> None:
        if deadline is not None and self._clock() + delay >= deadline:
            raise _DeadlineReached() from cause
        await self._sleep(delay)

    def _long_timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(self.timeout + seconds, connect=self.timeout)

    async def _get_job(self, job_id: str) -> JobStatus:
        return _core.parse_job(await self._request("GET", _core.job_path(job_id)))

    async def _cancel(self, job_id: str, wait_s: float) -> JobStatus:
        wait_s = min(max(0.0, float(wait_s)), _core.MAX_WAIT_S)
        resp = await self._request("POST", _core.job_path(job_id, "/cancel"),
                                   params={"wait_s": _core.seconds_param(wait_s)},
                                   timeout=self._long_timeout(wait_s))
        return _core.parse_job(resp)

    async def _wait(self, job: AsyncJob, timeout: Optional[float], poll_s: float) -> JobStatus:
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
                resp = await self._request("GET", path, params={"timeout_s": _core.seconds_param(poll)},
                                           timeout=self._long_timeout(poll), deadline=deadline)
            except _DeadlineReached as exc:
                raise _timeout(job, timeout) from exc.__cause__
            status = _core.parse_job(resp)
            job.last_status = status
            done = _core.outcome(status)
            if done is not None:
                return done
            if poll >= 1.0 and self._clock() - started < 0.2:
                await self._sleep(0.5)

    async def _events(self, job: AsyncJob) -> AsyncIterator[JobStatus]:
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
                async with self._http.stream("GET", self.url + path, headers=headers, timeout=timeout) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        err = error_from_response(resp.status_code, resp.content, resp.headers)
                        if resp.status_code not in RETRYABLE_STATUS:
                            raise err
                        failure = err
                    else:
                        decoder = SSEDecoder(last_event_id=last_id)
                        text = Utf8StreamDecoder()
                        async for chunk in resp.aiter_bytes():
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
                            return
                        failure = ApiConnectionError("the event stream closed before its end event")
            except httpx.TransportError as exc:
                if not is_retryable_exception(exc):
                    raise ApiConnectionError(f"GET {path}: {exc!r}") from exc
                failure = exc
            delay = state.next_delay((server_retry_ms or 0) / 1000.0)
            if delay is None:
                if isinstance(failure, ApiError):
                    raise failure
                raise ApiConnectionError(f"GET {path}: the event stream kept failing: {failure!r}") from failure
            await self._sleep(delay)


def _timeout(job: AsyncJob, timeout: Optional[float]) -> WaitTimeout:
    s = job.last_status
    state = s.state if s is not None else "unknown"
    return WaitTimeout(job.id, s, f"job {job.id} has not ended after {timeout} s (last state: {state})")
