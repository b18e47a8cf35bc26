"""Sharing Bundles among controller replicas. Each replica holds a Lease of its own, renewed; a member is
live while its lease was seen renewed within the lease's duration, on the observer's own clock (as
client-go's leader election judges, so clocks need not agree). Each Bundle belongs to exactly one live
member, by rendezvous hashing of namespace/name: a member joining or leaving moves only its own share."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field


def owner(key: str, members: Iterable[str]) -> str | None:
    """The member `key` belongs to: the highest score of (member, key); None without members."""
    return max(members, key=lambda member: (_score(member, key), member), default=None)


def _score(member: str, key: str) -> int:
    digest = hashlib.blake2b(f"{member}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class _Seen:
    version: str  # the lease's renewTime as last read
    at: float  # when this observer saw that version first (its own monotonic clock)
    duration: float


@dataclass
class Membership:
    """The members as one replica sees them, from the leases it reads (`observe`, `forget`)."""

    _seen: dict[str, _Seen] = field(default_factory=dict)

    def observe(self, member: str, renewed: str, duration: float, now: float) -> None:
        """A read of `member`'s lease: renewed at `renewed` (as the lease says), valid `duration` s."""
        before = self._seen.get(member)
        if before is None or before.version != renewed:
            self._seen[member] = _Seen(renewed, now, duration)
        else:
            before.duration = duration

    def knows(self, member: str) -> bool:
        """A lease of `member` has been read and not seen deleted (live or not)."""
        return member in self._seen

    def forget(self, member: str) -> None:
        """The lease is gone: the member left."""
        self._seen.pop(member, None)

    def live(self, now: float) -> frozenset[str]:
        return frozenset(m for m, s in self._seen.items() if now < s.at + s.duration)

    def next_expiry(self, now: float) -> float | None:
        """Seconds until the next live member's lease runs out unless renewed (None: no live member)."""
        left = [s.at + s.duration - now for s in self._seen.values() if now < s.at + s.duration]
        return min(left, default=None)
