"""Which incarnation of an object exists now: its uid (and what else a server needs of it) by name, read
once and then remembered briefly.

Servers that act for a Bundle check that it exists with the uid a request names, and executors act as
the ServiceAccount it names; a cache keeps that from costing a read per call. A remembered object whose
uid or generation differs from the one asked about is read again at once (a Bundle deleted and made
again under its name, or changed); an absent object is never remembered."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from smith_kube.client import KubeClient, NotFoundError

TTL_SECONDS: Final = 30.0
SIZE: Final = 10_000


@dataclass(frozen=True, slots=True)
class Seen:
    uid: str
    generation: int
    kept: str  # what `keep` took of the object (e.g. the ServiceAccount a Bundle names)
    until: float  # monotonic


class UidCache:
    def __init__(
        self,
        kube: KubeClient,
        api_version: str,
        kind: str,
        *,
        ttl: float = TTL_SECONDS,
        keep: Callable[[dict[str, Any]], str] = lambda _: "",
    ) -> None:
        self.kube = kube
        self.api_version = api_version
        self.kind = kind
        self.ttl = ttl
        self.keep = keep
        self._seen: OrderedDict[tuple[str, str], Seen] = OrderedDict()

    async def uid(self, namespace: str, name: str, *, expected: str = "") -> str | None:
        """The uid of `namespace/name` (None: it does not exist). Remembered for `ttl` seconds, unless it
        is not `expected`: then it is read again."""
        seen = await self.read(namespace, name, uid=expected)
        return None if seen is None else seen.uid

    async def read(self, namespace: str, name: str, *, uid: str = "", generation: int = 0) -> Seen | None:
        """What is known of `namespace/name` (None: it does not exist), read again when it was not seen
        within `ttl` seconds, or was seen with another uid or an older generation than asked."""
        key, now = (namespace, name), time.monotonic()
        seen = self._seen.get(key)
        if (
            seen is not None
            and seen.until > now
            and (not uid or seen.uid == uid)
            and seen.generation >= generation
        ):
            return seen
        try:
            obj = await self.kube.get(self.api_version, self.kind, name, namespace)
        except NotFoundError:
            self._seen.pop(key, None)
            return None
        meta = obj.get("metadata", {})
        seen = Seen(
            str(meta.get("uid", "")), int(meta.get("generation") or 0), self.keep(obj), now + self.ttl
        )
        self._seen[key] = seen
        self._seen.move_to_end(key)
        while len(self._seen) > SIZE:
            self._seen.popitem(last=False)
        return seen
