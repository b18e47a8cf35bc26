"""The executor servicer: server-side apply (field manager `smith`), deletion and readiness for the
kinds of one family. Never takes over an object another controller (or nobody) controls, and re-checks
every write whoever asks (smith_engine.admission): the kind is one it serves, the object is in the
Bundle's namespace, the Bundle exists with the request's uid, and the Bundle controls the object."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Protocol

import grpc
from opentelemetry import trace
from prometheus_client import Counter
from smith_wire.convert import (
    action_from_proto,
    bundle_from_proto,
    load,
    readiness_to_proto,
    result_to_proto,
    wave_from_proto,
)
from smith_wire.rpc import Register

from smith.v1 import executor_pb2, executor_pb2_grpc
from smith_engine import managedfields, planner
from smith_engine.admission import (
    acting_user,
    bundle_problem,
    delete_problem,
    own_account_problem,
    own_user_problem,
    service_account_of,
    write_problem,
)
from smith_engine.ahead import Wave, all_as_predicted, filled
from smith_engine.changes import desired_hash, differing_fields, digest, foreign_keys, in_sync
from smith_engine.model import API_VERSION, BUNDLE_KIND, Bundle, GroupKind, JSONObject, ObjectKey, ObjectRef
from smith_engine.planner import Observed, ownership_problem
from smith_engine.readiness import Readiness, ReadinessCheck, State, terminal
from smith_engine.routing import cluster_scoped_problem
from smith_engine.status import ActionResult, Outcome
from smith_executor.memo import Memo, MemoKey
from smith_executor.registration import smith_namespace
from smith_kube import (
    ApiError,
    ConflictError,
    KubeClient,
    KubeError,
    NotFoundError,
    UnservedKindError,
)
from smith_kube.client import JSON_PATCH, impersonating
from smith_kube.uids import UidCache

FIELD_MANAGER = "smith"
ABSENT = "1"  # a resourceVersion no object has: as a precondition, "create, never take over"
OVER_ATTEMPTS = 3  # an apply over the version read, read and checked again when it moved meanwhile
# Refusals that heal without an edit of the Bundle, retried with the controller's capped back-off (as
# Go Smith did): 403, a right not granted yet, a ResourceQuota exhausted, a policy or webhook denying, a
# namespace being terminated; 404, a namespace not there (yet). Other 4xx are the object's own fault.
HEALS: Final = frozenset({403, 404})
ACTIONS = Counter(
    "smith_actions", "Actions executed, by kind, action and outcome", ["kind", "action", "outcome"]
)
log = logging.getLogger("smith.executor")
tracer = trace.get_tracer("smith.executor")


class Family(Protocol):
    """The kinds one executor serves and what it knows about them."""

    def kinds(self) -> Sequence[GroupKind]: ...

    def assess(self, obj: JSONObject) -> Readiness: ...

    def refusal(self, obj: JSONObject) -> str | None:
        """Why an object of a served kind must not be applied at all (a terminal error), or None."""
        ...


@dataclass(frozen=True)
class RegistryFamily:
    """A fixed set of kinds with their readiness checks (built-in kinds, Service Catalog)."""

    registry: Mapping[GroupKind, ReadinessCheck]

    def kinds(self) -> Sequence[GroupKind]:
        return sorted(self.registry)

    def assess(self, obj: JSONObject) -> Readiness:
        check = self.registry.get(GroupKind.of(obj))
        if check is None:
            return terminal(f"this executor does not serve {GroupKind.of(obj)}")
        return check(obj, datetime.now(UTC))

    def refusal(self, obj: JSONObject) -> str | None:
        return None


class RefusedError(Exception):
    """What the request asks must not be done for this Bundle (smith_engine.admission): terminal."""


class UpdateCycleError(Exception):
    """Another writer keeps changing fields Smith owns right after each apply."""


def _memo_key(obj: JSONObject) -> MemoKey:
    return (str(obj.get("metadata", {}).get("namespace") or ""), ObjectKey.of(obj))


def last_writer(obj: JSONObject, *, besides: str) -> str:
    """The field manager other than `besides` that wrote `obj` last (from its managedFields)."""
    entries = [
        e
        for e in obj.get("metadata", {}).get("managedFields") or []
        if e.get("manager") not in (besides, None)
    ]
    latest = max(entries, key=lambda e: str(e.get("time") or ""), default=None)
    return str(latest["manager"]) if latest else ""


async def _deadline(context: grpc.aio.ServicerContext[object, object]) -> float | None:
    """When the caller's deadline ends (monotonic; None: none). A call that comes too late is refused
    whole: its deadline is the caller's fence (a controller replica acts for a Bundle only while its
    lease lasts), so whatever it asked must not be done after it."""
    left = context.time_remaining()
    if left is not None and left <= 0:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the call came after its deadline")
    return None if left is None else time.monotonic() + left


def _failure(ref: ObjectRef, resource: str, error: Exception) -> ActionResult:
    if isinstance(error, ConflictError):  # it changed under the write (a precondition): asked again
        return ActionResult(object=ref, resource=resource, ok=False, error=error.message)
    if isinstance(error, UnservedKindError | RefusedError):
        return ActionResult(object=ref, resource=resource, ok=False, error=str(error), terminal=True)
    if isinstance(error, ApiError):
        # Other 4xx than throttling, timeouts and HEALS: the object itself is wrong, retrying cannot help.
        heals = error.retriable or error.status in HEALS
        return ActionResult(object=ref, resource=resource, ok=False, error=error.message, terminal=not heals)
    return ActionResult(object=ref, resource=resource, ok=False, error=f"{type(error).__name__}: {error}")


def _as_planned(
    ahead: Wave, before: Sequence[tuple[ActionResult, Observed | None]], uids: dict[str, str]
) -> list[planner.Apply] | None:
    """The applies of a wave planned ahead, with the uids the answers so far gave (`uids`, by resource
    name, grows with `before`), when every answer of the wave `before` it is READY and as the plan
    predicted (smith_engine.ahead); None when one is not."""
    answers = {
        r.resource: o.object for r, o in before if r.ok and o is not None and o.readiness.state is State.READY
    }
    uids.update((name, str(obj["metadata"].get("uid", ""))) for name, obj in answers.items())
    if not all_as_predicted(ahead.predicted, answers, uids):
        return None
    applies = []
    for apply in ahead.actions:
        if (obj := filled(apply.object, uids)) is None:
            return None
        applies.append(replace(apply, object=obj))
    return applies


class ExecutorServicer(executor_pb2_grpc.ExecutorServicer):
    def __init__(
        self,
        kube: KubeClient,
        family: Family,
        *,
        memo: Memo | None = None,
        default_account: str | None = None,
    ) -> None:
        self.kube = kube
        self.family = family
        self.memo = memo or Memo()
        self.bundles = UidCache(kube, API_VERSION, BUNDLE_KIND, keep=service_account_of)
        # with it, every Bundle acts as a ServiceAccount of its namespace: this one when it names none
        self.default_account = (
            os.environ.get("SMITH_DEFAULT_SERVICE_ACCOUNT", "")
            if default_account is None
            else default_account
        )

    async def _bundle(
        self,
        request: executor_pb2.ApplyRequest | executor_pb2.DeleteRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> tuple[Bundle, str | None]:
        """The Bundle the request acts for, once it is known to exist with the uid the request names
        (otherwise the call is refused whole, FAILED_PRECONDITION, nothing done), and the user its
        objects are read and written as (None: this executor's own identity). Read as the executor."""
        bundle = bundle_from_proto(request.bundle)
        try:
            seen = (
                await self.bundles.read(
                    bundle.namespace, bundle.name, uid=bundle.uid, generation=bundle.generation
                )
                if bundle.uid
                else None
            )
        except KubeError as e:  # no answer now: the controller asks again
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"could not read Bundle {bundle}: {e}")
        if problem := bundle_problem(bundle, None if seen is None else seen.uid):
            log.warning("refused a request: %s", problem, extra={"fields": {"bundle": str(bundle)}})
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)
        assert seen is not None
        user = acting_user(bundle.namespace, seen.kept, self.default_account)
        if problem := own_user_problem(user, smith_namespace()):
            log.warning("refused a request: %s", problem, extra={"fields": {"bundle": str(bundle)}})
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)
        return bundle, user

    def registration(self) -> Register:
        return lambda server: executor_pb2_grpc.add_ExecutorServicer_to_server(self, server)

    async def KindsServed(  # noqa: N802 - gRPC method name
        self, request: executor_pb2.KindsServedRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.KindsServedResponse:
        return executor_pb2.KindsServedResponse(
            kinds=[executor_pb2.GroupKind(group=k.group, kind=k.kind) for k in self.family.kinds()]
        )

    async def Assess(  # noqa: N802
        self, request: executor_pb2.AssessRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.AssessResponse:
        objects = [load(o) for o in request.objects_json]
        known = [self.memo.known(_memo_key(o), digest(o)) for o in objects]
        return executor_pb2.AssessResponse(
            readiness=[readiness_to_proto(self.family.assess(o)) for o in objects],
            in_sync_with=[in_sync for in_sync, _ in known],
            last_applied=[last for _, last in known],
        )

    async def Apply(  # noqa: N802
        self, request: executor_pb2.ApplyRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.ApplyResponse:
        until = await _deadline(context)
        bundle, user = await self._bundle(request, context)
        actions = [a for a in map(action_from_proto, request.actions) if isinstance(a, planner.Apply)]
        with impersonating(user):  # every read and write of the Bundle's objects, as its identity
            answered = list(await asyncio.gather(*(self._apply(bundle, a, until) for a in actions)))
            wave, uids = answered, dict[str, str]()
            for ahead in map(wave_from_proto, request.then):
                if (applies := _as_planned(ahead, wave, uids)) is None:
                    break  # the world is not as the plan predicted: the controller plans again
                wave = list(await asyncio.gather(*(self._apply(bundle, a, until) for a in applies)))
                answered += wave
        return executor_pb2.ApplyResponse(results=[result_to_proto(r, o) for r, o in answered])

    async def Delete(  # noqa: N802
        self, request: executor_pb2.DeleteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.DeleteResponse:
        until = await _deadline(context)
        bundle, user = await self._bundle(request, context)
        actions = [action_from_proto(a) for a in request.actions]
        served = self.family.kinds()
        with impersonating(user):
            results = await asyncio.gather(
                *(self._delete(bundle, a, served, until) for a in actions if isinstance(a, planner.Delete))
            )
        return executor_pb2.DeleteResponse(results=[result_to_proto(r) for r in results])

    # --- one object -------------------------------------------------------------------------------

    async def _apply(
        self, bundle: Bundle, action: planner.Apply, until: float | None = None
    ) -> tuple[ActionResult, Observed | None]:
        obj = action.object
        ref = ObjectRef.of(obj)
        with tracer.start_as_current_span("apply") as span:
            span.set_attributes(
                {
                    "smith.bundle": str(bundle),
                    "smith.resource": action.resource,
                    "smith.kind": str(GroupKind.of(obj)),
                    "smith.action": "apply",
                }
            )

            def refused(verdict: str, message: str) -> tuple[ActionResult, None]:
                """A terminal failure: the object must not, or cannot, be applied as it is."""
                span.set_attribute("smith.verdict", verdict)
                failure = ActionResult(
                    object=ref,
                    resource=action.resource,
                    ok=False,
                    error=message,
                    terminal=True,
                    in_the_way=verdict == "NotOwned",
                )
                return self._done(failure, bundle, "apply"), None

            key, wanted = _memo_key(obj), desired_hash(obj)
            refusal = self.family.refusal(obj) or write_problem(obj, bundle, self.family.kinds())
            if refusal or (refusal := own_account_problem(obj, smith_namespace())):
                return refused("Refused", refusal)
            if invalid := self.memo.invalid(key, wanted):
                return refused("Invalid", invalid)  # the server refused this very object: ask it once
            try:
                if not (await self.kube.resource(obj["apiVersion"], obj["kind"])).namespaced:
                    return refused("Refused", cluster_scoped_problem(GroupKind.of(obj)))
                if action.expect_absent and (applied := await self._create(obj, wanted, until)) is not None:
                    before, wrote = "", True
                else:  # it exists (or did when the controller looked): Smith's only if the Bundle controls it
                    problem, before = await self._foreign(obj, bundle)
                    if problem:
                        return refused("NotOwned", problem)
                    if not before:  # gone since: made again, as a create, never over anyone's
                        if (applied := await self._create(obj, wanted, until)) is None:
                            raise ConflictError(409, {"message": f"{ObjectKey.of(obj)} appeared meanwhile"})
                        wrote = True
                    elif action.expect_absent:  # only over the version whose controller was checked
                        applied, wrote = await self._write(obj, wanted, until, over=(before, bundle)), True
                    else:
                        read, before = before, action.observed_version or before
                        applied, wrote = await self._ensure(action, wanted, until, over=(read, bundle))
            except UpdateCycleError as e:
                return refused("UpdateCycle", str(e))
            except Exception as e:
                failure = _failure(ref, action.resource, e)
                if failure.terminal and isinstance(e, ApiError):
                    self.memo.refuse(key, wanted, failure.error)  # asked again only once it changes
                span.set_attribute("smith.error", failure.error)
                return self._done(failure, bundle, "apply"), None
            after = applied["metadata"].get("resourceVersion", "")
            outcome = (
                Outcome.CREATED
                if not before
                else Outcome.UNCHANGED
                if not wrote or after == before
                else Outcome.UPDATED
            )
            span.set_attribute("smith.verdict", str(outcome))
            result = ActionResult(object=ObjectRef.of(applied), resource=action.resource, outcome=outcome)
            seen = Observed(applied, self.family.assess(applied), in_sync_with=wanted)
            return self._done(result, bundle, "apply"), seen  # the controller plans on from it

    async def _create(self, obj: JSONObject, wanted: str, until: float | None) -> JSONObject | None:
        """Apply `obj` only if nothing has its name yet (None otherwise), in one request: an apply with
        the resourceVersion of etcd's first write, which no object has any more, is refused with a
        conflict by an object that exists and creates one that does not."""
        meta = {**obj["metadata"], "resourceVersion": ABSENT}
        try:
            return await self._write({**obj, "metadata": meta}, wanted, until)
        except ConflictError:
            return None

    async def _write(
        self, obj: JSONObject, wanted: str, until: float | None, *, over: tuple[str, Bundle] | None = None
    ) -> JSONObject:
        """Apply `obj` (whose desired hash is `wanted`) for real, and remember the object it made as in
        sync with it. Every write is sent only before the caller's deadline (`until`: its fence, see
        `_deadline`) and bounded by it at the API server too; past it, DeadlineError (retriable). With
        `over` (a resourceVersion, and the Bundle found controlling the object at it), only over that
        version: when the object changed meanwhile (a rollout's status), it is read and checked again."""
        applied = await self._apply_over(obj, until, over) if over else None
        if applied is None:
            applied = await self.kube.apply(obj, field_manager=FIELD_MANAGER, deadline=until)
        if (version := await self._take_over_fields(applied, until)) is not None:
            # applied again, only over the version just written: what the Bundle dropped goes
            applied = await self._apply_over(obj, until, (version, over[1])) if over else None
            if applied is None:
                applied = await self.kube.apply(obj, field_manager=FIELD_MANAGER, deadline=until)
        if foreign_keys(obj, applied):
            applied = await self._drop_foreign_secret_keys(obj, applied, until)
        self.memo.synced(_memo_key(obj), digest=digest(applied), desired=wanted)
        return applied

    async def _apply_over(self, obj: JSONObject, until: float | None, over: tuple[str, Bundle]) -> JSONObject:
        version, bundle = over
        for attempt in range(1, OVER_ATTEMPTS + 1):
            try:
                meta = {**obj["metadata"], "resourceVersion": version}
                applied: JSONObject = await self.kube.apply(
                    {**obj, "metadata": meta}, field_manager=FIELD_MANAGER, deadline=until
                )
                return applied
            except ConflictError:
                if attempt == OVER_ATTEMPTS:
                    raise
                problem, version = await self._foreign(obj, bundle)
                if problem:  # someone else's now: not Smith's to write
                    raise RefusedError(problem) from None
                if not version:  # deleted meanwhile: the next pass makes it again
                    raise
        raise AssertionError("unreachable")

    async def _ensure(
        self, action: planner.Apply, wanted: str, until: float | None, *, over: tuple[str, Bundle]
    ) -> tuple[JSONObject, bool]:
        """Bring an existing object in line with the Bundle, writing only when that changes something.

        Unless the Bundle changed since Smith last applied this object (then an apply is due anyway), a
        server-side dry run shows the object as the apply would leave it, in the server's normal form;
        equal to what is observed, nothing is written. A drift from an object Smith applied before is put
        back, until it comes back too often: an update cycle, reported instead of fought."""
        obj, key = action.object, _memo_key(action.object)
        if not self.memo.applied_other(key, wanted):
            predicted: JSONObject = await self.kube.apply(obj, field_manager=FIELD_MANAGER, dry_run=True)
            if (version := await self._take_over_fields(predicted, until)) is not None:
                return await self._write(obj, wanted, until, over=(version, over[1])), True
            if in_sync(obj, predicted, action.observed_digest):
                self.memo.synced(key, digest=action.observed_digest, desired=wanted)
                return predicted, False
            if stuck := self.memo.cycle(key, wanted):
                raise UpdateCycleError(stuck)
            if self.memo.drifted(key, wanted, now=time.monotonic()):
                message = await self._cycle_message(obj, predicted)
                self.memo.stuck(key, message)
                raise UpdateCycleError(message)
        return await self._write(obj, wanted, until, over=over), True

    async def _take_over_fields(self, seen: JSONObject, until: float | None) -> str | None:
        """When `seen` (an apply's answer) shows fields Go Smith's plain writes own, move them into
        Smith's apply on the object as stored (see smith_engine.managedfields), only over the version
        read: the version written then, None when there was nothing to move or the object changed
        meanwhile (looked at again by the next apply)."""
        if managedfields.upgraded(seen["metadata"].get("managedFields"), manager=FIELD_MANAGER) is None:
            return None
        meta = seen["metadata"]
        where = (seen["apiVersion"], seen["kind"], meta["name"])
        current = await self.kube.get(*where, meta.get("namespace"))
        moved = managedfields.upgraded(current["metadata"].get("managedFields"), manager=FIELD_MANAGER)
        if moved is None:
            return None
        version = current["metadata"].get("resourceVersion", "")
        patch = [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
            {"op": "replace", "path": "/metadata/managedFields", "value": moved},
        ]
        try:
            written = await self.kube.patch(
                *where, patch, namespace=meta.get("namespace"), content_type=JSON_PATCH, deadline=until
            )
        except ConflictError:
            return None  # changed since it was read: the next apply looks again
        log.info(
            "took over the fields Go Smith wrote on %s %s",
            seen["kind"],
            meta["name"],
            extra={"fields": {"kind": seen["kind"], "object": meta["name"]}},
        )
        return str(written["metadata"].get("resourceVersion", ""))

    async def _cycle_message(self, obj: JSONObject, predicted: JSONObject) -> str:
        meta = obj["metadata"]
        current = await self.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        fields = ", ".join(differing_fields(predicted, current)) or "some fields"
        writer = last_writer(current, besides=FIELD_MANAGER)
        by = f" by {writer!r}" if writer else ""
        return (
            f"update cycle: {fields} did not stick — changed again{by} right after each of Smith's last "
            f"applies; Smith stops re-applying until the Bundle changes or the other writer stops"
        )

    def _done(self, result: ActionResult, bundle: Bundle, action: str) -> ActionResult:
        """Count and log one finished action: one line each, with the trace id (see smith_telemetry)."""
        ref = result.object
        outcome = str(result.outcome) if result.ok else "Failed"
        ACTIONS.labels(kind=ref.kind, action=action, outcome=outcome).inc()
        where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
        fields: dict[str, object] = {
            "bundle": str(bundle),
            "resource": result.resource,
            "action": action,
            "kind": ref.kind,
            "object": where,
            "outcome": outcome,
        }
        if result.ok:
            log.info("%s %s %s", outcome.lower(), ref.kind, where, extra={"fields": fields})
        else:
            fields |= {"error": result.error, "terminal": result.terminal}
            log.warning(
                "%s %s %s failed: %s", action, ref.kind, where, result.error, extra={"fields": fields}
            )
        return result

    async def _foreign(self, obj: JSONObject, bundle: Bundle) -> tuple[str | None, str]:
        """Why an object that exists although we did not observe it must be left alone (None when it
        need not), and its resourceVersion ("" when it does not exist)."""
        meta = obj["metadata"]
        try:
            current = await self.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except NotFoundError:
            return None, ""
        return ownership_problem(current, bundle), current["metadata"].get("resourceVersion", "")

    async def _drop_foreign_secret_keys(
        self, desired: JSONObject, applied: JSONObject, until: float | None
    ) -> JSONObject:
        """A Secret's data is what the Bundle says: keys someone else added are removed."""
        extra = foreign_keys(desired, applied)
        patch = [
            {"op": "remove", "path": f"/data/{key.replace('~', '~0').replace('/', '~1')}"} for key in extra
        ]
        meta = applied["metadata"]
        return await self.kube.patch(
            "v1",
            "Secret",
            meta["name"],
            patch,
            namespace=meta["namespace"],
            content_type=JSON_PATCH,
            deadline=until,
        )

    async def _delete(
        self, bundle: Bundle, action: planner.Delete, served: Sequence[GroupKind], until: float | None = None
    ) -> ActionResult:
        """Delete the object only while `bundle` controls it, and only the incarnation read (uid). In the
        foreground, as Go Smith does: the object stays (being deleted) until the garbage collector has
        deleted what it owns, so what it depends on is deleted only after that (smith_engine.deletion)."""
        ref = action.object
        with tracer.start_as_current_span("delete") as span:
            span.set_attributes(
                {
                    "smith.bundle": str(bundle),
                    "smith.kind": str(ref.key.group_kind),
                    "smith.action": "delete",
                    "smith.object": ref.name,
                }
            )
            outcome = Outcome.DELETED
            try:
                if problem := delete_problem(ref, bundle, served):
                    raise RefusedError(problem)
                if not (await self.kube.resource(ref.api_version, ref.kind)).namespaced:
                    raise RefusedError(cluster_scoped_problem(ref.key.group_kind))
                current = await self.kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
                uid = str(current["metadata"].get("uid", ""))
                if ref.uid and uid != ref.uid:
                    raise NotFoundError(404, {"message": f"{ref.key} is another object now"})
                if problem := ownership_problem(current, bundle):
                    raise RefusedError(problem)
                await self.kube.delete(  # only the incarnation and version whose controller was checked
                    ref.api_version,
                    ref.kind,
                    ref.name,
                    namespace=ref.namespace,
                    propagation="Foreground",  # kept until what it owns is gone (a Deployment's Pods)
                    uid=uid,
                    resource_version=str(current["metadata"].get("resourceVersion", "")),
                    deadline=until,
                )
            except (NotFoundError, ConflictError):
                outcome = Outcome.UNCHANGED  # gone already, or replaced by a newer object: not ours
            except Exception as e:
                failure = _failure(ref, action.resource, e)
                span.set_attribute("smith.error", failure.error)
                return self._done(failure, bundle, "delete")
            span.set_attribute("smith.verdict", str(outcome))
            return self._done(
                ActionResult(object=ref, resource=action.resource, outcome=outcome), bundle, "delete"
            )
