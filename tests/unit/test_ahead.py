"""Planning ahead: the waves after a wave, planned against the answers its applies are predicted to get,
and the checks an executor makes before it applies one (smith_engine.ahead)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smith_engine.ahead import (
    Ahead,
    as_predicted,
    filled,
    mispredicted,
    placeholder,
    plan_ahead,
    predicted_answer,
    settled_verdicts,
)
from smith_engine.changes import desired_hash
from smith_engine.model import Bundle, ObjectKey
from smith_engine.planner import Action, Apply, Observed, Plan, plan_bundle
from smith_engine.readiness import READY
from support import bundle, config_map, resource

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


DEPLOYMENT = {  # a kind that needs time: Available only once rolled out
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
}


def link(name: str, before: str, path: str = "data.value") -> dict[str, Any]:
    """ConfigMap `name` holding a value read from the one before it (a reference)."""
    ref = {"name": "v", "resource": before, "path": path}
    return resource(name, config_map(name, {"value": "!{v}"}), depends_on=[before], references=[ref])


def chain(*more: dict[str, Any]) -> Bundle:
    return bundle(resource("c0", config_map("c0", {"value": "seed"})), *more)


def ahead_of(b: Bundle, observed: Sequence[Observed] = ()) -> tuple[Plan, list[list[str]], Any]:
    plan = plan_bundle(b, observed, now=NOON)
    waves = plan_ahead(plan.actions, observed, lambda seen: plan_bundle(b, seen, now=NOON), now=NOON).waves
    return plan, [[a.resource for a in w.actions] for w in waves], waves


def answer(predicted: dict[str, Any], uid: str, **server: Any) -> dict[str, Any]:
    """What the API server answers a create with: the object, its uid and what only it sets."""
    out = copy.deepcopy(predicted)
    out["metadata"] |= {"uid": uid, "resourceVersion": "42", "creationTimestamp": "2026-11-27T12:00:00Z"}
    out["metadata"]["managedFields"] = [{"manager": "smith", "operation": "Apply"}]
    return out | server


def test_a_reference_chain_is_planned_ahead_wave_by_wave_each_predicting_the_one_before() -> None:
    b = chain(link("c1", "c0"), link("c2", "c1"), link("c3", "c2"))
    plan, waves, planned = ahead_of(b)
    assert [a.resource for a in plan.actions] == ["c0"]
    assert waves == [["c1"], ["c2"], ["c3"]]
    assert [list(w.predicted) for w in planned] == [["c0"], ["c1"], ["c2"]]
    c2 = planned[1].actions[0].object
    assert c2["data"] == {"value": "seed"}, "the value travels through the predictions"
    owners = [o["uid"] for o in c2["metadata"]["ownerReferences"] if not o.get("controller")]
    assert owners == [placeholder("c1")], "a uid not known yet stands as a placeholder"


def test_nothing_is_planned_past_an_object_that_needs_time() -> None:
    b = chain(resource("web", DEPLOYMENT, depends_on=["c0"]), resource("after", depends_on=["web"]))
    _, waves, _ = ahead_of(b)
    assert waves == [["web"]], "the Deployment follows the ConfigMap; what follows it waits for it"


def test_a_reference_to_what_only_the_server_sets_is_not_planned_ahead() -> None:
    for path in ("metadata.uid", "metadata.creationTimestamp"):
        _, waves, _ = ahead_of(chain(link("c1", "c0", path=path)))
        assert waves == [], path


def test_an_update_is_not_predicted() -> None:
    b = chain(link("c1", "c0"))
    update = Apply("c0", {**config_map("c0", {"value": "x"}), "metadata": {"name": "c0"}})
    assert predicted_answer(update, now=NOON) is None
    assert predicted_answer(Apply("c0", update.object, expect_absent=True), now=NOON) is not None
    plan = plan_bundle(b, [], now=NOON)
    assert plan_ahead([update], [], lambda seen: plan_bundle(b, seen, now=NOON), now=NOON) == Ahead(())
    assert plan.actions, "the bundle itself plans"


def test_an_answer_is_as_predicted_with_what_only_the_server_sets_and_its_owners_filled_in() -> None:
    _, _, planned = ahead_of(chain(link("c1", "c0"), link("c2", "c1")))
    c1 = planned[1].predicted["c1"]
    stored = filled(answer(c1, "uid-c1"), {"c0": "uid-c0"})
    assert stored is not None
    assert as_predicted(c1, stored, {"c0": "uid-c0"})
    assert not as_predicted(c1, stored, {"c0": "another-uid"}), "an owner's uid is compared once filled"
    assert not as_predicted(c1, stored, {}), "an owner whose uid is not known yet"


def test_an_answer_that_says_more_or_other_than_predicted_is_not_as_predicted() -> None:
    _, _, planned = ahead_of(chain(link("c1", "c0")))
    c0 = planned[0].predicted["c0"]
    extra = answer(c0, "uid-c0")
    extra["data"] = {**extra["data"], "added": "by someone else"}
    assert not as_predicted(c0, extra, {})
    other = answer(c0, "uid-c0")
    other["data"] = {"value": "changed"}
    assert not as_predicted(c0, other, {})
    dropped = answer(c0, "uid-c0")
    dropped["metadata"] = {k: v for k, v in dropped["metadata"].items() if k != "labels"}
    assert not as_predicted(c0, dropped, {})
    assert as_predicted(c0, answer(c0, "uid-c0", status={"any": "thing"}), {})


def test_a_secret_is_predicted_with_the_type_the_server_defaults() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    b = bundle(resource("s", secret), resource("after", depends_on=["s"]))
    _, waves, planned = ahead_of(b)
    assert waves == [["after"]]
    predicted = planned[0].predicted["s"]
    assert predicted["type"] == "Opaque"
    assert predicted["data"] == {"k": "dg=="}, "stringData as the server stores it"


def test_filled_replaces_owner_placeholders_and_refuses_any_other() -> None:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "x",
            "ownerReferences": [{"kind": "ConfigMap", "name": "c0", "uid": placeholder("c0")}],
        },
        "data": {"k": "v"},
    }
    done = filled(obj, {"c0": "real"})
    assert done is not None
    assert done["metadata"]["ownerReferences"][0]["uid"] == "real"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == placeholder("c0"), "the input is left as it is"
    assert filled(obj, {}) is None, "a uid not known"
    copied = {**obj, "data": {"k": placeholder("c0")}}
    assert filled(copied, {"c0": "real"}) is None, "a placeholder a reference copied into the object"


def test_an_object_applied_ahead_is_applied_again_in_the_pass_only_if_the_real_answers_call_for_another() -> (
    None
):
    made = Apply("c1", config_map("c1", {"value": "seed"}), expect_absent=True)
    other = Apply("c1", config_map("c1", {"value": "other"}))
    ahead_made = {"c1": desired_hash(made.object)}
    assert not mispredicted(Apply("c1", made.object), dict(ahead_made)), "the same object: nothing to do"
    assert not mispredicted(Apply("c2", other.object), dict(ahead_made)), "not applied ahead"
    assert mispredicted(other, ahead_made)
    assert not mispredicted(other, ahead_made), "once"


Made = dict[str, tuple[dict[str, Any], dict[str, Any]]]


def made(b: Bundle) -> tuple[Any, Made]:
    """Plan `b` ahead and answer every apply as the API server would (its own uid for each, owners'
    uids filled in): what was planned, and by resource what was sent and its answer."""
    first = plan_bundle(b, [], now=NOON)
    ahead = plan_ahead(first.actions, [], lambda seen: plan_bundle(b, seen, now=NOON), now=NOON)
    out: Made = {}
    for wave in (first.actions, *(w.actions for w in ahead.waves)):
        for apply in wave:
            assert isinstance(apply, Apply)
            sent = filled(apply.object, {n: a["metadata"]["uid"] for n, (_, a) in out.items()})
            assert sent is not None
            out[apply.resource] = (sent, answer(sent, f"uid-{apply.resource}"))
    return ahead, out


def test_the_plan_after_the_last_wave_is_predicted_with_the_real_uids_as_the_planner_would_plan_it() -> None:
    b = chain(link("c1", "c0"), link("c2", "c1"))
    ahead, out = made(b)
    assert ahead.settled is not None
    assert list(ahead.settled.predicted) == ["c2"], "the last wave's answers are what it rests on"
    verdicts = settled_verdicts(ahead.settled, {n: a for n, (_, a) in out.items()})
    observed = [Observed(a, READY, in_sync_with=desired_hash(sent)) for sent, a in out.values()]
    real = plan_bundle(b, observed, now=NOON)  # as the controller would ask for it
    assert not real.actions
    assert verdicts == real.verdicts
    assert {v.object.uid for v in verdicts if v.object} == {"uid-c0", "uid-c1", "uid-c2"}


def test_the_predicted_plan_is_not_used_when_the_last_answer_is_not_as_predicted() -> None:
    ahead, out = made(chain(link("c1", "c0")))
    assert ahead.settled is not None
    answers = {n: a for n, (_, a) in out.items()}
    answers["c1"]["metadata"]["annotations"] = {"added": "by a webhook"}
    assert settled_verdicts(ahead.settled, answers) is None
    del answers["c1"]
    assert settled_verdicts(ahead.settled, answers) is None, "no answer"


def test_nothing_is_predicted_settled_while_something_needs_time() -> None:
    ahead, _ = made(chain(resource("web", DEPLOYMENT, depends_on=["c0"])))
    assert ahead.settled is None


@st.composite
def graphs(draw: st.DrawFn) -> Bundle:
    """A DAG of ConfigMaps and Secrets as teams write them: each may depend on earlier ones, read a
    value from one (its data, its name, or a label), and name another in its own data."""
    count = draw(st.integers(2, 7))
    resources = [resource("r0", config_map("r0", {"value": "seed"}))]
    for i in range(1, count):
        name, earlier = f"r{i}", [f"r{j}" for j in range(i)]
        depends = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        data: dict[str, Any] = {"plain": draw(st.text("abcxyz ", max_size=5))}
        refs = []
        if draw(st.booleans()):
            source = draw(st.sampled_from(earlier))
            path = draw(
                st.sampled_from(
                    ["data.value", "metadata.name", "metadata.labels['smith.atlassian.com/BundleName']"]
                )
            )
            refs = [{"name": "v", "resource": source, "path": path}]
            data["value"] = draw(st.sampled_from(["!{v}", "from !{v}"]))
        else:
            data["value"] = "seed"
        obj = config_map(name, data)
        if draw(st.integers(0, 4)) == 0:
            obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
        resources.append(resource(name, obj, depends_on=depends, references=refs))
    return bundle(*resources)


@settings(max_examples=80, deadline=None)
@given(graphs())
def test_a_plan_from_answers_as_predicted_is_the_plan_predicted(b: Bundle) -> None:
    """Planning ahead assumes each wave is answered as predicted; whenever it is, the plan made from the
    real answers (their own uids, what only the server sets) applies exactly the wave predicted next,
    each object as predicted with the real owner uids in place: `mispredicted` never has to act."""
    first = plan_bundle(b, [], now=NOON)
    ahead = plan_ahead(first.actions, [], lambda seen: plan_bundle(b, seen, now=NOON), now=NOON)
    waves: list[Sequence[Action]] = [first.actions, *(w.actions for w in ahead.waves)]
    uids: dict[str, str] = {}
    observed: list[Observed] = []
    for index, wave in enumerate(waves):
        for apply in wave:
            assert isinstance(apply, Apply)
            sent = filled(apply.object, uids)
            assert sent is not None, "a wave ahead holds only owner placeholders of earlier waves"
            real = answer(sent, f"uid-{apply.resource}")
            if real["kind"] == "Secret":
                real.setdefault("type", "Opaque")  # as the API server defaults it
            uids[apply.resource] = real["metadata"]["uid"]
            observed.append(Observed(real, READY, in_sync_with=desired_hash(sent)))
        replanned = plan_bundle(b, observed, now=NOON)
        applies = {a.resource: desired_hash(a.object) for a in replanned.actions if isinstance(a, Apply)}
        if index + 1 < len(waves):
            following = [a for a in waves[index + 1] if isinstance(a, Apply)]
            predicted = {a.resource: desired_hash(filled(a.object, uids) or {}) for a in following}
            assert applies == predicted
            made_ahead = dict(predicted)
            assert not any(mispredicted(a, made_ahead) for a in replanned.actions)
        elif ahead.settled is not None:
            assert not replanned.actions
            assert (
                settled_verdicts(ahead.settled, {n: a.object for n, a in _by_resource(b, observed).items()})
                == replanned.verdicts
            )


def _by_resource(b: Bundle, observed: list[Observed]) -> dict[str, Observed]:
    names = {r.key: r.name for r in b.resources}
    return {names[ObjectKey.of(o.object)]: o for o in observed if ObjectKey.of(o.object) in names}
