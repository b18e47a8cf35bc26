"""A pass's own writes come back to the controller as watch events of the objects it wrote, each with the
resourceVersion the write's answer already showed the pass. They are no news: the pass planned on from
those very answers. Only an event that differs from what the Bundle's passes wrote (someone else's
change, an object's controller updating its status, a deletion) brings another pass, as client-go
controllers' "expectations" do. Pure bookkeeping; the controller asks it."""

from __future__ import annotations

from collections.abc import Iterable

from smith_controller.cache import BundleKey, Version
from smith_engine.model import ObjectKey


class Echoes:
    def __init__(self) -> None:
        self._expected: dict[BundleKey, dict[ObjectKey, str]] = {}  # the versions a pass wrote
        self._arrived: dict[BundleKey, list[Version | None]] = {}  # events during a pass, by Bundle

    def begin(self, key: BundleKey) -> None:
        """A pass of the Bundle begins: it reads every object afresh, so what an earlier pass wrote and
        has not come back yet is forgotten (its event, when it comes, brings another pass: at worst
        one too many, never one missed); events until `end` are judged then."""
        self._expected.pop(key, None)
        self._arrived[key] = []

    def wrote(self, key: BundleKey, versions: Iterable[Version]) -> None:
        """The pass wrote these objects; the API server answered with these versions."""
        self._expected.setdefault(key, {}).update(versions)

    def news(self, key: BundleKey, seen: Version | None) -> bool:
        """A watch event of one of the Bundle's objects (`seen`: the object and its version; None for one
        that went): does it need a pass? During a pass it is kept and judged when the pass ends."""
        if (arrived := self._arrived.get(key)) is not None:
            arrived.append(seen)
            return False
        return self._news(key, seen)

    def end(self, key: BundleKey) -> bool:
        """The pass is over: was any event that came meanwhile news (not the echo of its own writes)?"""
        news = False
        for seen in self._arrived.pop(key, []):
            news = self._news(key, seen) or news  # every one judged: an echo uses up its expectation
        return news

    def forget(self, key: BundleKey) -> None:
        self._expected.pop(key, None)
        self._arrived.pop(key, None)

    def __len__(self) -> int:
        """Bundles with writes not come back yet (the memory this holds)."""
        return len(self._expected)

    def _news(self, key: BundleKey, seen: Version | None) -> bool:
        expected = self._expected.get(key)
        if seen is None or expected is None or expected.get(seen[0]) != seen[1]:
            return True
        del expected[seen[0]]  # each write comes back once
        if not expected:
            del self._expected[key]
        return False
