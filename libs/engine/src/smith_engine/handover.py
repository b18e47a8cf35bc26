"""Never two controllers at once: Go Smith's leader lock, read. Pure.

Go Smith (through atlassian/ctrl, with `-leader-elect`) holds a ConfigMap lock, `smith-leader-elect`
(in namespace `default` unless `-leader-elect-configmap-namespace` says another), and renews it every
few seconds: client-go's leader record, JSON in the annotation `control-plane.alpha.kubernetes.io/leader`
(`holderIdentity`, `leaseDurationSeconds`, `renewTime`). While such a lock is renewed, Smith must not act
on the Bundles Go Smith also acts on: the two would undo each other's writes. Smith says so on each
Bundle in one condition of its own (`held_status`), added to the status Go Smith writes and keeping all
of it: Go Smith rewrites its conditions only when its own change, and Smith's first status write after
the hand-over leaves the condition out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from smith_engine.model import JSONObject
from smith_engine.times import parse_rfc3339, rfc3339

LOCK_NAME: Final = "smith-leader-elect"
LEADER_ANNOTATION: Final = "control-plane.alpha.kubernetes.io/leader"
HELD_CONDITION: Final = "GoSmithLock"  # True while Smith leaves the Bundle to Go Smith
HELD_REASON: Final = "GoSmithHoldsLock"


@dataclass(frozen=True, slots=True)
class Held:
    """A lock (`namespace/name`) held by `holder` until `until`."""

    until: datetime
    lock: str
    holder: str

    @property
    def reason(self) -> str:
        """What to say about it: the same for as long as the same holder holds it (renewals aside)."""
        return (
            f"Go Smith holds its leader lock {self.lock} ({self.holder!r}): Smith does not act while it "
            "does — scale Go Smith to zero"
        )


def go_smith_holds(lock: Any, now: datetime) -> Held | None:
    """Whether the ConfigMap `lock` is Go Smith's leader lock, renewed within its lease as of `now`;
    None when it is not, is released (no holder) or ran out."""
    if not isinstance(lock, dict):
        return None
    meta = lock.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(LEADER_ANNOTATION)
    if meta.get("name") != LOCK_NAME or not isinstance(text, str):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not record.get("holderIdentity"):
        return None
    renewed = parse_rfc3339(record.get("renewTime"))
    seconds = record.get("leaseDurationSeconds")
    if renewed is None or not isinstance(seconds, int | float) or seconds <= 0:
        return None
    until = renewed + timedelta(seconds=seconds)
    if until <= now:
        return None
    return Held(until, f"{meta.get('namespace', '')}/{meta['name']}", str(record["holderIdentity"]))


def held_status(previous: Any, message: str, now: datetime) -> JSONObject | None:
    """The Bundle's status `previous` (Go Smith's) with the condition HELD_CONDITION saying `message`,
    every other part kept as it is; None when it says that already (nothing to write)."""
    status = dict(previous) if isinstance(previous, Mapping) else {}
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    said = {"type": HELD_CONDITION, "status": "True", "reason": HELD_REASON, "message": message}
    if any({k: c.get(k) for k in said} == said for c in conditions):
        return None
    others = [dict(c) for c in conditions if c.get("type") != HELD_CONDITION]
    return {**status, "conditions": [*others, {**said, "lastTransitionTime": rfc3339(now)}]}
