"""Never two controllers at once: Go Smith's leader lock, read. Pure.

Go Smith (through atlassian/ctrl, with `-leader-elect`) holds a ConfigMap lock, `smith-leader-elect`
(in namespace `default` unless `-leader-elect-configmap-namespace` says another), and renews it every
few seconds: client-go's leader record, JSON in the annotation `control-plane.alpha.kubernetes.io/leader`
(`holderIdentity`, `leaseDurationSeconds`, `renewTime`). While such a lock is renewed, Smith must not act
on the Bundles Go Smith also acts on: the two would undo each other's writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from smith_engine.times import parse_rfc3339

LOCK_NAME: Final = "smith-leader-elect"
LEADER_ANNOTATION: Final = "control-plane.alpha.kubernetes.io/leader"


@dataclass(frozen=True, slots=True)
class Held:
    """A lock held until `until`, and what to say about it."""

    until: datetime
    reason: str


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
    where = f"{meta.get('namespace', '')}/{meta['name']}"
    return Held(
        until,
        f"Go Smith holds its leader lock {where} ({record['holderIdentity']!r}, renewed "
        f"{record.get('renewTime')}): Smith does not act while it does — scale Go Smith to zero",
    )
