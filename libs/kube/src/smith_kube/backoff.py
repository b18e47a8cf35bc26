"""Waits between tries of something that failed in a way that may heal (the API server failing,
throttling or unreachable; a kind not served yet): doubling from a first wait up to a most, for ever,
as client-go's wait.Backoff without jitter. Every retry loop of Smith's takes its waits from here."""

from __future__ import annotations

from collections.abc import Iterator


def backoff(first: float = 0.5, most: float = 30.0) -> Iterator[float]:
    """Waits between tries: `first`, then each twice the one before, up to `most`, for ever."""
    delay = first
    while True:
        yield delay
        delay = min(most, delay * 2)
