"""Which executor serves which kind, from the `Executor` resources executors publish. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from smith_engine.model import GroupKind
from smith_engine.readiness import READY_WHEN_PATH, READY_WHEN_VALUE, SUPPORT_ENABLED
from smith_engine.times import parse_rfc3339

# Built-in kinds whose objects have no namespace. (Executors also ask discovery before they apply.)
CLUSTER_SCOPED: Final = frozenset(
    GroupKind(group, kind)
    for group, kind in (
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("apiregistration.k8s.io", "APIService"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
    )
)


# Executors stamp a heartbeat every 5 minutes (SMITH_HEARTBEAT_SECONDS): three missed, it is gone.
STALE: Final = timedelta(minutes=15)


def cluster_scoped_problem(kind: GroupKind | str) -> str:
    return (
        f"{kind} is cluster-scoped: its objects cannot live in a Bundle, whose objects all live in "
        "the Bundle's namespace"
    )


@dataclass(frozen=True, slots=True)
class ExecutorInfo:
    name: str
    endpoint: str
    kinds: frozenset[GroupKind]
    heartbeat: str = ""
    fallback: bool = False  # serves a kind only when no other executor does (the dynamic executor)
    created: str = ""  # when its registration was made (RFC 3339): the first to claim a kind keeps it

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
            created=str(obj["metadata"].get("creationTimestamp", "")),
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

    def owner(self, group_kind: GroupKind) -> ExecutorInfo | None:
        """The executor serving `group_kind`: a specific executor before a fallback one, then the one
        registered first. A later registration claiming a kind already served is refused (see
        `refused`), never handed the kind: an executor cannot take another's kinds. A registration whose
        heartbeat is STALE behind the freshest claimant's is dead (it crashed, and nothing withdrew it):
        it keeps nothing."""
        serving = [e for e in self.executors.values() if group_kind in e.kinds and e.endpoint]
        beats = {e.name: parse_rfc3339(e.heartbeat) for e in serving}
        newest = max((b for b in beats.values() if b is not None), default=None)
        live = [
            e for e in serving if newest is None or (beat := beats[e.name]) is None or newest - beat <= STALE
        ]
        return min(live, key=lambda e: (e.fallback, e.created or "~", e.name), default=None)

    def endpoint(self, group_kind: GroupKind) -> str | None:
        return owner.endpoint if (owner := self.owner(group_kind)) is not None else None

    def refused(self, name: str) -> dict[GroupKind, str]:
        """The kinds executor `name` claims that another, registered before it, serves: by that one's name."""
        info = self.executors.get(name)
        if info is None or info.fallback:
            return {}
        owners = {k: self.owner(k) for k in info.kinds}
        return {k: o.name for k, o in sorted(owners.items()) if o is not None and o.name != name}

    def kinds(self) -> frozenset[GroupKind]:
        return frozenset(k for e in self.executors.values() for k in e.kinds)

    def unserved(self, group_kind: GroupKind) -> tuple[str, bool]:
        """Why no executor takes `group_kind` (which has no endpoint), and whether that is terminal:
        only an empty table (no executor registered yet) is worth waiting for. Terminal or not, a
        change of routing reconciles every Bundle again."""
        if group_kind in CLUSTER_SCOPED:
            return cluster_scoped_problem(group_kind), True
        if not self.executors:
            return f"no executor has registered yet to serve {group_kind}", False
        managed = sorted({k for e in self.executors.values() if not e.fallback for k in e.kinds})
        return (
            f"Smith does not manage {group_kind}: it manages {', '.join(map(str, managed))}, and custom "
            f'resources whose CRD is installed and annotated {SUPPORT_ENABLED}: "true" (or '
            f"{READY_WHEN_PATH} and {READY_WHEN_VALUE})"
        ), True
