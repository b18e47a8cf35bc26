"""Never two controllers at once: while Go Smith holds its leader lock (smith_engine.handover), this
controller acts on no Bundle, says why in its log, in `smith_controller_go_smith_lock` and in a condition
`GoSmithLock` on each Bundle (written by the status service, the rest of Go Smith's status kept), and
takes every Bundle up again the moment the lock is released, deleted or runs out.

Go Smith without `-leader-elect` holds no lock: scale it to zero before cutover (see the migration guide).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import Gauge

from smith_controller.tasks import cancel_and_wait
from smith_engine.handover import LOCK_NAME, Held, go_smith_holds
from smith_engine.model import JSONObject
from smith_kube import KubeClient, WatchEvent
from smith_kube.informer import run_informer

log = logging.getLogger("smith.controller")
HELD = Gauge("smith_controller_go_smith_lock", "1 while Go Smith holds its leader lock: Smith does not act")


class GoSmithLock:
    """Go Smith's leader lock ConfigMaps (`smith-leader-elect`, in every namespace this controller
    watches), kept by a watch; `held()` says whether one is held now, and why. `changed` is called when
    that stops being so."""

    def __init__(self, kube: KubeClient, *, namespace: str | None, changed: Callable[[], None]) -> None:
        self.kube, self.namespace, self.changed = kube, namespace, changed
        self.locks: dict[str, JSONObject] = {}
        self._synced = asyncio.Event()
        self._told: str | None = None  # the reason last logged
        self._expiry: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        HELD.set_function(lambda: 1.0 if self.held() is not None else 0.0)

    def start(self) -> None:
        self._task = asyncio.create_task(
            run_informer(
                self.kube,
                "v1",
                "ConfigMap",
                on_list=self._listed,
                on_event=self._event,
                field_selector=f"metadata.name={LOCK_NAME}",
                synced=self._synced,
                namespace=self.namespace,
            ),
            name="go smith's lock",
        )

    async def synced(self) -> None:
        await self._synced.wait()

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await cancel_and_wait([self._task] if self._task is not None else [])

    def held(self) -> Held | None:
        now = datetime.now(UTC)
        return next((h for lock in self.locks.values() if (h := go_smith_holds(lock, now))), None)

    def _listed(self, items: Sequence[JSONObject]) -> None:
        self.locks = {_key(o): o for o in items}
        self._look()

    def _event(self, event: WatchEvent) -> None:
        if event.type == "DELETED":
            self.locks.pop(_key(event.object), None)
        elif event.type != "BOOKMARK":
            self.locks[_key(event.object)] = event.object
        self._look()

    def _look(self) -> None:
        """Log a change of whether the lock is held, and have every Bundle looked at again (to say so on
        it, or to act on it); when held, look again when it runs out unrenewed."""
        held = self.held()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if held is not None:
            left = (held.until - datetime.now(UTC)).total_seconds()
            self._expiry = asyncio.get_running_loop().call_later(max(left, 0) + 0.05, self._look)
        told, self._told = self._told, held.reason if held is not None else None
        if self._told == told:
            return
        if held is not None:
            log.warning("%s", held.reason)
        else:
            log.info("Go Smith's leader lock is released or ran out: Smith acts on the Bundles again")
        self.changed()


def _key(obj: JSONObject) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
