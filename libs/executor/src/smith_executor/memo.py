"""What an executor remembers about the objects it applied: the digest each had when it was last
known to be in sync with a desired hash (see smith_engine.changes), the re-applies that an update
cycle is made of, and the desired objects the API server refused as invalid (so that a resync does
not send them again). Memory only: after a restart each object costs one server-side dry run.

An **update cycle** is another writer (a controller, a webhook) changing fields Smith owns right
back after each apply: the same desired object re-applied `limit` times, each within `window`
seconds of the one before. Smith then stops re-applying that object and reports the fields, until
the Bundle asks for something else or the object is found in sync again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from smith_engine.model import ObjectKey

MemoKey = tuple[str, ObjectKey]  # (namespace, group/kind/name)


@dataclass
class _Entry:
    digest: str
    desired: str
    reapplies: tuple[float, ...] = ()
    cycle: str = ""  # while in an update cycle: what did not stick


class Memo:
    def __init__(self, *, capacity: int = 200_000, window: float = 60.0, limit: int = 3) -> None:
        self._entries: OrderedDict[MemoKey, _Entry] = OrderedDict()
        self._invalid: OrderedDict[MemoKey, tuple[str, str]] = OrderedDict()
        self._capacity, self._window, self._limit = capacity, window, limit

    def known(self, key: MemoKey, digest: str) -> tuple[str, str]:
        """(the desired hash the object with this digest is known to match, the desired hash last applied
        or found in sync there whatever it says now); "" for what is not known."""
        entry = self._entries.get(key)
        if entry is None:
            return "", ""
        return (entry.desired if entry.digest == digest and not entry.cycle else ""), entry.desired

    def applied_other(self, key: MemoKey, desired: str) -> bool:
        """Whether Smith last applied a different desired object here: the Bundle changed, so an apply
        is due and a dry run would only confirm it."""
        entry = self._entries.get(key)
        return entry is not None and entry.desired != desired

    def synced(self, key: MemoKey, *, digest: str, desired: str) -> None:
        """The object, with this digest, is in sync with `desired` (just applied, or checked)."""
        old = self._entries.pop(key, None)
        keep = old.reapplies if old is not None and old.desired == desired else ()
        self._entries[key] = _Entry(digest=digest, desired=desired, reapplies=keep)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def cycle(self, key: MemoKey, desired: str) -> str:
        """What did not stick, while the object is in an update cycle for `desired`; else ""."""
        entry = self._entries.get(key)
        return entry.cycle if entry is not None and entry.desired == desired else ""

    def drifted(self, key: MemoKey, desired: str, *, now: float) -> bool:
        """Record that the object drifted from `desired`, which Smith applied before; True when that
        makes an update cycle (the caller then reports it through `stuck`, not re-apply)."""
        entry = self._entries.get(key)
        if entry is None or entry.desired != desired:
            return False
        chained = bool(entry.reapplies) and now - entry.reapplies[-1] <= self._window
        entry.reapplies = (*entry.reapplies[-self._limit :], now) if chained else (now,)
        return len(entry.reapplies) > self._limit

    def stuck(self, key: MemoKey, message: str) -> None:
        if (entry := self._entries.get(key)) is not None:
            entry.cycle = message

    def refuse(self, key: MemoKey, desired: str, message: str) -> None:
        """The API server refused `desired` as invalid (a 4xx no retry can fix)."""
        self._invalid[key] = (desired, message)
        while len(self._invalid) > self._capacity:
            self._invalid.popitem(last=False)

    def invalid(self, key: MemoKey, desired: str) -> str:
        """Why the server refused this very desired object, if it did; else ""."""
        found = self._invalid.get(key)
        return found[1] if found is not None and found[0] == desired else ""
