"""The CRDs of the cluster, as watched: which custom resource kinds exist (once Established) and how
to judge them. CRDs appear, change and disappear at run time; the Executor resource follows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from smith_executor.run import Republish

from smith_engine.conditions import condition_true
from smith_engine.model import GROUP, GroupKind, JSONObject
from smith_engine.readiness import Readiness, crd_problem, custom_resource_check, terminal
from smith_kube import KubeClient, WatchEvent
from smith_kube.informer import run_informer

# Smith's own kinds are never managed through a Bundle.
OWN_KINDS = frozenset({GroupKind(GROUP, "Bundle"), GroupKind(GROUP, "Executor")})
CRD_API = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def group_kind(crd: JSONObject) -> GroupKind:
    spec = crd.get("spec") or {}
    return GroupKind(str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))


def established(crd: JSONObject) -> bool:
    return condition_true(crd, "Established")


class CrdCatalog:
    """A `Family` for the executor: the served kinds are the Established CRDs' kinds."""

    def __init__(self) -> None:
        self._crds: dict[GroupKind, JSONObject] = {}

    def kinds(self) -> Sequence[GroupKind]:
        return sorted(self._crds)

    def assess(self, obj: JSONObject) -> Readiness:
        crd = self._crds.get(GroupKind.of(obj))
        if crd is None:
            return terminal(f"no CRD defines {GroupKind.of(obj)}")
        return custom_resource_check(crd)(obj, datetime.now(UTC))

    def refusal(self, obj: JSONObject) -> str | None:
        crd = self._crds.get(GroupKind.of(obj))
        return f"no CRD defines {GroupKind.of(obj)}" if crd is None else crd_problem(crd)

    # --- keeping up with the cluster ----------------------------------------------------------------

    def relist(self, crds: Sequence[JSONObject]) -> bool:
        """Replace the catalog; True when the kinds served changed."""
        before = set(self._crds)
        self._crds = {group_kind(c): c for c in crds if established(c) and group_kind(c) not in OWN_KINDS}
        return set(self._crds) != before

    def change(self, event: WatchEvent) -> bool:
        kind = group_kind(event.object)
        if kind in OWN_KINDS:
            return False
        before = kind in self._crds
        if event.type == "DELETED" or not established(event.object):
            self._crds.pop(kind, None)
        else:
            self._crds[kind] = event.object
        return (kind in self._crds) != before

    async def follow(self, kube: KubeClient, republish: Republish) -> None:
        """Watch CRDs forever, republishing the Executor resource whenever the kinds served change."""
        pending: set[asyncio.Task[Any]] = set()

        def changed(kinds_changed: bool) -> None:
            if kinds_changed:
                task = asyncio.create_task(republish())
                pending.add(task)
                task.add_done_callback(pending.discard)

        await run_informer(
            kube,
            *CRD_API,
            on_list=lambda crds: changed(self.relist(crds)),
            on_event=lambda event: changed(self.change(event)),
        )
