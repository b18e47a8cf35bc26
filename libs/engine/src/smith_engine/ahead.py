"""Planning ahead: the waves that would follow a wave if its applies are answered as predicted. Pure.

A chain of objects that are READY as soon as they exist (a ConfigMap holding a value read from the one
before) costs a plan and an apply call per wave when every wave waits for the answers of the one
before. Most of those answers can be predicted: an object of such a kind is answered as it was sent,
plus what only the server sets (its uid, resourceVersion, creation time, managedFields). The planner
therefore plans the next waves against those predictions, and says what it assumed: each predicted
object, whose uid stands as a placeholder until its real one is known. Whoever applies the waves
(the executor, in the same call) applies a wave only when every answer before it is READY and says
what was predicted (`as_predicted`), with the real uids filled in (`filled`); at the first surprise the
waves after it are dropped, and the controller plans again from the real answers, as without them.

When the plan after the last wave predicted leaves nothing to do and every resource READY, the
planner says so too (`Settled`): once the last wave is answered as predicted, the controller reports
those verdicts (`settled_verdicts`, real uids filled in) instead of asking for that very plan.

The decision stays the planner's: it plans every wave with its own rules; the check only says the
world is as the plan assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from smith_engine.changes import desired_hash
from smith_engine.codec import dumps
from smith_engine.model import GroupKind, JSONObject, ObjectKey
from smith_engine.planner import Action, Apply, Observed, Plan, Verdict, VerdictState
from smith_engine.readiness import BUILTIN, READY, State

PLACEHOLDER = "smith.atlassian.com/predicted-uid:"  # + resource name: a uid not known yet
MAX_WAVES_AHEAD = 32
# What the server sets on an object it creates, whatever was sent: left out of the comparison.
_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")
# Defaults the server fills in on kinds that are READY as soon as they exist.
_DEFAULTS: Mapping[GroupKind, Mapping[str, Any]] = {GroupKind("", "Secret"): {"type": "Opaque"}}


@dataclass(frozen=True, slots=True)
class Wave:
    """Applies to make once every answer before them came back as `predicted` (by resource name)."""

    actions: tuple[Apply, ...]
    predicted: Mapping[str, JSONObject]


@dataclass(frozen=True, slots=True)
class Settled:
    """The verdicts of the plan after the last wave predicted, all READY with nothing left to do, once
    every apply of that wave is answered as `predicted` (by resource name)."""

    predicted: Mapping[str, JSONObject]
    verdicts: tuple[Verdict, ...]


@dataclass(frozen=True, slots=True)
class Ahead:
    waves: tuple[Wave, ...]
    settled: Settled | None = None


def placeholder(resource: str) -> str:
    return f"{PLACEHOLDER}{resource}"


def predicted_answer(apply: Apply, *, now: datetime) -> JSONObject | None:
    """The object a create is predicted to be answered with: what it sends, with a placeholder uid and
    the server's defaults, when its kind is one the engine knows READY as it is sent (a ConfigMap, a
    Secret, a ServiceAccount, ...). None for anything else: an update (the stored object may hold
    more than Smith sends) or a kind that needs time or that the engine does not know."""
    if not apply.expect_absent:
        return None
    check = BUILTIN.get(GroupKind.of(apply.object))
    if check is None or check(apply.object, now).state is not State.READY:
        return None
    defaults = _DEFAULTS.get(GroupKind.of(apply.object), {})
    metadata = {**apply.object["metadata"], "uid": placeholder(apply.resource)}
    return {**defaults, **apply.object, "metadata": metadata}


def _comparable(obj: JSONObject) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def as_predicted(predicted: JSONObject, answered: JSONObject, uids: Mapping[str, str]) -> bool:
    """The answer says all the prediction said (its owners' uids filled in from `uids`, by resource
    name), and nothing else but what only the server sets."""
    expected = filled(_comparable(predicted), uids)
    return expected is not None and dumps(expected, sort_keys=True) == dumps(
        _comparable(answered), sort_keys=True
    )


def all_as_predicted(
    predicted: Mapping[str, JSONObject], answers: Mapping[str, JSONObject], uids: Mapping[str, str]
) -> bool:
    """Every predicted object (by resource name) has an answer, and it is as predicted."""
    return all(name in answers and as_predicted(p, answers[name], uids) for name, p in predicted.items())


def filled(obj: JSONObject, uids: Mapping[str, str]) -> dict[str, Any] | None:
    """`obj` with the placeholder uids of its ownerReferences replaced by the real ones (`uids`, by
    resource name); None when a placeholder is left anywhere (one not known yet, or one a reference
    copied into the object: its value was never the real uid)."""
    out = dict(obj)
    meta = out["metadata"] = dict(obj["metadata"])
    owners = []
    for owner in meta.get("ownerReferences") or []:
        uid = str(owner.get("uid", ""))
        if uid.startswith(PLACEHOLDER):
            if (real := uids.get(uid.removeprefix(PLACEHOLDER))) is None:
                return None
            owner = {**owner, "uid": real}
        owners.append(owner)
    if "ownerReferences" in meta:
        meta["ownerReferences"] = owners
    if PLACEHOLDER.encode() in dumps(out):
        return None
    return out


def plan_ahead(
    first: Sequence[Action],
    observed: Iterable[Observed],
    replan: Callable[[Sequence[Observed]], Plan],
    *,
    now: datetime | None = None,
    limit: int = MAX_WAVES_AHEAD,
) -> Ahead:
    """The waves that would follow the applies of `first`, each planned by `replan` against the
    objects observed with the predicted answers of the wave before in place of what was observed of
    them. It stops at a wave with nothing new, with a deletion or a plugin to call, or one whose
    objects hold a predicted uid other than as an owner (see `filled`); when it stops because the
    last wave predicted leaves nothing to do and every resource READY, the verdicts then (`settled`)."""
    now = now or datetime.now(UTC)
    seen = {ObjectKey.of(o.object): o for o in observed}
    known: set[str] = set()  # resources whose uids the waves so far predict
    done = {a.resource for a in first if isinstance(a, Apply)}
    wave: Sequence[Action] = first
    waves: list[Wave] = []
    while len(waves) < limit and wave and all(isinstance(a, Apply) for a in wave):
        predicted: dict[str, JSONObject] = {}
        for apply in (a for a in wave if isinstance(a, Apply)):
            key = ObjectKey.of(apply.object)
            if (answer := predicted_answer(apply, now=now)) is None:
                seen.pop(key, None)  # not predicted: its dependents wait for its real answer
                continue
            wanted = desired_hash(apply.object)
            seen[key] = Observed(answer, READY, in_sync_with=wanted, last_applied=wanted)
            predicted[apply.resource] = answer
        if not predicted:
            break
        known |= predicted.keys()
        plan = replan(list(seen.values()))
        if plan.plugin_calls or any(not isinstance(a, Apply) for a in plan.actions):
            break
        following = tuple(a for a in plan.actions if isinstance(a, Apply) and a.resource not in done)
        if not following:
            return Ahead(tuple(waves), _settled(plan, predicted))
        if any(filled(a.object, dict.fromkeys(known, "")) is None for a in following):
            break
        waves.append(Wave(following, predicted))
        done |= {a.resource for a in following}
        wave = following
    return Ahead(tuple(waves))


def _settled(plan: Plan, predicted: Mapping[str, JSONObject]) -> Settled | None:
    """`plan`'s verdicts when it is the end of the pass: nothing to do, nothing pending or to come back
    for, every resource READY."""
    if (
        plan.actions
        or plan.pending
        or plan.wake_after is not None
        or plan.plugin_calls
        or plan.plugin_statuses
        or any(v.state is not VerdictState.READY for v in plan.verdicts)
    ):
        return None
    return Settled(predicted, plan.verdicts)


def settled_verdicts(settled: Settled, answers: Mapping[str, JSONObject]) -> tuple[Verdict, ...] | None:
    """The settled verdicts with the uids of the READY `answers` (by resource name) in place of the
    placeholders, when every apply of the last wave was answered as predicted; None when one was not
    (then the plan is asked for)."""
    uids = {name: str(obj["metadata"].get("uid", "")) for name, obj in answers.items()}
    if not all_as_predicted(settled.predicted, answers, uids):
        return None
    verdicts = []
    for verdict in settled.verdicts:
        ref = verdict.object
        if ref is not None and ref.uid.startswith(PLACEHOLDER):
            if (uid := uids.get(ref.uid.removeprefix(PLACEHOLDER))) is None:
                return None
            verdict = replace(verdict, object=replace(ref, uid=uid))
        verdicts.append(verdict)
    return tuple(verdicts)


def mispredicted(action: Action, ahead_made: dict[str, str]) -> bool:
    """An apply of a resource already applied in this pass as planned ahead (`ahead_made`: its desired
    hash then, by resource), of another object than the one made then: the prediction it was made on did
    not hold. The executor checks every answer against the prediction before it makes a wave ahead, so
    this should not happen; if it does, the object the real answers call for is applied at once, once
    (the entry is used up)."""
    if not isinstance(action, Apply) or action.resource not in ahead_made:
        return False
    return ahead_made.pop(action.resource) != desired_hash(action.object)
