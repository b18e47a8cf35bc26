"""The planner: (bundle, observed objects with their readiness) -> actions and per-resource verdicts.

Pure and idempotent: the same inputs give the same plan. It never waits; a resource whose
dependencies are not READY is Blocked now and revisited on the next event about them.
"""

from __future__ import annotations

import base64
import copy
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from smith_engine import expressions
from smith_engine.changes import SECRET, desired_hash, digest
from smith_engine.deletion import PendingDeletion, being_deleted, next_wave, removals
from smith_engine.limits import MAX_RESOURCES, Budget, ExpansionError
from smith_engine.model import (
    API_VERSION,
    BUNDLE_KIND,
    BUNDLE_NAME_LABEL,
    JSON,
    Bundle,
    GroupKind,
    JSONObject,
    ObjectKey,
    ObjectRef,
    Reference,
    Resource,
    dns1123_problem,
    group_of,
)
from smith_engine.plugins import (
    DependencyInput,
    PluginCall,
    PluginInfo,
    PluginResult,
    PluginStatus,
    decoded,
    plugin_statuses,
    schema_problems,
)
from smith_engine.readiness import Readiness, State
from smith_engine.references import Ambiguous, Unresolved, binding_secret_name, resolve, substitute
from smith_engine.servicecatalog import SERVICE_BINDING
from smith_engine.workloads import MissingConfig, prepare


class VerdictState(StrEnum):
    READY = "Ready"
    IN_PROGRESS = "InProgress"
    BLOCKED = "Blocked"
    ERROR = "Error"


class Reason(StrEnum):
    READY = "Ready"
    APPLYING = "Applying"
    WAITING = "WaitingForReadiness"
    DEPENDENCIES_NOT_READY = "DependenciesNotReady"
    REFERENCE_NOT_RESOLVED = "ReferenceNotResolved"
    TERMINAL_ERROR = "TerminalError"
    RETRIABLE_ERROR = "RetriableError"
    EXTERNAL_NOT_FOUND = "ExternalObjectNotFound"  # an externalRef's object is not there (yet)
    EXCLUDED = "Excluded"  # left out by its includeWhen (or a dependency's): not made, deleted if it was


@dataclass(frozen=True, slots=True)
class Observed:
    object: JSONObject
    readiness: Readiness
    in_sync_with: str = ""  # the desired hash its executor knows this object matches (see changes.py)
    last_applied: str = ""  # the desired hash its executor last applied there, whatever it says now


@dataclass(frozen=True, slots=True)
class Verdict:
    resource: str
    state: VerdictState
    reason: Reason
    message: str = ""
    blocked_on: tuple[str, ...] = ()
    object: ObjectRef | None = None

    @property
    def terminal(self) -> bool:
        return self.reason is Reason.TERMINAL_ERROR


@dataclass(frozen=True, slots=True)
class Apply:
    resource: str
    object: JSONObject
    expect_absent: bool = False  # not observed: create it, and never take over one that appeared meanwhile
    observed_version: str = ""  # the observed object's resourceVersion: tells an update from a no-op
    observed_digest: str = ""  # changes.digest of the observed object: tells "in sync" after a dry run


@dataclass(frozen=True, slots=True)
class Delete:
    object: ObjectRef
    resource: str = ""


Action = Apply | Delete


@dataclass(frozen=True, slots=True)
class Plan:
    order: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    actions: tuple[Action, ...]
    pending: tuple[PendingDeletion, ...] = ()  # objects the Bundle no longer lists, still there
    wake_after: float | None = None  # seconds until a soft-deleted object is due: reconcile then
    finished: bool = False  # teardown: nothing of the Bundle is left
    plugin_calls: tuple[PluginCall, ...] = ()  # plugins to call, then plan again with what they made
    plugin_statuses: tuple[PluginStatus, ...] = ()

    def verdict(self, resource: str) -> Verdict:
        return next(v for v in self.verdicts if v.resource == resource)


def plan_bundle(
    bundle: Bundle,
    observed: Iterable[Observed],
    *,
    now: datetime | None = None,
    previous_pending: Sequence[Any] = (),
    plugins: Mapping[str, PluginInfo] | None = None,
    processed: Mapping[str, PluginResult] | None = None,
    refused: Mapping[str, str] | None = None,
) -> Plan:
    """Decide what to do for a validated `bundle`, given the objects as they are in the cluster.
    `previous_pending` is the Bundle's `status.objectsToDelete` (where soft deletions' due times live);
    `plugins` the registered plugins by name, `processed` what they made in this reconcile by resource;
    `refused` the resources found wrong before planning besides `bundle.refused` (e.g. parameters that
    cannot fit their plan), by name: why. Each is a terminal error of its own; its dependents wait, the
    rest goes on."""
    by_key = {ObjectKey.of(o.object): o for o in observed}
    order = bundle.order
    verdicts: dict[str, Verdict] = {}
    actions: list[Action] = []
    runs = _PluginRuns(plugins or {}, processed or {})
    budget = Budget()
    sizes: expressions.Sizes = {}  # what expressions read, measured once a plan
    items: Items = {}  # a forEach resource's objects, by its name
    claimed: set[ObjectKey] = set()
    for name in order:
        resource = bundle.by_name[name]
        context = _Context(by_key, verdicts, runs, budget, sizes, items, claimed)
        refusal = bundle.refusal(name) or (refused or {}).get(name)
        if resource.for_each:
            verdict, made = _plan_items(bundle, resource, context, refused=refusal)
            actions += made
        else:
            verdict, action = _plan_resource(bundle, resource, context, refused=refusal)
            actions += [action] if action is not None else []
        verdicts[name] = verdict
    wanted = {
        *(
            r.key
            for r in bundle.resources
            if not r.for_each and verdicts[r.name].reason is not Reason.EXCLUDED
        ),
        *_items_kept(bundle, by_key, items),
    }
    removed = [o.object for k, o in sorted(by_key.items()) if k not in wanted and _is_ours(o.object, bundle)]
    gone = removals(
        removed,
        previous=previous_pending,
        now=now or datetime.now(UTC),
        may_delete=all(v.state is VerdictState.READY for v in verdicts.values()),
    )
    actions += [Delete(object=ref) for ref in gone.delete]
    return Plan(
        order=order,
        verdicts=tuple(verdicts[n] for n in order),
        actions=tuple(actions),
        pending=gone.pending,
        wake_after=gone.wake_after,
        plugin_calls=tuple(runs.calls),
        plugin_statuses=plugin_statuses([r.plugin.name for r in bundle.resources if r.plugin], runs.plugins),
    )


def plan_teardown(bundle: Bundle, observed: Iterable[Observed]) -> Plan:
    """The deleted Bundle's next wave of deletions: its objects that no other of its objects depends on.
    Needs no valid spec: the objects' ownerReferences say the order."""
    ours = [o.object for o in observed if _is_ours(o.object, bundle)]
    deletes = tuple(Delete(object=ObjectRef.of(o)) for o in next_wave(ours))
    return Plan(order=(), verdicts=(), actions=deletes, finished=not ours)


def _plan_resource(
    bundle: Bundle,
    resource: Resource,
    context: _Context,
    refused: str | None = None,
) -> tuple[Verdict, Action | None]:
    def verdict(state: VerdictState, reason: Reason, message: str = "", **kw: Any) -> Verdict:
        return Verdict(resource=resource.name, state=state, reason=reason, message=message, object=ref, **kw)

    by_key, verdicts, plugins, budget = context.by_key, context.verdicts, context.plugins, context.budget
    existing = by_key.get(resource.key)
    ref = ObjectRef.of(existing.object) if existing else object_ref(bundle, resource.object)
    if (held := _held(resource, verdicts, refused)) is not None:
        return verdict(held.state, held.reason, held.message, blocked_on=held.blocked_on), None
    if resource.external:
        return verdict(*_external(resource, existing)), None
    cel = _expression_values(bundle, resource, context)
    if isinstance(cel, Outcome):
        return verdict(cel.state, cel.reason, cel.message), None
    values: dict[str, JSON] = {}
    for reference in (r for r in resource.references if r.carries_value):
        value = _resolve(bundle, reference, by_key=by_key)
        if isinstance(value, (Ambiguous, Unresolved)):
            # Several values is a mistake in the path; none is not yet (the dependency may fill it in).
            state, reason = (
                (VerdictState.ERROR, Reason.TERMINAL_ERROR)
                if isinstance(value, Ambiguous)
                else (VerdictState.BLOCKED, Reason.REFERENCE_NOT_RESOLVED)
            )
            message = f"reference {reference.name!r} to {reference.resource!r}: {value.reason}"
            return verdict(state, reason, message), None
        values[reference.name] = value
    if existing is not None and (problem := ownership_problem(existing.object, bundle)):
        return verdict(VerdictState.ERROR, Reason.TERMINAL_ERROR, problem), None
    if resource.plugin is not None:
        made = plugins.run(bundle, resource, values, existing=existing, by_key=by_key, expressions=cel)
        if isinstance(made, tuple):
            state, reason, message = made
            return verdict(state, reason, message), None
        resource, values = replace(resource, object=made), {}  # the plugin's object: no markers of ours
    # objects it depends on, as owners (an object Smith does not manage never owns one of Smith's)
    dependencies = [
        o
        for d in sorted(resource.dependencies)
        if not bundle.by_name[d].external
        for o in _objects(bundle, d, context, every=True)
    ]
    try:
        desired = desired_object(bundle, resource, values, dependencies, budget=budget, expressions=cel)
    except ExpansionError as e:
        return verdict(VerdictState.ERROR, Reason.TERMINAL_ERROR, str(e)), None
    try:
        prepare(
            desired, existing.object if existing else None, lambda kind, name: _config(by_key, kind, name)
        )
    except MissingConfig as e:  # it may yet appear (Smith watches it): not an error of the Bundle
        return verdict(VerdictState.BLOCKED, Reason.REFERENCE_NOT_RESOLVED, f"waiting: {e}"), None
    applying = verdict(VerdictState.IN_PROGRESS, Reason.APPLYING, "applying")
    if existing is None:
        return applying, Apply(resource.name, desired, expect_absent=True)
    wanted = desired_hash(desired)
    now = _ready_when(resource, existing)
    as_it_is = verdict(now.state, now.reason, now.message)
    if existing.in_sync_with == wanted:
        return as_it_is, None
    if being_deleted(existing.object):
        return verdict(
            VerdictState.IN_PROGRESS, Reason.WAITING, "waiting for the old object to be deleted"
        ), None
    apply = Apply(
        resource.name,
        desired,
        observed_version=existing.object["metadata"].get("resourceVersion", ""),
        observed_digest=digest(existing.object),
    )
    if existing.last_applied and existing.last_applied != wanted:
        return applying, apply  # the Bundle changed: dependents wait until the new object is READY
    # Unknown to its executor (restarted) or drifted from what it applied: most likely in sync, so the
    # verdict stands on the object as it is while the executor checks, by dry run, and puts it back.
    return as_it_is, apply


@dataclass
class _PluginRuns:
    """The plugins of one plan: what is registered, what they made in this reconcile, and the calls to
    make for the rest."""

    plugins: Mapping[str, PluginInfo]
    processed: Mapping[str, PluginResult]
    calls: list[PluginCall] = field(default_factory=list)

    def run(
        self,
        bundle: Bundle,
        resource: Resource,
        values: Mapping[str, JSON],
        *,
        existing: Observed | None,
        by_key: Mapping[ObjectKey, Observed],
        expressions: Mapping[str, JSON] | None = None,
    ) -> dict[str, Any] | tuple[VerdictState, Reason, str]:
        """The object the plugin made for `resource` (name and namespace set), or the verdict for now."""
        assert resource.plugin is not None
        name = resource.plugin.name
        info = self.plugins.get(name)
        if info is None:
            known = ", ".join(sorted(self.plugins)) or "none"
            return (
                VerdictState.ERROR,
                Reason.RETRIABLE_ERROR,
                f"no plugin {name!r} is registered (registered: {known})",
            )
        try:
            identifiers = known_variables(bundle) if expressions else None
            spec = substitute(dict(resource.plugin.spec), values, expressions=expressions, known=identifiers)
        except ExpansionError as e:
            return VerdictState.ERROR, Reason.TERMINAL_ERROR, str(e)
        if problems := schema_problems(info.schema, spec):
            return (
                VerdictState.ERROR,
                Reason.TERMINAL_ERROR,
                f"the spec does not fit plugin {name!r}'s schema: " + "; ".join(problems),
            )
        made = self.processed.get(resource.name)
        if made is None:
            dependencies = tuple(_dependency_input(bundle, d, by_key) for d in sorted(resource.dependencies))
            actual = existing.object if existing else None
            self.calls.append(PluginCall(resource.name, name, spec, actual, dependencies))
            return VerdictState.IN_PROGRESS, Reason.APPLYING, f"waiting for plugin {name!r}"
        if made.object is None:
            reason = Reason.RETRIABLE_ERROR if made.retriable else Reason.TERMINAL_ERROR
            return VerdictState.ERROR, reason, f"plugin {name!r}: {made.error}"
        if GroupKind.of(made.object) != info.produces:
            return (
                VerdictState.ERROR,
                Reason.TERMINAL_ERROR,
                (f"plugin {name!r} made a {GroupKind.of(made.object)}, not the {info.produces} it declares"),
            )
        obj = copy.deepcopy(dict(made.object))
        obj.setdefault("metadata", {})["name"] = resource.plugin.object_name
        return obj


def _dependency_input(bundle: Bundle, name: str, by_key: Mapping[ObjectKey, Observed]) -> DependencyInput:
    dependency = bundle.by_name[name]
    actual = by_key[dependency.key].object
    spec = dependency.plugin.spec if dependency.plugin else dependency.object
    if GroupKind.of(actual) != SERVICE_BINDING:
        return DependencyInput(name, spec, actual)
    secret = by_key.get(ObjectKey(SECRET, binding_secret_name(actual)))
    instance_name = str((actual.get("spec") or {}).get("instanceRef", {}).get("name", ""))
    instance = by_key.get(ObjectKey(GroupKind(SERVICE_BINDING.group, "ServiceInstance"), instance_name))
    return DependencyInput(
        name, spec, actual, decoded(secret.object if secret else None), instance.object if instance else None
    )


def _config(by_key: Mapping[ObjectKey, Observed], kind: str, name: str) -> JSONObject | None:
    found = by_key.get(ObjectKey(GroupKind("", kind), name))
    return found.object if found is not None else None


def verdict_of(readiness: Readiness) -> tuple[VerdictState, Reason]:
    """The verdict on a resource whose object is in sync, from the object's readiness."""
    if readiness.state is State.READY:
        return VerdictState.READY, Reason.READY
    if readiness.state is State.IN_PROGRESS:
        return VerdictState.IN_PROGRESS, Reason.WAITING
    return VerdictState.ERROR, Reason.TERMINAL_ERROR if readiness.terminal else Reason.RETRIABLE_ERROR


def _resolve(
    bundle: Bundle, reference: Reference, *, by_key: Mapping[ObjectKey, Observed]
) -> JSON | Unresolved | Ambiguous:
    target = by_key[bundle.by_name[reference.resource].key].object
    secret = None
    if GroupKind.of(target) == SERVICE_BINDING:
        found = by_key.get(ObjectKey(SECRET, binding_secret_name(target)))
        secret = found.object if found else None
    return resolve(reference, target=target, secret=secret)


# --- one plan's state, and forEach -----------------------------------------------------------------

Items = dict[str, tuple[ObjectKey, ...] | None]  # by forEach resource: its objects' keys (None: unknown)
FOR_EACH_ANNOTATION = f"{API_VERSION.partition('/')[0]}/forEach"  # on each object a forEach made: whose


@dataclass
class _Context:
    """What planning one resource reads and leaves of the plan it is part of."""

    by_key: Mapping[ObjectKey, Observed]
    verdicts: Mapping[str, Verdict]
    plugins: _PluginRuns
    budget: Budget
    sizes: expressions.Sizes
    items: Items
    claimed: set[ObjectKey] = field(default_factory=set)  # the objects forEach resources made so far


class _NoElement:
    """No element: the resource is not a forEach one."""


_NO_ELEMENT: Final = _NoElement()


def _objects(bundle: Bundle, name: str, context: _Context, *, every: bool = False) -> Any:
    """The object of resource `name` as it is (READY: it exists); a forEach resource's, the list of its
    objects (`every`: as objects one by one, for a dependent's owner references)."""
    resource = bundle.by_name[name]
    if not resource.for_each:
        found = context.by_key[resource.key].object
        return [found] if every else found
    keys = context.items.get(name) or ()
    return [context.by_key[k].object for k in keys if k in context.by_key]


def _items_kept(bundle: Bundle, by_key: Mapping[ObjectKey, Observed], items: Items) -> set[ObjectKey]:
    """The objects of forEach resources that stay: those made for their lists as they are now, and all
    of a resource's whose list could not be read in this plan (a list not known is never taken as empty)."""
    kept: set[ObjectKey] = set()
    for r in bundle.resources:
        if not r.for_each:
            continue
        if (keys := items.get(r.name)) is not None:
            kept.update(keys)
            continue
        annotations = (o.object.get("metadata", {}).get("annotations") or {} for o in by_key.values())
        keys_of = zip(by_key, annotations, strict=True)
        kept.update(k for k, a in keys_of if a.get(FOR_EACH_ANNOTATION) == r.name)
    return kept


def _plan_items(
    bundle: Bundle, resource: Resource, context: _Context, refused: str | None
) -> tuple[Verdict, list[Action]]:
    """A forEach resource: one object per element of its list, each planned as a resource of its own
    (`name[object name]`), and one verdict for them all."""
    ref = object_ref(bundle, resource.object)

    def verdict(state: VerdictState, reason: Reason, message: str = "", **kw: Any) -> Verdict:
        return Verdict(resource=resource.name, state=state, reason=reason, message=message, object=ref, **kw)

    context.items[resource.name] = None
    if (gate := _gate(bundle, resource, context, refused)) is not None:
        if gate.reason is Reason.EXCLUDED:
            context.items[resource.name] = ()
        return verdict(gate.state, gate.reason, gate.message, blocked_on=gate.blocked_on), []
    made = _items(bundle, resource, context)
    if isinstance(made, Outcome):
        return verdict(made.state, made.reason, made.message), []
    planned = [_plan_resource(bundle, item, context) for item in made]
    context.items[resource.name] = tuple(item.key for item in made)
    if planned:  # the resource's object in its status: its first (the kind its objects are of)
        ref = planned[0][0].object or ref
    actions = [a for _, a in planned if a is not None]
    states = [v for v, _ in planned]
    if failed := [v for v in states if v.state is VerdictState.ERROR]:
        first = failed[0]
        return verdict(first.state, first.reason, f"{first.resource}: {first.message}"), actions
    ready = sum(v.state is VerdictState.READY for v in states)
    if ready == len(states):
        return verdict(VerdictState.READY, Reason.READY, f"{ready} of {len(states)} objects ready"), actions
    waiting = next(v for v in states if v.state is not VerdictState.READY)
    message = f"{ready} of {len(states)} objects ready; {waiting.resource}: {waiting.message}"
    return verdict(waiting.state, waiting.reason, message, blocked_on=waiting.blocked_on), actions


def _held(resource: Resource, verdicts: Mapping[str, Verdict], refused: str | None) -> Outcome | None:
    """Why a resource is not planned now whatever its content: refused, left out with a dependency,
    waiting for its dependencies to be READY; or None."""
    if refused is not None:
        return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, refused)
    if left_out := sorted(d for d in resource.dependencies if verdicts[d].reason is Reason.EXCLUDED):
        return Outcome(
            VerdictState.READY, Reason.EXCLUDED, f"left out: it depends on {', '.join(left_out)}, left out"
        )
    waiting = tuple(sorted(d for d in resource.dependencies if verdicts[d].state is not VerdictState.READY))
    if waiting:
        message = f"waiting for {', '.join(waiting)} to be ready"
        return Outcome(VerdictState.BLOCKED, Reason.DEPENDENCIES_NOT_READY, message, blocked_on=waiting)
    return None


def _gate(bundle: Bundle, resource: Resource, context: _Context, refused: str | None) -> Outcome | None:
    """Why a forEach resource makes no objects now (held, or its includeWhen false or not known), or
    None when it may."""
    if (held := _held(resource, context.verdicts, refused)) is not None:
        return held
    included = _expression_values(bundle, replace(resource, expressions=()), context)
    return included if isinstance(included, Outcome) else None


def _items(bundle: Bundle, resource: Resource, context: _Context) -> list[Resource] | Outcome:
    """The resources a forEach resource stands for now, one per element of its list, each with its object
    made (its expressions evaluated with `each`); or why not."""
    objects = {d: _objects(bundle, d, context) for d in resource.reads}
    data = expressions.bindings(objects, known_variables(bundle), sizes=context.sizes)
    listing = _evaluated(resource.for_each, data, "forEach")
    if isinstance(listing, Outcome):
        return listing
    if not isinstance(listing, list):
        kind = "null" if listing is None else type(listing).__name__
        return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, f"forEach must give a list, not a {kind}")
    if len(listing) > expressions.MAX_ITEMS:
        message = (
            f"forEach gives {len(listing)} elements; one resource may make at most {expressions.MAX_ITEMS}"
        )
        return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, message)
    made: dict[str, Resource] = {}
    for element in listing:
        values = _expression_values(bundle, replace(resource, include_when=()), context, each=element)
        if isinstance(values, Outcome):
            return values
        try:
            known = known_variables(bundle)
            obj = substitute(
                resource.object,
                {},
                budget=context.budget,
                expressions=values,
                known=known,
                own=(expressions.EACH,),
            )
        except ExpansionError as e:
            return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, str(e))
        name = obj.get("metadata", {}).get("name") if isinstance(obj, dict) else None
        if not isinstance(name, str) or (why := dns1123_problem(name)) is not None:
            shown = str(name)[:60] if isinstance(name, str) else type(name).__name__
            why = "it is not a string" if not isinstance(name, str) else why
            return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, f"an object's name {shown!r}: {why}")
        if name in made:
            message = f"two elements make the object {name!r}: each must make its own name"
            return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, message)
        key = ObjectKey.of(obj)
        if key in context.claimed or key in {r.key for r in bundle.resources if not r.for_each}:
            message = f"an element makes {key}, which another resource describes"
            return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, message)
        meta = obj["metadata"]
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
        meta["annotations"] = {**annotations, FOR_EACH_ANNOTATION: resource.name}
        made[name] = replace(
            resource,
            name=f"{resource.name}[{name}]",
            object=obj,
            expressions=(),
            include_when=(),
            for_each="",
            collection=resource.name,
        )
    if len(context.claimed) + len(made) > MAX_RESOURCES:
        message = f"the Bundle's forEach resources make more than {MAX_RESOURCES} objects"
        return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, message)
    context.claimed.update(item.key for item in made.values())
    return list(made.values())


# --- expressions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """A resource's verdict for now, where something other than its object decides it."""

    state: VerdictState
    reason: Reason
    message: str
    blocked_on: tuple[str, ...] = ()


def known_variables(bundle: Bundle) -> dict[str, str]:
    """The Bundle's resources by CEL identifier (smith_engine.expressions.variables)."""
    return _known(tuple(r.name for r in bundle.resources))


@functools.lru_cache(maxsize=1024)
def _known(names: tuple[str, ...]) -> dict[str, str]:
    return expressions.variables(names)


def _expression_values(
    bundle: Bundle, resource: Resource, context: _Context, each: JSON | _NoElement = _NO_ELEMENT
) -> dict[str, JSON] | Outcome:
    """The values of the resource's object's expressions, once its `includeWhen` holds; or why not.
    `each`: the element of a forEach resource the object is made for."""
    if not resource.expressions and not resource.include_when:
        return {}
    objects = {d: _objects(bundle, d, context) for d in resource.reads}
    own = {} if isinstance(each, _NoElement) else {expressions.EACH: each}
    data = expressions.bindings(objects, known_variables(bundle), own, sizes=context.sizes)
    for index, source in enumerate(resource.include_when):
        holds = _condition(source, data, f"includeWhen[{index}]")
        if isinstance(holds, Outcome):
            return holds
        if not holds:
            return Outcome(
                VerdictState.READY, Reason.EXCLUDED, f"left out: includeWhen ${{{source}}} is false"
            )
    values: dict[str, JSON] = {}
    for source in resource.expressions:
        value = _evaluated(source, data, "object")
        if isinstance(value, Outcome):
            return value
        values[source] = value
    return values


def _external(resource: Resource, existing: Observed | None) -> tuple[VerdictState, Reason, str]:
    """An externalRef: READY when its object exists (and its readyWhen holds); never written."""
    if existing is None:
        obj = resource.object
        what = f"{obj['kind']} {obj['metadata']['name']}"
        message = f"waiting for {what} to exist: Smith reads it (externalRef) and does not make it"
        return VerdictState.BLOCKED, Reason.EXTERNAL_NOT_FOUND, message
    now = _ready_when(resource, existing)
    return now.state, now.reason, now.message


def _ready_when(resource: Resource, existing: Observed) -> Outcome:
    """The verdict on an object as it is: its kind's own rules, or, where the resource says `readyWhen`,
    whether every one of them holds of the object (an object its kind's rules call failed stays so)."""
    state, reason = verdict_of(existing.readiness)
    if not resource.ready_when or state is VerdictState.ERROR:
        return Outcome(state, reason, existing.readiness.message)
    itself = expressions.variable(resource.collection or resource.name)  # a forEach object: its resource's
    own = {expressions.SELF: existing.object, itself: existing.object}
    data = expressions.bindings({}, {}, own)
    for index, source in enumerate(resource.ready_when):
        holds = _condition(source, data, f"readyWhen[{index}]")
        if isinstance(holds, Outcome):
            if holds.state is VerdictState.BLOCKED:  # a field not there yet: not ready yet
                return Outcome(VerdictState.IN_PROGRESS, Reason.WAITING, holds.message)
            return holds
        if not holds:
            return Outcome(VerdictState.IN_PROGRESS, Reason.WAITING, f"waiting for readyWhen ${{{source}}}")
    return Outcome(VerdictState.READY, Reason.READY, "every readyWhen holds")


def _condition(source: str, data: expressions.Bound, field: str) -> bool | Outcome:
    value = _evaluated(source, data, field)
    if isinstance(value, (Outcome, bool)):
        return value
    kind = "null" if value is None else type(value).__name__  # never the value: it may be a Secret's
    message = f"{field} expression ${{{source}}} must be true or false, not a {kind}"
    return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, message)


def _evaluated(source: str, data: expressions.Bound, field: str) -> JSON | Outcome:
    try:
        value = expressions.evaluate(source, data)
    except expressions.ExpressionError as e:
        return Outcome(VerdictState.ERROR, Reason.TERMINAL_ERROR, f"{field} expression ${{{source}}}: {e}")
    if isinstance(value, expressions.NotYet):
        message = f"{field} expression ${{{source}}}: {value.reason}"
        return Outcome(VerdictState.BLOCKED, Reason.REFERENCE_NOT_RESOLVED, message)
    return value


# --- objects --------------------------------------------------------------------------------------


def object_ref(bundle: Bundle, obj: JSONObject) -> ObjectRef:
    return ObjectRef(
        api_version=str(obj.get("apiVersion", "")),
        kind=str(obj.get("kind", "")),
        namespace=bundle.namespace,
        name=str(obj.get("metadata", {}).get("name", "")),
    )


def owner_reference(bundle: Bundle) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": BUNDLE_KIND,
        "name": bundle.name,
        "uid": bundle.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def dependency_reference(obj: JSONObject) -> dict[str, Any]:
    """The non-controller ownerReference an object holds to an object it depends on (as Smith does): the
    garbage collector's foreground deletion, and Smith's own deletions, follow the graph."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "blockOwnerDeletion": True,
    }


def desired_object(
    bundle: Bundle,
    resource: Resource,
    values: Mapping[str, JSON],
    dependencies: Sequence[JSONObject] = (),
    *,
    budget: Budget | None = None,
    expressions: Mapping[str, JSON] | None = None,
) -> dict[str, Any]:
    """The object Smith applies: references and expressions substituted, in the bundle's namespace,
    labelled, owned by the Bundle and by the objects of its `dependencies`."""
    if resource.plugin is None and not resource.collection:  # substitute builds every dict and list anew
        known = known_variables(bundle) if expressions else None
        obj: dict[str, Any] = substitute(
            resource.object, values, budget=budget, expressions=expressions, known=known
        )
    else:  # a plugin's object is its own, a forEach's made already: no markers of ours in it
        obj = copy.deepcopy(dict(resource.object))
    metadata = obj.setdefault("metadata", {})
    metadata["namespace"] = bundle.namespace
    metadata.setdefault("labels", {})[BUNDLE_NAME_LABEL] = bundle.name
    others = [o for o in metadata.get("ownerReferences") or [] if not o.get("controller")]
    depended = [dependency_reference(d) for d in dependencies if d.get("metadata", {}).get("uid")]
    uids = {o.get("uid") for o in others}
    metadata["ownerReferences"] = [
        *others,
        *(d for d in depended if d["uid"] not in uids),
        owner_reference(bundle),
    ]
    if GroupKind.of(obj) == SECRET and "stringData" in obj:
        # The API server stores stringData as base64 data; say it the same way, so that Smith owns
        # `data` keys (and a key removed from stringData is removed from the Secret).
        data = obj.setdefault("data", {})
        for key, text in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(text).encode()).decode()
    return obj


def _is_ours(obj: JSONObject, bundle: Bundle) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(BUNDLE_NAME_LABEL) == bundle.name and controlled_by(obj, bundle)


def _controller(obj: JSONObject) -> Mapping[str, Any] | None:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def controlled_by(obj: JSONObject, bundle: Bundle) -> bool:
    controller = _controller(obj)
    return (
        controller is not None
        and controller.get("kind") == BUNDLE_KIND
        and group_of(str(controller.get("apiVersion", ""))) == group_of(API_VERSION)
        and controller.get("name") == bundle.name
        and (not bundle.uid or controller.get("uid") == bundle.uid)
    )


def ownership_problem(obj: JSONObject, bundle: Bundle) -> str | None:
    """Why Smith must not touch `obj` for `bundle`, or None when the Bundle controls it."""
    if controlled_by(obj, bundle):
        return None
    key = ObjectKey.of(obj)
    controller = _controller(obj)
    if controller is None:
        return (
            f"{key} already exists and has no controller; Smith does not take over objects it does not "
            f"control (set its controller ownerReference to Bundle {bundle.name!r} to let Smith adopt it)"
        )
    return (
        f"{key} already exists and is controlled by {controller.get('kind')} {controller.get('name')!r}; "
        "Smith does not take over objects it does not control"
    )
