"""One reconcile of one Bundle, in four numbered steps inside one trace. It holds no rule of its own:
the planner decides, the executors act, the status service writes, and what a pass decides between
them (the next wave, what answers settle, whether the report may wait) is smith_engine.passes. Its
calls are the service clients' (clients.py): each has a deadline and a write is cut to the fence."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import grpc
from opentelemetry import trace
from smith_wire.convert import (
    action_from_proto,
    dump,
    load,
    pending_from_proto,
    pending_to_proto,
    readiness_to_proto,
    result_from_proto,
    result_to_proto,
    settled_from_proto,
    verdict_from_proto,
    verdict_to_proto,
    wave_from_proto,
)

from smith.v1 import common_pb2, planner_pb2, plugin_pb2
from smith_controller import outside
from smith_controller.cache import BundleKey, BundleState, Child, ChildCache, Version, kept
from smith_controller.clients import Fence, ServiceClients, ShareLostError, action_kind
from smith_controller.echoes import Echoes
from smith_controller.lifecycle import Lifecycle, finalizers_of
from smith_controller.outside import OutsideWatches
from smith_controller.settings import HELD, SKIPPED
from smith_engine import passes
from smith_engine.ahead import Wave
from smith_engine.changes import desired_hash
from smith_engine.codec import loads
from smith_engine.deletion import FINALIZER, PendingDeletion
from smith_engine.limits import MAX_OUTSIDE
from smith_engine.model import GroupKind, JSONObject, ObjectKey, ObjectRef, group_of
from smith_engine.planner import Action, Apply, Verdict
from smith_engine.readiness import READY, retriable
from smith_engine.status import ActionResult, may_wait
from smith_kube import KubeClient

log = logging.getLogger("smith.controller")
tracer = trace.get_tracer("smith.controller")


class Next(StrEnum):
    """What a reconcile asks of the scheduler."""

    DONE = "done"  # wait for the next event
    RETRY = "retry"  # something failed in a way worth retrying, after a back-off


@dataclass(frozen=True)
class Step:
    """What one reconcile leaves behind: what to ask of the scheduler, and the objects (not Smith's)
    that block a resource, which the controller watches until they stop blocking."""

    next: Next
    blockers: tuple[ObjectRef, ...] = ()
    wake_after: float | None = None  # reconcile again after this many seconds (a soft delete falls due)
    written: JSONObject | None = None  # the Bundle as it is after this reconcile's status write, if any
    unreported: tuple[ActionResult, ...] = ()  # what was done, if the status service was not told
    held: bool = False  # the report was held back: the pass only made progress (see `reconcile`'s `hold`)
    converged: bool = False  # nothing left that can change by itself (see passes.converged)


async def run_pass(
    clients: ServiceClients,
    bundle: JSONObject,
    children: Sequence[Child],
    *,
    outside: Sequence[JSONObject] = (),
    forbidden: Sequence[tuple[JSONObject, str]] = (),
    earlier: Sequence[ActionResult] = (),
    fence: Fence | None = None,
    hold: bool = False,
    plan_ahead: bool = True,
    finalizing: Awaitable[JSONObject | None] | None = None,
    wrote: Callable[[list[Version]], None] = lambda _: None,
) -> Step:
    """Converge `bundle` as far as it goes now. `outside` are objects not the Bundle's that it reads: the
    Secrets of its ServiceBindings (`bindsecret` references), the ConfigMaps and Secrets its Deployments
    and ServiceInstances read (envRefHash, secretParametersChecksum). `earlier` are the done actions of a
    pass whose report did not get through: this report tells them (their Events are not lost). `fence`
    says how long this replica may still act for the Bundle: every write is checked against it. `hold`:
    a report was written a moment ago, so a pass that only made progress (nothing failed, no resource in
    error, the Bundle not READY yet) tells it with the next report (its `unreported`); a Bundle turned
    READY, an error or an object in the way is always reported at once. `finalizing`: the write of Smith's
    finalizer, going on meanwhile (a new Bundle's first pass does not wait for it); the report waits for
    it and writes over the version it made (None: it failed, and the pass ends, told by the next one).
    `plan_ahead`: the planner also plans the waves that follow a wave if its answers come as it predicts,
    and they go in the same call to the executor, which checks the answers (see smith_engine.ahead).
    `wrote` is told, wave by wave, the objects the pass wrote and the versions the API server answered
    (their watch events are no news: see echoes.Echoes)."""
    meta = bundle["metadata"]
    with tracer.start_as_current_span(f"reconcile {meta['namespace']}/{meta['name']}") as span:
        span.set_attribute("smith.bundle", f"{meta['namespace']}/{meta['name']}")
        span.set_attribute("smith.generation", int(meta.get("generation", 0)))

        # 1. assess: readiness of every observed child, from the executor serving its kind
        ready = readiness_to_proto(READY)
        seen = Seen([c.key for c in children], await clients.assess(children))
        seen.add(
            [ObjectKey.of(o) for o in outside],
            [common_pb2.Observed(object_json=dump(o), readiness=ready) for o in outside],
        )
        seen.add(  # externalRefs the Bundle may not read: errors of their resources, retried
            [ObjectKey.of(o) for o, _ in forbidden],
            [
                common_pb2.Observed(object_json=dump(o), readiness=readiness_to_proto(retriable(why)))
                for o, why in forbidden
            ],
        )

        # 2. plan and 3. act, in one pass: an apply the API server answers with an object already READY
        # (and holding what dependents read) goes back into what is seen and the planner is asked again,
        # so the next wave goes at once; the pass ends at the first plan with nothing new to do (what is
        # left waits for time: a rollout, a controller's status; its watch event brings the next pass).
        acted = await _plan_and_act(clients, bundle, seen, fence=fence, plan_ahead=plan_ahead, wrote=wrote)
        span.set_attribute("smith.waves", acted.waves)
        if acted.invalid is not None:
            span.set_attribute("smith.verdict", "InvalidBundle")
            if (bundle_now := await _finalized(bundle, finalizing)) is None:
                return Step(Next.RETRY)
            written = await clients.report(bundle_now, invalid=acted.invalid, fence=fence)
            return Step(Next.DONE, written=written)

        # 4. report, once for the whole pass (or with the next pass's, when it only shows progress)
        return await _report(
            clients, bundle, acted, earlier=earlier, hold=hold, finalizing=finalizing, fence=fence
        )


@dataclass
class Acted:
    """What steps 2 and 3 of a pass did: the actions made (waves planned ahead too), the executors'
    answers, and what the last plan tells; or why the Bundle is invalid."""

    told: Told | None = None
    actions: list[Action] = field(default_factory=list)
    results: list[common_pb2.ActionResult] = field(default_factory=list)
    waves: int = 0
    invalid: str | None = None


async def _plan_and_act(
    clients: ServiceClients,
    bundle: JSONObject,
    seen: Seen,
    *,
    fence: Fence | None,
    plan_ahead: bool,
    wrote: Callable[[list[Version]], None],
) -> Acted:
    acted, bundle_json = Acted(), dump(bundle)
    ahead_made: dict[str, str] = {}  # resources applied as planned ahead: their desired hash
    ready = readiness_to_proto(READY).state
    while True:
        try:
            plan = await clients.plan(bundle, bundle_json, seen.observed, ahead=plan_ahead)
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            acted.invalid = e.details() or "invalid bundle"
            return acted
        done = {passes.identity(a) for a in acted.actions}
        wave = passes.next_wave([action_from_proto(a) for a in plan.actions], done, ahead_made)
        if not wave:
            break
        ahead = _ahead_with(clients, wave, plan.ahead)
        answered = await clients.execute(bundle, wave, fence=fence, then=[sent for sent, _ in ahead])
        wrote(_written(answered))
        made = {r.resource_name for r in answered}
        went = [w for _, w in ahead if made.issuperset(a.resource for a in w.actions)]
        for applied in went:
            acted.actions += applied.actions
            ahead_made |= {a.resource: desired_hash(a.object) for a in applied.actions}
        acted.actions += wave
        acted.results += answered
        acted.waves += 1 + len(went)
        if len(went) == len(plan.ahead) and (settled := _settled(plan, answered)) is not None:
            acted.told = Told(settled)  # the plan after this wave is the one the planner predicted
            return acted
        if not passes.goes_on([result_from_proto(r) for r in answered], wave):
            break
        seen.update([r for r in answered if r.ok and r.observed.readiness.state == ready])
    acted.told = Told.of(plan)
    return acted


async def _report(
    clients: ServiceClients,
    bundle: JSONObject,
    acted: Acted,
    *,
    earlier: Sequence[ActionResult],
    hold: bool,
    finalizing: Awaitable[JSONObject | None] | None,
    fence: Fence | None,
) -> Step:
    """Step 4: tell the status service what the pass did and how the Bundle is (or keep it for the next
    report, when the pass only made progress and a report was written a moment ago)."""
    span, told = trace.get_current_span(), acted.told
    assert told is not None, "a pass that planned tells its last plan"
    done_now = [result_from_proto(r) for r in acted.results]
    blockers, wake = passes.blockers(acted.actions, done_now), told.wake_after
    later = passes.told_later([*earlier, *done_now])
    if (bundle_now := await _finalized(bundle, finalizing)) is None:
        return Step(Next.RETRY, blockers, wake, unreported=later)
    if hold and may_wait(told.verdicts, [*earlier, *done_now], told.pending):
        span.set_attribute("smith.report", "held")
        return Step(Next.DONE, blockers, wake, unreported=later, held=True)
    try:
        written = await clients.report(
            bundle_now,
            verdicts=[verdict_to_proto(v) for v in told.verdicts],
            results=[*map(result_to_proto, earlier), *acted.results],
            pending=[pending_to_proto(p) for p in told.pending],
            plugins=told.plugins,
            fence=fence,
        )
    except grpc.aio.AioRpcError as e:
        meta = bundle["metadata"]
        log.warning("report of %s/%s: %s %s", meta["namespace"], meta["name"], e.code().name, e.details())
        return Step(Next.RETRY, blockers, wake, unreported=later)
    retry = passes.must_retry(done_now, told.verdicts)
    span.set_attribute("smith.retry", retry)
    converged = passes.converged(told.verdicts, told.pending, [*earlier, *done_now])
    return Step(Next.RETRY if retry else Next.DONE, blockers, wake, written, converged=converged)


@dataclass(frozen=True)
class Told:
    """What the pass's report tells of its last plan: as the planner answered it, or as it predicted it
    (settled: every resource READY, nothing pending, no plugin to tell of)."""

    verdicts: Sequence[Verdict]
    pending: Sequence[PendingDeletion] = ()
    plugins: Sequence[plugin_pb2.PluginStatus] = ()
    wake_after: float | None = None

    @classmethod
    def of(cls, plan: planner_pb2.PlanResponse) -> Told:
        return cls(
            [verdict_from_proto(v) for v in plan.verdicts],
            [pending_from_proto(p) for p in plan.pending],
            plan.plugin_statuses,
            plan.wake_after_seconds or None,
        )


async def _finalized(
    bundle: JSONObject, finalizing: Awaitable[JSONObject | None] | None
) -> JSONObject | None:
    """The Bundle to report on: as the finalizer's write left it, if one was going on (None: it failed)."""
    return bundle if finalizing is None else await finalizing


class Seen:
    """The objects one pass has seen, each with its readiness; an apply's answer replaces what was seen
    of its object (or adds it: a create)."""

    def __init__(self, keys: Sequence[ObjectKey], observed: Sequence[common_pb2.Observed]) -> None:
        self._by_key: dict[ObjectKey, common_pb2.Observed] = {}
        self.add(keys, observed)

    def add(self, keys: Sequence[ObjectKey], observed: Sequence[common_pb2.Observed]) -> None:
        for key, seen in zip(keys, observed, strict=True):
            self._by_key[key] = seen

    def update(self, answers: Sequence[common_pb2.ActionResult]) -> None:
        """Each answer's object as its executor returned it, keyed by the reference it came with."""
        for answer in answers:
            self._by_key[_key(answer.object)] = answer.observed

    @property
    def observed(self) -> list[common_pb2.Observed]:
        return list(self._by_key.values())


def _still(guard: Callable[[], None]) -> bool:
    """Whether the Bundle is still this replica's, in the membership its pass began in (a pass that
    ended after the share moved leaves nothing settled: another replica may act on it meanwhile)."""
    try:
        guard()
    except ShareLostError:
        return False
    return True


def _key(ref: common_pb2.ObjectRef) -> ObjectKey:
    return ObjectKey(GroupKind(group_of(ref.api_version), ref.kind), ref.name)


def _written(answers: Sequence[common_pb2.ActionResult]) -> list[Version]:
    """The objects the answers say were written (created or updated), each at the version it was left."""
    return [
        (_key(r.object), str(load(r.observed.object_json)["metadata"].get("resourceVersion", "")))
        for r in answers
        if r.ok
        and r.outcome in (common_pb2.OUTCOME_CREATED, common_pb2.OUTCOME_UPDATED)
        and r.HasField("observed")
    ]


def _ahead_with(
    clients: ServiceClients, wave: Sequence[Action], planned: Sequence[common_pb2.Wave]
) -> list[tuple[common_pb2.Wave, Wave]]:
    """The waves planned ahead that go with `wave` in one call, as sent and as read: `wave` all applies
    to one executor, and each wave ahead too (up to the first that is not)."""
    endpoints = {clients.routing.endpoint(action_kind(a)) for a in wave}
    if len(endpoints) != 1 or None in endpoints or not all(isinstance(a, Apply) for a in wave):
        return []
    ahead = []
    for sent in planned:
        read = wave_from_proto(sent)
        if {clients.routing.endpoint(action_kind(a)) for a in read.actions} != endpoints:
            break
        ahead.append((sent, read))
    return ahead


def _settled(
    plan: planner_pb2.PlanResponse, answered: Sequence[common_pb2.ActionResult]
) -> tuple[Verdict, ...] | None:
    """The verdicts after every wave of `plan` (all of them made: the caller knows), when the planner
    predicted them and the answers of the last wave settle it (see passes.settled)."""
    if not plan.HasField("settled"):
        return None
    ready = readiness_to_proto(READY).state
    answers = {
        r.resource_name: load(r.observed.object_json)
        for r in answered
        if r.ok and r.HasField("observed") and r.observed.readiness.state == ready
    }
    return passes.settled(settled_from_proto(plan.settled), answers)


@dataclass
class Reconciler:
    """One Bundle's pass with what it reads and keeps: its objects from the child cache, the objects
    outside it (read, and watched by name after), its lifecycle (finalizer, teardown), and what the pass
    leaves (its state record, the queue's timers). The caller passes in the fence and the ownership
    guard, and maps what is raised to a retry."""

    clients: ServiceClients
    kube: KubeClient
    cache: ChildCache
    by_name: OutsideWatches
    lifecycle: Lifecycle
    echoes: Echoes
    later: Callable[[BundleKey, float], None]  # reconcile the Bundle again after so many seconds
    status_window: float
    plan_ahead: bool
    access: outside.Access | None = None  # what a Bundle's ServiceAccount may read (externalRef)

    async def reconcile(
        self, key: BundleKey, state: BundleState, *, fence: Fence | None, guard: Callable[[], None]
    ) -> bool:
        """Tear the deleted Bundle down a step, or reconcile it (writing Smith's finalizer meanwhile on a
        new one), and keep what the pass leaves: True asks for a retry."""
        stored = state.kept
        bundle: JSONObject = loads(stored)
        if bundle["metadata"].get("deletionTimestamp"):
            await self.lifecycle.tear_down(key, bundle, fence=fence, guard=guard)
            return False
        finalizing: asyncio.Task[JSONObject | None] | None = None
        if FINALIZER not in finalizers_of(bundle):
            guard()
            finalizing = asyncio.create_task(self.lifecycle.finalize(key, bundle), name="finalizer")
        elif state.unchanged_since_settled():
            SKIPPED.inc()  # converged, and nothing it reads changed since: this pass would do nothing
            return False
        began = state.changes
        try:
            children = self.cache.children(key)
            sources = outside.sources(bundle, children)
            read = await outside.read(self.kube, bundle, children, sources, self.by_name, self.access)
            step = await run_pass(
                self.clients,
                bundle,
                children,
                outside=read.objects,
                forbidden=read.forbidden,
                earlier=state.unreported,
                fence=fence,
                hold=state.window_left(self.status_window) > 0,
                plan_ahead=self.plan_ahead,
                finalizing=finalizing,
                wrote=lambda versions: self.echoes.wrote(key, versions),
            )
            state.unreported = step.unreported
            # At most MAX_OUTSIDE objects in the way are watched for one Bundle; past them, the resync.
            self.by_name.set(key, [*step.blockers[:MAX_OUTSIDE], *sources])
            latest = step.written or (finalizing.result() if finalizing is not None else None)
        finally:
            if finalizing is not None and not finalizing.done():
                finalizing.cancel()  # the pass ended before its report: the next pass writes it
        settled = step.converged and step.next is Next.DONE and not (step.blockers or step.held)
        settled = settled and outside.all_watched(bundle, children, sources, self.by_name) and _still(guard)
        state.settled = began if settled else None
        if step.written is not None:
            state.written_at = time.monotonic()
        if latest is not None and state.kept is stored:
            state.kept = kept(latest)  # no newer version came meanwhile
        if step.held:
            HELD.inc()
            self.later(key, state.window_left(self.status_window))
        if step.wake_after is not None:
            self.later(key, step.wake_after)
        return step.next is Next.RETRY
