"""Which incarnation of an object exists now: its uid (and what else a server needs of it) by name, read
once and then remembered briefly.

Servers that act for a Bundle check that it exists with the uid a request names, and executors act as
the ServiceAccount it names; a cache keeps that from costing a read per call. A remembered object whose
uid or generation differs from the one asked about is read again at once (a Bundle deleted and made
again under its name, or changed); an absent object is never remembered."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Final

from smith_kube.client import KubeClient, NotFoundError

TTL_SECONDS: Final = 30.0
SIZE: Final = 10_000


class UidCache:
    def __init__(self, kube: KubeClient, api_version: str, kind: str, *, ttl: float = TTL_SECONDS) -> None:
        self.kube = kube
        self.api_version = api_version
        self.kind = kind
        self.ttl = ttl
        self._uids: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    async def uid(self, namespace: str, name: str, *, expected: str = "") -> str | None:
        """The uid of `namespace/name` (None: it does not exist). Remembered for `ttl` seconds, unless it
        is not `expected`: then it is read again."""
        key, now = (namespace, name), time.monotonic()
        if (
            (seen := self._uids.get(key)) is not None
            and seen[1] > now
            and (not expected or seen[0] == expected)
        ):
            return seen[0]
        try:
            obj = await self.kube.get(self.api_version, self.kind, name, namespace)
        except NotFoundError:
            self._uids.pop(key, None)
            return None
        uid = str(obj.get("metadata", {}).get("uid", ""))
        self._uids[key] = (uid, now + self.ttl)
        self._uids.move_to_end(key)
        while len(self._uids) > SIZE:
            self._uids.popitem(last=False)
        return uid
