"""Which executor serves which kind, from the `Executor` resources executors publish. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smith_engine.model import GroupKind


@dataclass(frozen=True, slots=True)
class ExecutorInfo:
    name: str
    endpoint: str
    kinds: frozenset[GroupKind]
    heartbeat: str = ""
    fallback: bool = False  # serves a kind only when no other executor does (the dynamic executor)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ExecutorInfo:
        spec = obj.get("spec") or {}
        kinds = frozenset(GroupKind(str(k.get("group", "")), str(k["kind"])) for k in spec.get("kinds") or [])
        heartbeat = str((obj.get("status") or {}).get("heartbeatTime", ""))
        return cls(
            name=obj["metadata"]["name"],
            endpoint=str(spec.get("endpoint", "")),
            kinds=kinds,
            heartbeat=heartbeat,
            fallback=bool(spec.get("fallback", False)),
        )


@dataclass
class RoutingTable:
    executors: dict[str, ExecutorInfo] = field(default_factory=dict)

    def update(self, info: ExecutorInfo) -> bool:
        """Record an executor; True when routing changed (not just its heartbeat)."""
        old = self.executors.get(info.name)
        self.executors[info.name] = info
        return old is None or (old.endpoint, old.kinds, old.fallback) != (
            info.endpoint,
            info.kinds,
            info.fallback,
        )

    def remove(self, name: str) -> bool:
        return self.executors.pop(name, None) is not None

    def endpoint(self, group_kind: GroupKind) -> str | None:
        """The endpoint serving `group_kind`: a specific executor before a fallback one, then the one
        with the latest heartbeat."""
        serving = [e for e in self.executors.values() if group_kind in e.kinds and e.endpoint]
        return max(serving, key=lambda e: (not e.fallback, e.heartbeat, e.name)).endpoint if serving else None

    def kinds(self) -> frozenset[GroupKind]:
        return frozenset(k for e in self.executors.values() for k in e.kinds)
