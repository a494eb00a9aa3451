"""Retry policy: exponential backoff with jitter, bounded by attempts and by time.

Pure and clock-injectable, so it is tested without sleeping.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Optional

import httpx

__all__ = ["RetryPolicy", "RetryState", "RETRYABLE_STATUS", "is_retryable_exception"]

#: Statuses retried for every request: gateways and the API's own "unavailable".
RETRYABLE_STATUS = frozenset({502, 503, 504})


def is_retryable_exception(exc: BaseException) -> bool:
    """True for failures worth another try: connection refused or reset, timeouts, a
    connection closed mid-response. False for configuration errors (bad URL, bad TLS
    setup on our side) and for anything that is not an ``httpx`` transport error."""
    if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return True
    if isinstance(exc, httpx.ProxyError):
        return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries connection errors and 502/503/504.

    The n-th retry (n = 0, 1, ...) waits ``min(max_delay, initial_delay * multiplier**n)``,
    scaled by a random factor in ``[1 - jitter, 1]``. Retrying stops after ``max_attempts``
    retries, or once failures have gone on for ``max_elapsed`` seconds in a row (``None``
    = no such bound). A successful response (or, in an event stream, an event) starts the
    count afresh, so a long wait survives any number of separate API restarts.

    The defaults ride out an API restart of up to about a minute.
    """

    initial_delay: float = 0.2
    multiplier: float = 2.0
    max_delay: float = 5.0
    jitter: float = 0.2
    max_attempts: Optional[int] = None
    max_elapsed: Optional[float] = 90.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The delay before retry number ``attempt`` (0-based)."""
        base = self.initial_delay * (self.multiplier ** min(attempt, 64))
        base = min(self.max_delay, base)
        if self.jitter:
            base *= 1.0 - self.jitter * rand()
        return max(0.0, base)

    def start(self, clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random) -> "RetryState":
        """A fresh counter for one operation."""
        return RetryState(self, clock, rand)

    @classmethod
    def none(cls) -> "RetryPolicy":
        """A policy that never retries."""
        return cls(max_attempts=0)


class RetryState:
    """Counts the retries of one operation. ``next_delay()`` returns the seconds to sleep
    before the next try, or ``None`` when the policy says to give up."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float], rand: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._rand = rand
        self.attempt = 0
        self._first_failure: Optional[float] = None

    def next_delay(self, at_least: float = 0.0) -> Optional[float]:
        """Registers a failure. ``at_least`` (e.g. a ``Retry-After``) raises the delay,
        capped at the policy's ``max_delay`` times four."""
        p = self.policy
        now = self._clock()
        if self._first_failure is None:
            self._first_failure = now
        if p.max_attempts is not None and self.attempt >= p.max_attempts:
            return None
        delay = p.delay(self.attempt, self._rand)
        if at_least > delay:
            delay = min(at_least, p.max_delay * 4)
        if p.max_elapsed is not None and (now - self._first_failure) + delay > p.max_elapsed:
            return None
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """A success: the next failure starts a new series."""
        self.attempt = 0
        self._first_failure = None
