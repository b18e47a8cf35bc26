"""Client-side rate limiting of API requests, as client-go's token bucket (`--kube-api-qps`/`-burst`,
Smith's `-api-qps`): up to `burst` requests at once, then `qps` per second on average. Each request
reserves the next token and waits for it, so waiters are served in the order they asked."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    qps: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        if self.qps <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs qps > 0 and burst >= 1 (got {self.qps}, {self.burst})")
        self._tokens, self._at = float(self.burst), self.clock()

    def reserve(self) -> float:
        """Take the next token: the seconds to wait before using it (0 when one is there)."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def wait(self) -> None:
        if (delay := self.reserve()) > 0:
            await asyncio.sleep(delay)

    @classmethod
    def of(cls, qps: float, burst: int = 0) -> TokenBucket | None:
        """A limit of `qps` (0: none) with `burst` (0: twice the QPS)."""
        return cls(qps, burst or max(1, round(2 * qps))) if qps > 0 else None

    @classmethod
    def from_env(cls) -> TokenBucket | None:
        """$SMITH_API_QPS (unset or 0: no limit) and $SMITH_API_BURST (default: twice the QPS)."""
        return cls.of(
            float(os.environ.get("SMITH_API_QPS") or 0), int(os.environ.get("SMITH_API_BURST") or 0)
        )
