"""One reconcile of one Bundle, in four numbered steps inside one trace. It holds no logic of its own:
the planner decides, executors act, the status service writes. Every gRPC call has a deadline, and a
service that does not answer becomes a retriable error on the resources it was asked about."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import grpc
from opentelemetry import trace
from prometheus_client import Gauge
from smith_wire.convert import (
    action_from_proto,
    action_target,
    action_to_proto,
    dump,
    load,
    pending_from_proto,
    pending_to_proto,
    plugin_to_proto,
    readiness_to_proto,
    ref_to_proto,
    result_from_proto,
    result_to_proto,
    settled_from_proto,
    verdict_from_proto,
    verdict_to_proto,
    wave_from_proto,
)
from smith_wire.rpc import APPLY_DEADLINE, ASSESS_DEADLINE, PLAN_DEADLINE, REPORT_DEADLINE, channel
from smith_wire.trust import ClientTrust, Insecure

from smith.v1 import (
    common_pb2,
    executor_pb2,
    executor_pb2_grpc,
    planner_pb2,
    planner_pb2_grpc,
    plugin_pb2,
    plugin_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
)
from smith_controller.cache import Child, Version
from smith_engine import passes
from smith_engine.ahead import Wave
from smith_engine.changes import desired_hash
from smith_engine.deletion import PendingDeletion
from smith_engine.model import GroupKind, JSONObject, ObjectKey, ObjectRef, group_of
from smith_engine.planner import Action, Apply, Verdict
from smith_engine.plugins import PluginInfo
from smith_engine.readiness import READY, retriable
from smith_engine.routing import RoutingTable
from smith_engine.status import ActionResult, may_wait

log = logging.getLogger("smith.controller")
tracer = trace.get_tracer("smith.controller")
REACHABLE = Gauge(
    "smith_executor_reachable",
    "1 when the last call to the executor at this endpoint was answered",
    ["endpoint"],
)


def _answered(endpoint: str, error: grpc.aio.AioRpcError | None = None) -> None:
    reachable = error is None or error.code() not in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    REACHABLE.labels(endpoint=endpoint).set(1 if reachable else 0)


@dataclass
class Peers:
    """gRPC stubs of the planner, the status service, the executors and the plugins: one channel per
    endpoint, made with the controller's trust (TLS to Smith's servers, its ServiceAccount token on every
    call), and made again when the CA bundle it trusts changes (a rotation needs no restart)."""

    planner_endpoint: str
    status_endpoint: str
    routing: RoutingTable
    trust: ClientTrust | Insecure
    plugins: dict[str, PluginInfo] = field(default_factory=dict)  # registered plugins, by name
    identity: str = ""  # the controller replica's (the Events it causes name it)
    _stubs: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    _channels: dict[tuple[str, str], grpc.aio.Channel] = field(default_factory=dict)  # by endpoint, server
    _trusted: object = None  # the CA bundle's version the channels were made with
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def connect(
        cls,
        *,
        planner: str,
        status: str,
        routing: RoutingTable,
        trust: ClientTrust | Insecure,
        plugins: dict[str, PluginInfo] | None = None,
        identity: str = "",
    ) -> Peers:
        return cls(planner, status, routing, trust, plugins if plugins is not None else {}, identity)

    @property
    def planner(self) -> planner_pb2_grpc.PlannerAsyncStub:
        return self._stub(  # type: ignore[no-any-return]
            self.planner_endpoint, "planner", planner_pb2_grpc.PlannerStub
        )

    @property
    def status(self) -> status_pb2_grpc.StatusAsyncStub:
        return self._stub(self.status_endpoint, "status", status_pb2_grpc.StatusStub)  # type: ignore[no-any-return]

    def executor(self, endpoint: str) -> executor_pb2_grpc.ExecutorAsyncStub:
        """The executor registered at `endpoint`; the token sent is for that registration's audience
        (`executor-<name>`): whoever listens there can use it nowhere else."""
        name = next((e.name for e in self.routing.executors.values() if e.endpoint == endpoint), "")
        return self._stub(endpoint, f"executor-{name}", executor_pb2_grpc.ExecutorStub)  # type: ignore[no-any-return]

    def plugin(self, endpoint: str) -> plugin_pb2_grpc.PluginAsyncStub:
        name = next((p.name for p in self.plugins.values() if p.endpoint == endpoint), "")
        return self._stub(endpoint, f"plugin-{name}", plugin_pb2_grpc.PluginStub)  # type: ignore[no-any-return]

    def _stub(self, endpoint: str, server: str, make: Callable[[grpc.aio.Channel], Any]) -> Any:
        self._rotated()
        key = (endpoint, server, make.__name__)
        if (stub := self._stubs.get(key)) is None:
            if (ch := self._channels.get((endpoint, server))) is None:
                ch = self._channels[(endpoint, server)] = channel(endpoint, self.trust, server)
            stub = self._stubs[key] = make(ch)
        return stub

    def _rotated(self) -> None:
        """When the CA bundle changed, new calls go over new channels; the old ones close gracefully."""
        if isinstance(self.trust, Insecure):
            return
        try:
            version = self.trust.version()
        except OSError:
            return  # being replaced: keep the channels until the new bundle is there
        if version == self._trusted:
            return
        if self._trusted is not None:
            log.info("the CA bundle changed: new channels to every service")
        self._trusted, old = version, list(self._channels.values())
        self._stubs.clear()
        self._channels.clear()
        for ch in old:
            task = asyncio.create_task(ch.close(grace=APPLY_DEADLINE))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        for task in list(self._closing):
            task.cancel()


def bundle_ref(bundle: JSONObject) -> common_pb2.BundleRef:
    meta = bundle["metadata"]
    return common_pb2.BundleRef(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid", ""),
        generation=meta.get("generation", 0),
        resource_version=meta.get("resourceVersion", ""),
    )


def _rpc_problem(endpoint: str, error: grpc.aio.AioRpcError) -> str:
    return f"executor at {endpoint} did not answer: {error.code().name} {error.details() or ''}".strip()


Fence = Callable[[], float]  # seconds this controller replica may still act for the Bundle (0: no more)


class ShareLostError(Exception):
    """The Bundle stopped being this controller replica's: another one owns it now."""


def within(fence: Fence | None, deadline: float) -> float:
    """The deadline of a call that writes for the Bundle: `deadline`, cut to the time this replica may
    still act for it (so nothing it sends lands after another replica took over); ShareLostError at 0."""
    if fence is None:
        return deadline
    if (left := fence()) <= 0:
        raise ShareLostError
    return min(deadline, left)


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


async def reconcile(
    peers: Peers,
    bundle: JSONObject,
    children: Sequence[Child],
    *,
    outside: Sequence[JSONObject] = (),
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
        seen = Seen([c.key for c in children], await _assess(peers, children))
        seen.add(
            [ObjectKey.of(o) for o in outside],
            [common_pb2.Observed(object_json=dump(o), readiness=ready) for o in outside],
        )

        # 2. plan and 3. act, in one pass: an apply the API server answers with an object already READY
        # (and holding what dependents read) goes back into what is seen and the planner is asked again,
        # so the next wave goes at once; the pass ends at the first plan with nothing new to do (what is
        # left waits for time: a rollout, a controller's status; its watch event brings the next pass).
        actions: list[Action] = []
        results: list[common_pb2.ActionResult] = []
        ahead_made: dict[str, str] = {}  # resources applied as planned ahead: their desired hash
        settled: tuple[Verdict, ...] | None = None  # the last plan, as the planner predicted it
        waves, bundle_json = 0, dump(bundle)
        while True:
            try:
                plan = await _plan(peers, bundle, bundle_json, seen.observed, ahead=plan_ahead)
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                span.set_attribute("smith.verdict", "InvalidBundle")
                if (bundle_now := await _finalized(bundle, finalizing)) is None:
                    return Step(Next.RETRY)
                written = await _report(
                    peers,
                    bundle_now,
                    invalid=e.details() or "invalid bundle",
                    fence=fence,
                )
                return Step(Next.DONE, written=written)
            done = {passes.identity(a) for a in actions}
            wave = passes.next_wave([action_from_proto(a) for a in plan.actions], done, ahead_made)
            if not wave:
                break
            ahead = _ahead_with(peers, wave, plan.ahead)
            answered = await _execute(peers, bundle, wave, fence=fence, then=[sent for sent, _ in ahead])
            wrote(_written(answered))
            made = {r.resource_name for r in answered}
            went = [w for _, w in ahead if made.issuperset(a.resource for a in w.actions)]
            for applied in went:
                actions += applied.actions
                ahead_made |= {a.resource: desired_hash(a.object) for a in applied.actions}
                waves += 1
            actions += wave
            results += answered
            waves += 1
            if len(went) == len(plan.ahead) and (settled := _settled(plan, answered)) is not None:
                break  # the plan after this wave is the one the planner predicted
            if not passes.goes_on([result_from_proto(r) for r in answered], wave):
                break
            seen.update([r for r in answered if r.ok and r.observed.readiness.state == ready.state])
        span.set_attribute("smith.waves", waves)

        # 4. report, once for the whole pass (or with the next pass's, when it only shows progress)
        told = Told.of(plan, settled)
        done_now = [result_from_proto(r) for r in results]
        blockers, wake = passes.blockers(actions, done_now), told.wake_after
        later = passes.told_later([*earlier, *done_now])
        if (bundle_now := await _finalized(bundle, finalizing)) is None:
            return Step(Next.RETRY, blockers, wake, unreported=later)
        if hold and may_wait(told.verdicts, [*earlier, *done_now], told.pending):
            span.set_attribute("smith.report", "held")
            return Step(Next.DONE, blockers, wake, unreported=later, held=True)
        try:
            written = await _report(
                peers,
                bundle_now,
                verdicts=[verdict_to_proto(v) for v in told.verdicts],
                results=[*map(result_to_proto, earlier), *results],
                pending=[pending_to_proto(p) for p in told.pending],
                plugins=told.plugins,
                fence=fence,
            )
        except grpc.aio.AioRpcError as e:
            log.warning("report of %s/%s: %s %s", meta["namespace"], meta["name"], e.code().name, e.details())
            return Step(Next.RETRY, blockers, wake, unreported=later)
        retry = passes.must_retry(done_now, told.verdicts)
        span.set_attribute("smith.retry", retry)
        return Step(Next.RETRY if retry else Next.DONE, blockers, wake, written)


@dataclass(frozen=True)
class Told:
    """What the pass's report tells of its last plan: as the planner answered it, or as it predicted it
    (settled: every resource READY, nothing pending, no plugin to tell of)."""

    verdicts: Sequence[Verdict]
    pending: Sequence[PendingDeletion] = ()
    plugins: Sequence[plugin_pb2.PluginStatus] = ()
    wake_after: float | None = None

    @classmethod
    def of(cls, plan: planner_pb2.PlanResponse, settled: tuple[Verdict, ...] | None) -> Told:
        if settled is not None:
            return cls(settled)
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
    peers: Peers, wave: Sequence[Action], planned: Sequence[common_pb2.Wave]
) -> list[tuple[common_pb2.Wave, Wave]]:
    """The waves planned ahead that go with `wave` in one call, as sent and as read: `wave` all applies
    to one executor, and each wave ahead too (up to the first that is not)."""
    endpoints = {peers.routing.endpoint(_kind(a)) for a in wave}
    if len(endpoints) != 1 or None in endpoints or not all(isinstance(a, Apply) for a in wave):
        return []
    ahead = []
    for sent in planned:
        read = wave_from_proto(sent)
        if {peers.routing.endpoint(_kind(a)) for a in read.actions} != endpoints:
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


def _kind(action: Action) -> GroupKind:
    api_version, kind = action_target(action)
    return GroupKind(group_of(api_version), kind)


async def _plan(
    peers: Peers,
    bundle: JSONObject,
    bundle_json: bytes,
    observed: Sequence[common_pb2.Observed],
    *,
    ahead: bool = False,
) -> planner_pb2.PlanResponse:
    """The planner's plan; when plugin resources are ready to be made, their plugins are called and the
    planner asked again with what they made."""
    plugins = [plugin_to_proto(p) for p in peers.plugins.values()]
    request = planner_pb2.PlanRequest(
        bundle_json=bundle_json, observed=observed, plugins=plugins, plan_ahead=ahead
    )
    plan = await peers.planner.Plan(request, timeout=PLAN_DEADLINE)
    if plan.plugin_calls:
        for name, made in (await _process(peers, bundle, plan.plugin_calls)).items():
            request.processed[name].CopyFrom(made)
        plan = await peers.planner.Plan(request, timeout=PLAN_DEADLINE)
    return plan


async def teardown(
    peers: Peers, bundle: JSONObject, children: Sequence[Child], *, fence: Fence | None = None
) -> bool:
    """One step of a deleted Bundle's teardown: delete the objects nothing else of it depends on (the
    next wave comes with the watch events of their going). True when none of its objects is left."""
    meta = bundle["metadata"]
    with tracer.start_as_current_span(f"teardown {meta['namespace']}/{meta['name']}") as span:
        span.set_attribute("smith.bundle", f"{meta['namespace']}/{meta['name']}")
        observed = [common_pb2.Observed(object_json=c.json) for c in children]
        request = planner_pb2.PlanRequest(bundle_json=dump(bundle), observed=observed)
        plan = await peers.planner.Plan(request, timeout=PLAN_DEADLINE)
        actions = [action_from_proto(a) for a in plan.actions]
        results = await _execute(peers, bundle, actions, fence=fence)
        if failed := [r for r in results if not r.ok]:
            problems = "; ".join(f"{r.object.kind} {r.object.name}: {r.error_message}" for r in failed)
            raise TeardownError(f"could not delete {problems}")
        span.set_attribute("smith.finished", plan.finished)
        return plan.finished


class TeardownError(Exception):
    """A deletion of the teardown failed (retried after a back-off)."""


async def _process(
    peers: Peers, bundle: JSONObject, calls: Sequence[plugin_pb2.ProcessRequest]
) -> dict[str, plugin_pb2.ProcessResponse]:
    """Call each plugin the plan asked for, all at once; a plugin that does not answer is a retriable
    error on its resource."""

    async def one(call: plugin_pb2.ProcessRequest) -> plugin_pb2.ProcessResponse:
        name = call.plugin
        info = peers.plugins.get(name)
        if info is None:  # gone between the plan and now
            return plugin_pb2.ProcessResponse(error_message=f"plugin {name!r} went away", retriable=True)
        request = plugin_pb2.ProcessRequest()
        request.CopyFrom(call)
        request.bundle.CopyFrom(bundle_ref(bundle))
        try:
            return await peers.plugin(info.endpoint).Process(request, timeout=APPLY_DEADLINE)
        except grpc.aio.AioRpcError as e:
            message = f"plugin at {info.endpoint} did not answer: {e.code().name} {e.details() or ''}".strip()
            return plugin_pb2.ProcessResponse(error_message=message, retriable=True)

    answers = await asyncio.gather(*(one(c) for c in calls))
    return {c.resource_name: a for c, a in zip(calls, answers, strict=True)}


async def _assess(peers: Peers, children: Sequence[Child]) -> list[common_pb2.Observed]:
    dumped = [c.json for c in children]
    readiness: list[common_pb2.Readiness] = [common_pb2.Readiness()] * len(children)
    in_sync: list[str] = [""] * len(children)
    last_applied: list[str] = [""] * len(children)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, child in enumerate(children):
        kind = child.key.group_kind
        endpoint = peers.routing.endpoint(kind)
        if endpoint is None:
            readiness[i] = readiness_to_proto(retriable(f"no live executor serves {kind}"))
        else:
            groups[endpoint].append(i)

    async def ask(endpoint: str, indices: list[int]) -> None:
        request = executor_pb2.AssessRequest(objects_json=[dumped[i] for i in indices])
        try:
            answer = await peers.executor(endpoint).Assess(request, timeout=ASSESS_DEADLINE)
        except grpc.aio.AioRpcError as e:
            _answered(endpoint, e)
            for i in indices:
                readiness[i] = readiness_to_proto(retriable(_rpc_problem(endpoint, e)))
            return
        _answered(endpoint)
        for i, r in zip(indices, answer.readiness, strict=True):
            readiness[i] = r
        for i, h in zip(indices, answer.in_sync_with, strict=False):  # empty from an older executor
            in_sync[i] = h
        for i, h in zip(indices, answer.last_applied, strict=False):
            last_applied[i] = h

    await asyncio.gather(*(ask(e, ix) for e, ix in groups.items()))
    return [
        common_pb2.Observed(object_json=c, readiness=r, in_sync_with=h, last_applied=a)
        for c, r, h, a in zip(dumped, readiness, in_sync, last_applied, strict=True)
    ]


async def _execute(
    peers: Peers,
    bundle: JSONObject,
    actions: Sequence[Action],
    *,
    fence: Fence | None = None,
    then: Sequence[common_pb2.Wave] = (),
) -> list[common_pb2.ActionResult]:
    """Send the actions to the executors serving their kinds, one call per executor and direction, all at
    once (`then`: the waves planned ahead of them, when they all go to one executor: see `_ahead_with`).
    Each call's deadline is taken from the fence as the call is made, not before: a replica
    paused in between must not send, on resuming, a deadline it no longer has."""
    results: list[common_pb2.ActionResult] = []
    batches: dict[tuple[str, bool], list[Action]] = defaultdict(list)
    for action in actions:
        group_kind = _kind(action)
        endpoint = peers.routing.endpoint(group_kind)
        if endpoint is None:
            results.append(_failed(action, *peers.routing.unserved(group_kind)))
        else:
            batches[(endpoint, isinstance(action, Apply))].append(action)

    async def send(endpoint: str, applying: bool, batch: list[Action]) -> list[common_pb2.ActionResult]:
        stub, ref = peers.executor(endpoint), bundle_ref(bundle)
        protos = [action_to_proto(a) for a in batch]
        try:
            if applying:
                answer: executor_pb2.ApplyResponse | executor_pb2.DeleteResponse = await stub.Apply(
                    executor_pb2.ApplyRequest(bundle=ref, actions=protos, then=then),
                    timeout=within(fence, APPLY_DEADLINE),
                )
            else:
                answer = await stub.Delete(
                    executor_pb2.DeleteRequest(bundle=ref, actions=protos),
                    timeout=within(fence, APPLY_DEADLINE),
                )
        except grpc.aio.AioRpcError as e:
            _answered(endpoint, e)
            return [_failed(a, _rpc_problem(endpoint, e)) for a in batch]
        _answered(endpoint)
        return list(answer.results)

    for answered in await asyncio.gather(*(send(e, applying, b) for (e, applying), b in batches.items())):
        results.extend(answered)
    return results


def _failed(action: Action, message: str, terminal: bool = False) -> common_pb2.ActionResult:
    ref = ObjectRef.of(action.object) if isinstance(action, Apply) else action.object
    return common_pb2.ActionResult(
        resource_name=action.resource,
        object=ref_to_proto(ref),
        ok=False,
        error_message=message,
        terminal=terminal,
    )


async def _report(
    peers: Peers,
    bundle: JSONObject,
    *,
    verdicts: Sequence[common_pb2.Verdict] = (),
    results: Sequence[common_pb2.ActionResult] = (),
    pending: Sequence[common_pb2.PendingDeletion] = (),
    plugins: Sequence[plugin_pb2.PluginStatus] = (),
    invalid: str = "",
    fence: Fence | None = None,
) -> JSONObject | None:
    """Have the status service write the Bundle's status; the Bundle as written, or None when the status
    was unchanged. The controller keeps it until the watch brings it (a reconcile in between must not
    compare against the status before)."""
    request = status_pb2.ReportRequest(
        bundle=bundle_ref(bundle),
        previous_status_json=dump(bundle.get("status") or {}),
        verdicts=verdicts,
        results=results,
        invalid_bundle_message=invalid,
        pending=pending,
        plugin_statuses=plugins,
        controller=peers.identity,
    )
    answer = await peers.status.Report(request, timeout=within(fence, REPORT_DEADLINE))
    if not answer.changed:
        return None
    metadata = {**bundle["metadata"], "resourceVersion": answer.resource_version}
    return {**bundle, "metadata": metadata, "status": load(answer.status_json)}
