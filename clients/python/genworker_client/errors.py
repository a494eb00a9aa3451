"""Exceptions raised by the genworker client.

Two families:

* :class:`ApiError` and its subclasses: the API answered with an error
  (``{"error": {"code": ..., "message": ...}}`` and a 4xx/5xx status).
* :class:`JobError` and its subclasses: the API answered fine, but the *job*
  did not complete (:class:`JobFailed`, :class:`JobCancelled`), or did not end
  within the time the caller allowed (:class:`WaitTimeout`).

:class:`ApiConnectionError` is raised when the API could not be reached even
after the client's retries.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Type

if TYPE_CHECKING:  # pragma: no cover
    from .models import JobStatus

__all__ = [
    "GenworkerError",
    "ApiError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "TooLarge",
    "Unavailable",
    "ApiConnectionError",
    "JobError",
    "JobFailed",
    "JobCancelled",
    "WaitTimeout",
    "error_from_response",
]


class GenworkerError(Exception):
    """Base class of every exception this package raises on purpose."""


class ApiError(GenworkerError):
    """The API answered with an error status.

    Attributes:
        status: the HTTP status code (e.g. 404).
        code: the API's error code (``bad_request``, ``unauthorized``, ``forbidden``,
            ``not_found``, ``too_large``, ``unavailable``), or ``http_<status>`` when the
            body was not the API's error document (e.g. a proxy's 502 page).
        message: the API's message, for people.
        body: the parsed JSON body when there was one, else ``None``.
    """

    def __init__(self, status: int, code: str, message: str, body: Optional[Any] = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    def __reduce__(self) -> Tuple[Any, ...]:  # keep exceptions picklable (multiprocessing, pytest-xdist)
        return (self.__class__, (self.status, self.code, self.message, self.body))


class BadRequest(ApiError):
    """400: the request broke a rule (bad id, bad parameter, invalid job)."""


class Unauthorized(ApiError):
    """401: no credentials, or a token the API does not know."""


class Forbidden(ApiError):
    """403: the token is known but its role may not do this (e.g. a read token submitting)."""


class NotFound(ApiError):
    """404: the API knows no job with this id."""


class TooLarge(ApiError):
    """413: the job message is larger than the API accepts."""


class Unavailable(ApiError):
    """503: the API cannot serve the request right now (broker down, still starting).

    The client retries 502/503/504 itself; this is raised once the retries ran out.
    """


class ApiConnectionError(GenworkerError):
    """The API could not be reached (connection refused or reset, timeouts), even after
    the client's retries. The underlying ``httpx`` exception is ``__cause__``."""


class JobError(GenworkerError):
    """A job did not complete. ``status`` is the job's last known :class:`JobStatus`."""

    def __init__(self, job_id: str, status: Optional["JobStatus"], message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status

    @property
    def result(self) -> Optional[Dict[str, Any]]:
        """The job's terminal result event (``status.result``), when there is one."""
        return self.status.result if self.status is not None else None

    @property
    def reason(self) -> Optional[str]:
        """The result's ``reason`` (e.g. ``exit_code``, ``timeout``, ``cancelled_while_running``)."""
        r = self.result
        return r.get("reason") if isinstance(r, dict) else None

    def __reduce__(self) -> Tuple[Any, ...]:
        return (self.__class__, (self.job_id, self.status, str(self)))


class JobFailed(JobError):
    """The job ended in state ``failed``; ``reason`` and ``result`` say why."""


class JobCancelled(JobError):
    """The job ended in state ``cancelled`` (``reason`` is ``cancelled_before_start`` or
    ``cancelled_while_running``)."""


class WaitTimeout(JobError, TimeoutError):
    """``Job.wait(timeout=...)`` gave up: the job had not ended when the timeout passed.

    The job itself is left alone (it keeps running); ``status`` is the last snapshot the
    client saw, or ``None`` if the API could not be reached at all in that time.
    """


_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: TooLarge,
    503: Unavailable,
}

_BY_CODE: Dict[str, Type[ApiError]] = {
    "bad_request": BadRequest,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "too_large": TooLarge,
    "unavailable": Unavailable,
}


def error_from_response(status: int, content: bytes, headers: Optional[Mapping[str, str]] = None) -> ApiError:
    """Maps an error response to the matching :class:`ApiError` subclass.

    The class is chosen by HTTP status (400, 401, 403, 404, 413, 503), else by the body's
    ``error.code``, else :class:`ApiError`. A body that is not the API's error document
    (a proxy's HTML page, an empty body) still gives an error, with code ``http_<status>``
    and the start of the body as the message.
    """
    body: Optional[Any] = None
    code: Optional[str] = None
    message: Optional[str] = None
    try:
        body = json.loads(content.decode("utf-8")) if content else None
    except (UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        if isinstance(err.get("code"), str):
            code = err["code"]
        if isinstance(err.get("message"), str):
            message = err["message"]
    if code is None:
        code = f"http_{status}"
    if message is None:
        text = content.decode("utf-8", errors="replace").strip() if content else ""
        message = text[:500] if text else _reason_phrase(status)
    cls = _BY_STATUS.get(status) or _BY_CODE.get(code) or ApiError
    return cls(status, code, message, body)


def _reason_phrase(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
