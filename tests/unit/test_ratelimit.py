"""The API client's token bucket: a burst at once, then the set rate, waiters in turn."""

from __future__ import annotations

import pytest

from smith_kube import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_goes_at_once_then_requests_are_spaced_by_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=5, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert [round(bucket.reserve(), 6) for _ in range(3)] == [0.2, 0.4, 0.6]  # each waits its turn
    clock.now += 0.6  # the three waiters have gone: the bucket is empty, not negative
    assert round(bucket.reserve(), 6) == 0.2
    clock.now += 10  # idle: the bucket refills up to the burst, no further
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() > 0


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMITH_API_QPS", raising=False)
    assert TokenBucket.from_env() is None
    monkeypatch.setenv("SMITH_API_QPS", "20")
    bucket = TokenBucket.from_env()
    assert bucket is not None
    assert (bucket.qps, bucket.burst) == (20, 40)
    monkeypatch.setenv("SMITH_API_BURST", "5")
    bucket = TokenBucket.from_env()
    assert bucket is not None
    assert bucket.burst == 5
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(1, 0)
