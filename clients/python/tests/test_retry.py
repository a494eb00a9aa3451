"""Backoff (genworker_client.retry), no server, no sleeping."""
import httpx
import pytest

from genworker_client.retry import RetryPolicy, is_retryable_exception


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_delays_grow_exponentially_and_cap():
    p = RetryPolicy(initial_delay=0.5, multiplier=2, max_delay=4, jitter=0, max_elapsed=None)
    assert [p.delay(i) for i in range(6)] == [0.5, 1, 2, 4, 4, 4]


def test_jitter_only_shortens_within_bounds():
    p = RetryPolicy(initial_delay=1, multiplier=2, max_delay=10, jitter=0.25, max_elapsed=None)
    assert p.delay(0, rand=lambda: 0.0) == 1.0
    assert p.delay(0, rand=lambda: 1.0) == 0.75
    assert p.delay(3, rand=lambda: 0.5) == pytest.approx(8 * (1 - 0.125))


def test_max_attempts():
    s = RetryPolicy(jitter=0, max_attempts=3, max_elapsed=None).start()
    assert [s.next_delay() is not None for _ in range(5)] == [True, True, True, False, False]


def test_max_elapsed_counts_consecutive_failure_time():
    clock = FakeClock()
    p = RetryPolicy(initial_delay=1, multiplier=2, max_delay=8, jitter=0, max_elapsed=10)
    s = p.start(clock=clock)
    delays = []
    while True:
        d = s.next_delay()
        if d is None:
            break
        delays.append(d)
        clock.t += d
    assert delays == [1, 2, 4]  # 7 s; the next 8 s would end past 10 s
    # a success starts a new series
    s.reset()
    assert s.next_delay() == 1


def test_at_least_raises_delay_but_is_capped():
    s = RetryPolicy(initial_delay=0.1, max_delay=2, jitter=0, max_elapsed=None).start()
    assert s.next_delay(at_least=3) == 3
    assert s.next_delay(at_least=1000) == 8  # max_delay * 4


def test_none_policy_never_retries():
    assert RetryPolicy.none().start().next_delay() is None


def test_which_exceptions_are_retried():
    req = httpx.Request("GET", "http://x/")
    assert is_retryable_exception(httpx.ConnectError("refused", request=req))
    assert is_retryable_exception(httpx.ReadError("reset", request=req))
    assert is_retryable_exception(httpx.ReadTimeout("slow", request=req))
    assert is_retryable_exception(httpx.RemoteProtocolError("closed mid-body", request=req))
    assert not is_retryable_exception(httpx.UnsupportedProtocol("ftp://", request=req))
    assert not is_retryable_exception(httpx.LocalProtocolError("bad header", request=req))
    assert not is_retryable_exception(ValueError())
