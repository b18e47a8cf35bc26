"""The controller's clients of Smith's services: Assess, Plan, Apply and Delete, Report and Process, each
with its deadline, and every write cut to the fence (the time this replica may still act for the
Bundle). A service that does not answer becomes a retriable error on the resources it was asked about."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client import Gauge
from smith_wire import local
from smith_wire.convert import (
    action_target,
    action_to_proto,
    dump,
    load,
    plugin_to_proto,
    readiness_to_proto,
    ref_to_proto,
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
from smith_controller.cache import Child
from smith_engine.model import GroupKind, JSONObject, ObjectRef, group_of
from smith_engine.planner import Action, Apply
from smith_engine.plugins import PluginInfo
from smith_engine.readiness import retriable
from smith_engine.routing import RoutingTable

log = logging.getLogger("smith.controller")
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


@dataclass
class ServiceClients:
    """The controller's calls to the planner, the status service, the executors and the plugins, each
    with its deadline (and a write's cut to the fence: see `within`). One channel per endpoint, made with
    the controller's trust (TLS to Smith's servers, its ServiceAccount token on every
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
    ) -> ServiceClients:
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
        if (in_process := local.stub(endpoint)) is not None:
            return in_process  # the all-in-one process: the servicer itself (smith_wire.local)
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

    async def assess(self, children: Sequence[Child]) -> list[common_pb2.Observed]:
        dumped = [c.json for c in children]
        readiness: list[common_pb2.Readiness] = [common_pb2.Readiness()] * len(children)
        in_sync: list[str] = [""] * len(children)
        last_applied: list[str] = [""] * len(children)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, child in enumerate(children):
            kind = child.key.group_kind
            endpoint = self.routing.endpoint(kind)
            if endpoint is None:
                readiness[i] = readiness_to_proto(retriable(f"no live executor serves {kind}"))
            else:
                groups[endpoint].append(i)

        async def ask(endpoint: str, indices: list[int]) -> None:
            request = executor_pb2.AssessRequest(objects_json=[dumped[i] for i in indices])
            try:
                answer = await self.executor(endpoint).Assess(request, timeout=ASSESS_DEADLINE)
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

    async def plan(
        self,
        bundle: JSONObject,
        bundle_json: bytes,
        observed: Sequence[common_pb2.Observed],
        *,
        ahead: bool = False,
    ) -> planner_pb2.PlanResponse:
        """The planner's plan; when plugin resources are ready to be made, their plugins are called and the
        planner asked again with what they made."""
        plugins = [plugin_to_proto(p) for p in self.plugins.values()]
        request = planner_pb2.PlanRequest(
            bundle_json=bundle_json, observed=observed, plugins=plugins, plan_ahead=ahead
        )
        plan = await self.planner.Plan(request, timeout=PLAN_DEADLINE)
        if plan.plugin_calls:
            for name, made in (await self.process(bundle, plan.plugin_calls)).items():
                request.processed[name].CopyFrom(made)
            plan = await self.planner.Plan(request, timeout=PLAN_DEADLINE)
        return plan

    async def process(
        self, bundle: JSONObject, calls: Sequence[plugin_pb2.ProcessRequest]
    ) -> dict[str, plugin_pb2.ProcessResponse]:
        """Call each plugin the plan asked for, all at once; a plugin that does not answer is a retriable
        error on its resource."""

        async def one(call: plugin_pb2.ProcessRequest) -> plugin_pb2.ProcessResponse:
            name = call.plugin
            info = self.plugins.get(name)
            if info is None:  # gone between the plan and now
                return plugin_pb2.ProcessResponse(error_message=f"plugin {name!r} went away", retriable=True)
            request = plugin_pb2.ProcessRequest()
            request.CopyFrom(call)
            request.bundle.CopyFrom(bundle_ref(bundle))
            try:
                return await self.plugin(info.endpoint).Process(request, timeout=APPLY_DEADLINE)
            except grpc.aio.AioRpcError as e:
                answer = f"{e.code().name} {e.details() or ''}".strip()
                message = f"plugin at {info.endpoint} did not answer: {answer}"
                return plugin_pb2.ProcessResponse(error_message=message, retriable=True)

        answers = await asyncio.gather(*(one(c) for c in calls))
        return {c.resource_name: a for c, a in zip(calls, answers, strict=True)}

    async def execute(
        self,
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
            group_kind = action_kind(action)
            endpoint = self.routing.endpoint(group_kind)
            if endpoint is None:
                results.append(_failed(action, *self.routing.unserved(group_kind)))
            else:
                batches[(endpoint, isinstance(action, Apply))].append(action)

        async def send(endpoint: str, applying: bool, batch: list[Action]) -> list[common_pb2.ActionResult]:
            stub, ref = self.executor(endpoint), bundle_ref(bundle)
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

    async def report(
        self,
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
            controller=self.identity,
        )
        answer = await self.status.Report(request, timeout=within(fence, REPORT_DEADLINE))
        if not answer.changed:
            return None
        metadata = {**bundle["metadata"], "resourceVersion": answer.resource_version}
        return {**bundle, "metadata": metadata, "status": load(answer.status_json)}

    async def hold(self, bundle: JSONObject, message: str, *, fence: Fence | None = None) -> bool:
        """Have the status service say on the Bundle why Smith does not act on it (`message`): True when
        that was written (see smith_engine.handover.held_status)."""
        request = status_pb2.HoldRequest(bundle=bundle_ref(bundle), message=message)
        answer = await self.status.Hold(request, timeout=within(fence, REPORT_DEADLINE))
        return answer.changed


def _failed(action: Action, message: str, terminal: bool = False) -> common_pb2.ActionResult:
    ref = ObjectRef.of(action.object) if isinstance(action, Apply) else action.object
    return common_pb2.ActionResult(
        resource_name=action.resource,
        object=ref_to_proto(ref),
        ok=False,
        error_message=message,
        terminal=terminal,
    )


def action_kind(action: Action) -> GroupKind:
    api_version, kind = action_target(action)
    return GroupKind(group_of(api_version), kind)
