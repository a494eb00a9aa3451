"""Typed views of the API's JSON documents (the OpenAPI schemas ``Job``, ``Progress``,
``TimelineEntry``, ``JobPage``, ``WorkerList``, ``QueueList``).

Every dataclass keeps the document it was made from in ``raw``, so fields a newer API
adds are never lost.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "QUEUED",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "JOB_STATES",
    "TERMINAL_STATES",
    "JobStatus",
    "Progress",
    "TimelineEntry",
    "JobPage",
    "Worker",
    "Queue",
    "parse_time",
    "format_time",
]

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
JOB_STATES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
TERMINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def parse_time(value: Any) -> Optional[datetime]:
    """Parses an RFC 3339 / ISO 8601 timestamp into an aware ``datetime``.

    Accepts ``Z`` and ``±HH:MM`` offsets and any number of fractional digits (Python 3.9's
    ``fromisoformat`` accepts neither). A timestamp without an offset is taken as UTC.
    Returns ``None`` for ``None`` or anything it cannot read.
    """
    if not isinstance(value, str):
        return None
    m = _TIME_RE.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, z, sign, oh, om = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if z or not sign:
        tz = timezone.utc
    else:
        delta = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(delta if sign == "+" else -delta)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except ValueError:
        return None


def format_time(value: Any) -> str:
    """Formats a ``datetime`` as RFC 3339 for query parameters (``since``, ``until``).

    Aware datetimes are converted to UTC and written with ``Z``; naive ones are taken as
    local time (Python's convention). Strings are passed through unchanged.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        value = value.astimezone(timezone.utc)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += ".%06d" % value.microsecond
        return str(text + "Z")
    raise TypeError(f"expected a datetime or an RFC 3339 string, got {type(value).__name__}")


def _opt_int(v: Any) -> Optional[int]:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _opt_str(v: Any) -> Optional[str]:
    return v if isinstance(v, str) else None


@dataclass(frozen=True)
class Progress:
    """A running job's progress as its worker last reported it (any field may be ``None``)."""

    percent: Optional[int] = None
    step: Optional[int] = None
    total: Optional[int] = None
    eta_s: Optional[int] = None
    phase: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Progress":
        return cls(
            percent=_opt_int(d.get("percent")),
            step=_opt_int(d.get("step")),
            total=_opt_int(d.get("total")),
            eta_s=_opt_int(d.get("eta_s")),
            phase=_opt_str(d.get("phase")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One entry of a job's timeline: ``submitted``, ``claimed``, ``cancel_requested``,
    ``expired``, ``released`` or ``ended``."""

    event: str
    at: Optional[datetime] = None
    attempt: Optional[int] = None
    worker: Optional[str] = None
    by: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TimelineEntry":
        return cls(
            event=str(d.get("event", "")),
            at=parse_time(d.get("at")),
            attempt=_opt_int(d.get("attempt")),
            worker=_opt_str(d.get("worker")),
            by=_opt_str(d.get("by")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job, as the API returns it (the OpenAPI ``Job`` schema).

    ``state`` is one of ``queued``, ``running``, ``completed``, ``failed``, ``cancelled``.
    ``result`` is the job's terminal result event once it has ended (a dict with ``event``,
    ``status``, ``reason``, ``message``, ``output``, ``output_uri``, ``output_url``,
    ``exit_code``, ``elapsed_s``, ``log_tail``...; see docs/protocol.md), else ``None``.
    ``raw`` is the JSON document itself.
    """

    id: str
    state: str
    cancel_requested: bool = False
    task: Optional[str] = None
    attempt: Optional[int] = None
    worker: Optional[str] = None
    submitter: Optional[str] = None
    submitted_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    progress: Optional[Progress] = None
    result: Optional[Dict[str, Any]] = None
    timeline: List[TimelineEntry] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JobStatus":
        """Builds a snapshot from the API's ``Job`` JSON. Raises ``ValueError`` if ``id`` or
        ``state`` is missing."""
        if not isinstance(d, Mapping) or not isinstance(d.get("id"), str) or not isinstance(d.get("state"), str):
            raise ValueError(f"not a job document: {d!r:.200}")
        progress = d.get("progress")
        result = d.get("result")
        timeline = d.get("timeline")
        return cls(
            id=d["id"],
            state=d["state"],
            cancel_requested=bool(d.get("cancel_requested", False)),
            task=_opt_str(d.get("task")),
            attempt=_opt_int(d.get("attempt")),
            worker=_opt_str(d.get("worker")),
            submitter=_opt_str(d.get("submitter")),
            submitted_at=parse_time(d.get("submitted_at")),
            started_at=parse_time(d.get("started_at")),
            ended_at=parse_time(d.get("ended_at")),
            progress=Progress.from_dict(progress) if isinstance(progress, Mapping) else None,
            result=dict(result) if isinstance(result, Mapping) else None,
            timeline=[TimelineEntry.from_dict(t) for t in timeline if isinstance(t, Mapping)]
            if isinstance(timeline, list)
            else [],
            raw=dict(d),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document this snapshot was made from (a copy)."""
        return dict(self.raw)

    @property
    def ended(self) -> bool:
        """True once the job is ``completed``, ``failed`` or ``cancelled``."""
        return self.state in TERMINAL_STATES

    @property
    def reason(self) -> Optional[str]:
        """The result's ``reason`` (failed and cancelled jobs), else ``None``."""
        return _opt_str(self.result.get("reason")) if self.result else None

    @property
    def message(self) -> Optional[str]:
        """The result's ``message`` (for people), else ``None``."""
        return _opt_str(self.result.get("message")) if self.result else None

    @property
    def output(self) -> Optional[str]:
        """The video's path on the worker's disk (result ``output``), when there is one."""
        return _opt_str(self.result.get("output")) if self.result else None

    @property
    def output_uri(self) -> Optional[str]:
        """Where the stored video is (result ``output_uri``, protocol 1.1), when there is one."""
        return _opt_str(self.result.get("output_uri")) if self.result else None

    @property
    def output_url(self) -> Optional[str]:
        """An HTTPS URL to fetch the stored video (result ``output_url``), when there is one."""
        return _opt_str(self.result.get("output_url")) if self.result else None


@dataclass(frozen=True)
class JobPage:
    """One page of ``GET /v1/jobs``: the jobs, newest first, and the cursor of the next page
    (``None`` on the last page)."""

    jobs: List[JobStatus]
    next_cursor: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JobPage":
        jobs = d.get("jobs")
        return cls(
            jobs=[JobStatus.from_dict(j) for j in jobs] if isinstance(jobs, list) else [],
            next_cursor=_opt_str(d.get("next_cursor")) or None,
        )


@dataclass(frozen=True)
class Worker:
    """A worker heard from in the API's window (``GET /v1/workers``)."""

    name: str
    slots: int
    busy: int
    online: bool
    node: Optional[str] = None
    running: List[str] = field(default_factory=list)
    last_heartbeat: Optional[datetime] = None
    version: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Worker":
        running = d.get("running")
        return cls(
            name=str(d.get("name", "")),
            slots=_opt_int(d.get("slots")) or 0,
            busy=_opt_int(d.get("busy")) or 0,
            online=bool(d.get("online", False)),
            node=_opt_str(d.get("node")),
            running=[str(r) for r in running] if isinstance(running, list) else [],
            last_heartbeat=parse_time(d.get("last_heartbeat")),
            version=_opt_str(d.get("version")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class Queue:
    """A queue and its depth (``GET /v1/queues``)."""

    name: str
    depth: int
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Queue":
        return cls(name=str(d.get("name", "")), depth=_opt_int(d.get("depth")) or 0, raw=dict(d))
