"""Controller replicas sharing the Bundles: this replica's Lease (`coordination.k8s.io/v1`, one per
replica, renewed every third of its duration) and the others' (watched) say who is live; each Bundle is
the one live member's that `smith_engine.sharding.owner` names. A replica whose own lease has not been
renewed within its duration (paused, partitioned, the API server unreachable) owns nothing: the others
count it gone by then, so it must not act for any Bundle.

A replica joining while others are live (or coming back after its lease ran out) waits a third of the
lease duration before it acts: time for the others to see its lease and let its share go. What it may
still do for a Bundle is bounded in time (`left`): its calls' deadlines end a fifth of the duration
before its lease would run out unrenewed, so nothing it sent lands after another replica took over.

Each membership has a number (`epoch`). A replica whose lease ran out missed whatever the others did
meanwhile: what it read before (Bundles, objects) is stale, so a reconcile begun in an earlier membership
may do nothing more (`left(..., epoch=)`), and the controller reads everything again before it acts.

A member whose lease seems to have run out, as this replica's watch tells it, is counted live until a
read of its lease confirms it: a watch that falls behind (this replica's process starved) would otherwise
miss a renewal and let this replica take over Bundles that member may still act for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from smith_controller.tasks import cancel_and_wait
from smith_engine.sharding import Membership, owner
from smith_kube import KubeClient, KubeConfig, KubeError, NotFoundError, WatchEvent
from smith_kube.client import MERGE_PATCH, JSONObject
from smith_kube.informer import run_informer

log = logging.getLogger("smith.controller.members")
LEASE_API = "coordination.k8s.io/v1"
MEMBER_LABEL = "smith.atlassian.com/controller-member"
LEASE_PREFIX = "smith-controller-"


def default_identity() -> str:
    """The pod's name in a cluster (its hostname), host and process id elsewhere."""
    return os.environ.get("SMITH_CONTROLLER_ID") or f"{socket.gethostname()}-{os.getpid()}"


def lease_name(identity: str) -> str:
    return LEASE_PREFIX + re.sub(r"[^a-z0-9.-]", "-", identity.lower()).strip("-.")[:200]


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Members:
    def __init__(
        self,
        config: KubeConfig,
        *,
        namespace: str,
        identity: str,
        duration: float,
        changed: Callable[[], None],
    ) -> None:
        """`changed()` is called whenever the live members change (the Bundles owned change with them),
        or this replica's membership begins again. The leases have a connection pool of their own: a
        renewal never waits behind the controller's watches and requests."""
        self.kube = KubeClient(config, timeout=duration / 3)
        self.namespace, self.identity, self.duration = namespace, identity, duration
        self.changed = changed
        self.seen = Membership()
        self._renewed_at = -float("inf")  # when the last successful renewal was sent (monotonic)
        self._since = 0.0  # when this replica's current membership began (monotonic)
        self._rejoined = False  # it began after the lease had run out (the replica was paused, cut off)
        self.epoch = 0  # this replica's memberships so far: one more each time one begins
        self._live: frozenset[str] = frozenset()
        self._acting = False
        self._told = 0  # the membership `changed()` was last called in
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._leases: dict[str, tuple[str, str]] = {}  # the others' leases: name, resourceVersion read
        self._removals: set[asyncio.Task[None]] = set()
        self._confirming: asyncio.Task[None] | None = None  # reading the leases of members that ran out

    @property
    def lease(self) -> str:
        return lease_name(self.identity)

    async def start(self) -> None:
        """Join in the background: until its lease is written (the API server may be unreachable or
        refusing for a while), this replica owns nothing."""
        self._tasks = [
            asyncio.create_task(self._renewing(), name="renew lease"),
            asyncio.create_task(self._watching(), name="watch leases"),
            asyncio.create_task(self._expiring(), name="expire leases"),
        ]

    async def stop(self) -> None:
        """Leave: stop renewing and delete the lease, so the others take this share over at once."""
        confirming = [self._confirming] if self._confirming is not None else []
        await cancel_and_wait([*self._tasks, *self._removals, *confirming])
        with contextlib.suppress(KubeError):
            await self.kube.delete(LEASE_API, "Lease", self.lease, namespace=self.namespace)
        await self.kube.close()

    def is_synced(self) -> bool:
        return self._synced.is_set()

    async def synced(self) -> None:
        """Wait until the members' leases have been listed once (before that, nothing is owned)."""
        await self._synced.wait()

    def alive(self, now: float | None = None) -> bool:
        """This replica's lease is still valid as everyone sees it: renewed within its duration."""
        return (time.monotonic() if now is None else now) < self._renewed_at + self.duration

    @property
    def rejoined(self) -> bool:
        """The current membership began after this replica's lease had run out."""
        return self._rejoined

    def left(self, namespace: str, name: str, *, epoch: int | None = None) -> float:
        """Seconds this replica may still act for the Bundle (0: it is not this replica's now, or
        `epoch` is given and is not the current membership's)."""
        now = time.monotonic()
        if not (self._synced.is_set() and self.alive(now)) or epoch not in (None, self.epoch):
            return 0.0
        others = self.seen.live(now)
        if (others or self._rejoined) and now < self._since + self.duration / 3:
            return 0.0  # just joined: the others may not have seen it yet
        if owner(f"{namespace}/{name}", others | {self.identity}) != self.identity:
            return 0.0
        return max(0.0, self._renewed_at + self.duration * 4 / 5 - now)

    def live(self) -> frozenset[str]:
        """The live members, this replica among them while its lease is valid."""
        return self._live

    def in_share(self, namespace: str, name: str) -> bool:
        """The Bundle falls to this replica among the live members (whether it may act now or not, see
        `owns`): what its caches keep. Changes only when `changed()` is called."""
        return owner(f"{namespace}/{name}", self._live | {self.identity}) == self.identity

    # --- this replica's lease ---------------------------------------------------------------------

    async def _renewing(self) -> None:
        while True:
            try:
                await self._renew()
            except Exception as e:  # refused, or the API server unreachable: again at the next third
                log.warning("could not renew lease %s: %s", self.lease, e or type(e).__name__)
            await asyncio.sleep(self.duration / 3)

    async def _renew(self) -> None:
        sent, now = time.monotonic(), micro_time(datetime.now(UTC))
        spec = {
            "holderIdentity": self.identity,
            # whole seconds, rounded up: the others never count it gone sooner than it does itself
            "leaseDurationSeconds": math.ceil(self.duration),
            "renewTime": now,
        }
        try:
            await self.kube.patch(
                LEASE_API,
                "Lease",
                self.lease,
                {"spec": spec},
                namespace=self.namespace,
                content_type=MERGE_PATCH,
            )
        except NotFoundError:
            meta = {"name": self.lease, "namespace": self.namespace, "labels": {MEMBER_LABEL: "true"}}
            await self.kube.create(
                {
                    "apiVersion": LEASE_API,
                    "kind": "Lease",
                    "metadata": meta,
                    "spec": {**spec, "acquireTime": now},
                }
            )
        if not self.alive(sent):  # a new membership: the first, or after the lease ran out
            self._rejoined, self._since = self._renewed_at > -float("inf"), sent
            self.epoch += 1
        self._renewed_at = sent
        self._recount()

    # --- the others' ------------------------------------------------------------------------------

    async def _watching(self) -> None:
        await run_informer(
            self.kube,
            LEASE_API,
            "Lease",
            on_list=self._listed,
            on_event=self._event,
            label_selector=MEMBER_LABEL,
            synced=self._synced,
            namespace=self.namespace,
        )

    def _listed(self, leases: Sequence[JSONObject]) -> None:
        holders = {_holder(lease) for lease in leases}
        for gone in set(self.seen.live(time.monotonic())) - holders:
            self.seen.forget(gone)
        for lease in leases:
            self._observe(lease)
        self._recount()

    def _event(self, event: WatchEvent) -> None:
        if event.type == "DELETED":
            self.seen.forget(_holder(event.object))
            self._leases.pop(_holder(event.object), None)
        else:
            self._observe(event.object)
        self._recount()

    def _observe(self, lease: JSONObject) -> None:
        spec = lease.get("spec") or {}
        if (holder := _holder(lease)) and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            self.seen.observe(holder, str(spec.get("renewTime", "")), duration, time.monotonic())
            self._leases[holder] = (lease["metadata"]["name"], lease["metadata"].get("resourceVersion", ""))

    async def _remove(self, holder: str) -> None:
        """A member's lease ran out unrenewed: delete it (only the version read: a renewal meanwhile
        wins), so that gone replicas leave no leases behind; every live member may try."""
        name, version = self._leases.pop(holder, ("", ""))
        if name:
            with contextlib.suppress(KubeError):
                await self.kube.delete(
                    LEASE_API, "Lease", name, namespace=self.namespace, resource_version=version
                )

    async def _expiring(self) -> None:
        """Count again when a lease (this replica's too) runs out without a renewal, or this replica's
        wait after joining ends: no event says so."""
        while True:
            now = time.monotonic()
            due = [self._renewed_at + self.duration, self._acting_from()]
            if (expiry := self.seen.next_expiry(now)) is not None:
                due.append(now + expiry)
            await asyncio.sleep(min((t - now for t in due if t > now), default=self.duration / 3) + 0.01)
            self._recount()

    def _acting_from(self) -> float:
        """When this replica's wait after joining ends (monotonic)."""
        return self._since + self.duration / 3

    def _ran_out(self, now: float) -> frozenset[str]:
        """Members counted live until now whose leases ran out as this replica's watch tells it (not
        deleted: a member that leaves deletes its lease)."""
        return frozenset(m for m in self._live - self.seen.live(now) - {self.identity} if self.seen.knows(m))

    async def _confirm(self) -> None:
        """Read the lease of each member that seems to have run out: renewed meanwhile, it stays; not
        renewed (or deleted), it is gone. Unreadable (the API server unreachable), it stays live for now
        and is read again at the next count."""
        try:
            for member in self._ran_out(time.monotonic()):
                name = self._leases.get(member, (lease_name(member), ""))[0]
                try:
                    lease = await self.kube.get(LEASE_API, "Lease", name, namespace=self.namespace)
                except NotFoundError:
                    self.seen.forget(member)
                    continue
                except KubeError as e:
                    log.warning("could not read the lease of member %s: %s", member, e)
                    return
                self._observe(lease)
                if member not in self.seen.live(time.monotonic()):
                    self.seen.forget(member)  # not renewed: gone (its lease is deleted as it drops out)
        finally:
            self._confirming = None
        self._recount()

    def _recount(self) -> None:
        now = time.monotonic()
        if (unsure := self._ran_out(now)) and self._confirming is None:
            self._confirming = asyncio.create_task(self._confirm(), name="read leases run out")
        alive = {self.identity} if self.alive(now) else frozenset()
        live = self.seen.live(now) | unsure | alive
        acting = now >= self._acting_from()
        # a new membership is news even when the members and the wait look as before (back within
        # its wait after joining): the controller lists the Bundles again before it acts in it
        if (live, acting, self.epoch) != (self._live, self._acting, self._told):
            if live != self._live:
                log.info("controller members: %s", sorted(live))
                for gone in self._live - live - {self.identity}:
                    if self.alive(now):  # only a live member tidies up after the others
                        removal = asyncio.create_task(self._remove(gone), name="remove lease")
                        self._removals.add(removal)
                        removal.add_done_callback(self._removals.discard)
            self._live, self._acting, self._told = live, acting, self.epoch
            self.changed()


def _holder(lease: JSONObject) -> str:
    return str((lease.get("spec") or {}).get("holderIdentity") or "")
