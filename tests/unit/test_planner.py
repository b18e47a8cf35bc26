"""Planner: apply when dependencies are READY, Blocked otherwise, delete what left the bundle,
never touch what another owner controls."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smith_engine.changes import digest
from smith_engine.deletion import DELETION_DELAY
from smith_engine.model import BUNDLE_NAME_LABEL, Bundle
from smith_engine.planner import (
    Apply,
    Delete,
    Observed,
    Plan,
    Reason,
    VerdictState,
    dependency_reference,
    plan_bundle,
    plan_teardown,
)
from smith_engine.readiness import READY, retriable, terminal
from support import UID, bundle, config_map, observed, resource, waiting

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CHAIN = (resource("a"), resource("b", depends_on=["a"]), resource("c", depends_on=["b"]))


def applied(plan: Plan) -> list[str]:
    return [a.resource for a in plan.actions if isinstance(a, Apply)]


def apply_of(plan: Plan, name: str) -> dict[str, Any]:
    return dict(next(a.object for a in plan.actions if isinstance(a, Apply) and a.resource == name))


def depends(obj: Observed, *, on: Observed) -> None:
    obj.object["metadata"]["ownerReferences"].insert(0, dependency_reference(on.object))


def converged(b: Bundle, plan: Plan) -> list[Observed]:
    """What the cluster would hold after `plan`'s applies, every object READY."""
    return [observed(b, a.object) for a in plan.actions if isinstance(a, Apply)]


def test_first_wave_is_applied_and_the_rest_is_blocked() -> None:
    b = bundle(*CHAIN)
    plan = plan_bundle(b, [])
    assert applied(plan) == ["a"]
    assert plan.verdict("b").state is VerdictState.BLOCKED
    assert plan.verdict("b").reason is Reason.DEPENDENCIES_NOT_READY
    assert plan.verdict("b").blocked_on == ("a",)
    assert plan.verdict("c").blocked_on == ("b",)
    assert "waiting for a to be ready" in plan.verdict("b").message


def test_resource_waits_until_dependency_ready() -> None:
    b = bundle(*CHAIN)
    first = plan_bundle(b, [])
    in_progress = plan_bundle(b, [observed(b, apply_of(first, "a"), waiting())])
    assert applied(in_progress) == []
    assert in_progress.verdict("a").state is VerdictState.IN_PROGRESS
    ready = plan_bundle(b, converged(b, first))
    assert applied(ready) == ["b"]


def test_independent_resources_are_applied_together() -> None:
    b = bundle(resource("x"), resource("y"), resource("z", depends_on=["x", "y"]))
    assert applied(plan_bundle(b, [])) == ["x", "y"]


def test_applied_objects_are_labelled_owned_and_namespaced() -> None:
    b = bundle(resource("a"))
    obj = apply_of(plan_bundle(b, []), "a")
    assert obj["metadata"]["namespace"] == b.namespace
    assert obj["metadata"]["labels"][BUNDLE_NAME_LABEL] == b.name
    assert obj["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "smith.atlassian.com/v1",
            "kind": "Bundle",
            "name": b.name,
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_converged_object_is_not_applied_again() -> None:
    b = bundle(resource("a"))
    first = plan_bundle(b, [])
    server = observed(b, apply_of(first, "a"), resourceVersion="7")
    server.object["metadata"]["creationTimestamp"] = "2026-11-24T00:00:00Z"
    again = plan_bundle(b, [server])
    assert again.actions == ()
    assert again.verdict("a").state is VerdictState.READY


def test_object_not_known_in_sync_goes_to_its_executor_with_its_digest() -> None:
    b = bundle(resource("a", config_map("a", {"k": "v"})))
    obj = apply_of(plan_bundle(b, []), "a")
    edited = observed(b, {**obj, "data": {"k": "edited"}}, in_sync=False, resourceVersion="9")
    plan = plan_bundle(b, [edited])
    (action,) = plan.actions
    assert isinstance(action, Apply)
    assert action.object == obj
    assert action.observed_digest == digest(edited.object)
    assert plan.verdict("a").reason is Reason.READY, "a drift does not make it unready"


def test_object_in_sync_with_an_older_bundle_is_applied() -> None:
    old = bundle(resource("a", config_map("a", {"k": "v", "gone": "x"})))
    new = bundle(resource("a", config_map("a", {"k": "v"})))
    stored = observed(old, apply_of(plan_bundle(old, []), "a"))
    assert applied(plan_bundle(new, [stored])) == ["a"]


def test_secret_string_data_compares_as_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"t": "x"}}
    b = bundle(resource("s", secret))
    obj = apply_of(plan_bundle(b, []), "s")
    assert obj["data"] == {"t": base64.b64encode(b"x").decode()}
    assert "stringData" not in obj
    assert plan_bundle(b, [observed(b, obj)]).actions == ()


def test_references_are_resolved_with_their_type() -> None:
    b = bundle(
        resource("db", config_map("db")),
        resource(
            "app",
            config_map("app", {"host": "!{host}", "all": "!{labels}"}),
            references=[
                {"name": "host", "resource": "db", "path": "status.host"},
                {"name": "labels", "resource": "db", "path": "metadata.labels"},
            ],
        ),
    )
    db = observed(b, config_map("db"), status={"host": "db.internal"})
    data = apply_of(plan_bundle(b, [db]), "app")["data"]
    assert data["host"] == "db.internal"
    assert data["all"] == {BUNDLE_NAME_LABEL: b.name}


def test_reference_to_a_field_not_there_yet_blocks_the_resource() -> None:
    b = bundle(
        resource("db"),
        resource(
            "app",
            config_map("app", {"h": "!{h}"}),
            references=[{"name": "h", "resource": "db", "path": "status.host"}],
        ),
    )
    plan = plan_bundle(b, [observed(b, config_map("db"))])
    assert applied(plan) == []
    assert plan.verdict("app").state is VerdictState.BLOCKED
    assert plan.verdict("app").reason is Reason.REFERENCE_NOT_RESOLVED
    assert "status.host is not set" in plan.verdict("app").message


def test_bindsecret_reference_reads_the_binding_secret() -> None:
    binding = {
        "apiVersion": "servicecatalog.k8s.io/v1beta1",
        "kind": "ServiceBinding",
        "metadata": {"name": "bind"},
        "spec": {"instanceRef": {"name": "i"}, "secretName": "bind-secret"},
    }
    b = bundle(
        resource("bind", binding),
        resource(
            "app",
            config_map("app", {"pw": "!{pw}"}),
            references=[
                {"name": "pw", "resource": "bind", "path": "data.password", "modifier": "bindsecret"}
            ],
        ),
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bind-secret"},
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    }
    plan = plan_bundle(b, [observed(b, binding), observed(b, secret, owned=False)])
    assert apply_of(plan, "app")["data"]["pw"] == "hunter2"


def deleted(plan: Plan) -> list[str]:
    return [a.object.name for a in plan.actions if isinstance(a, Delete)]


def test_object_removed_from_the_bundle_is_deleted_once_the_rest_is_ready() -> None:
    b = bundle(resource("a"))
    gone = observed(b, config_map("old"))
    assert deleted(plan_bundle(b, [gone])) == [], "not while 'a' is not there yet"
    assert deleted(plan_bundle(b, [gone, observed(b, config_map("a"), waiting())])) == [], "nor in progress"
    plan = plan_bundle(b, [gone, observed(b, config_map("a"))])
    assert deleted(plan) == ["old"]
    assert [(p.object.kind, p.object.name, p.due) for p in plan.pending] == [("ConfigMap", "old", None)]


def test_removed_objects_go_dependents_first() -> None:
    b = bundle(resource("a"))
    base, mid, top = (observed(b, config_map(n)) for n in ("base", "mid", "top"))
    depends(mid, on=base)
    depends(top, on=mid)
    ready = observed(b, config_map("a"))
    assert deleted(plan_bundle(b, [ready, base, mid, top])) == ["top"]
    top.object["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    assert deleted(plan_bundle(b, [ready, base, mid, top])) == [], "top is still going"
    assert deleted(plan_bundle(b, [ready, base, mid])) == ["mid"]


def test_soft_deleted_object_waits_its_delay_from_when_it_was_first_seen_removed() -> None:
    b = bundle(resource("a"))
    gone = observed(b, config_map("old"))
    gone.object["metadata"]["annotations"] = {DELETION_DELAY: "10m"}
    ready = observed(b, config_map("a"))
    first = plan_bundle(b, [ready, gone], now=NOON)
    assert deleted(first) == []
    (pending,) = first.pending
    assert pending.due == NOON + timedelta(minutes=10)
    assert first.wake_after == 600
    status = [pending.as_status()]
    assert status[0]["deletionDue"] == "2026-11-26T12:10:00Z"
    later = plan_bundle(b, [ready, gone], now=NOON + timedelta(minutes=4), previous_pending=status)
    assert (later.pending[0].due, later.wake_after) == (pending.due, 360), "the due time stays"
    assert deleted(plan_bundle(b, [ready, gone], now=pending.due, previous_pending=status)) == ["old"]


def test_a_delay_that_is_not_a_duration_keeps_the_object_and_says_why() -> None:
    b = bundle(resource("a"))
    gone = observed(b, config_map("old"))
    gone.object["metadata"]["annotations"] = {DELETION_DELAY: "ten minutes"}
    plan = plan_bundle(b, [observed(b, config_map("a")), gone])
    assert deleted(plan) == []
    assert "'ten minutes' is not a duration" in plan.pending[0].problem


def test_objects_hold_an_owner_reference_to_what_they_depend_on() -> None:
    b = bundle(resource("a"), resource("b", depends_on=["a"]))
    a = observed(b, config_map("a"))
    refs = apply_of(plan_bundle(b, [a]), "b")["metadata"]["ownerReferences"]
    assert refs[0] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "a",
        "uid": "uid-a",
        "blockOwnerDeletion": True,
    }
    assert (refs[1]["controller"], refs[1]["kind"]) == (True, "Bundle")


def test_teardown_deletes_wave_by_wave_and_finishes_when_nothing_is_left() -> None:
    b = bundle(resource("a"), resource("b", depends_on=["a"]), resource("c"))
    a, bb, c = (observed(b, config_map(n)) for n in "abc")
    depends(bb, on=a)
    stranger = observed(b, config_map("x"), owned=False)
    first = plan_teardown(b, [a, bb, c, stranger])
    assert (sorted(deleted(first)), first.finished) == (["b", "c"], False)
    assert deleted(plan_teardown(b, [a, stranger])) == ["a"]
    assert plan_teardown(b, [stranger]).finished


def test_teardown_of_objects_that_hold_each_other_does_not_hang() -> None:
    b = bundle(resource("a"))
    x, y = observed(b, config_map("x")), observed(b, config_map("y"))
    depends(x, on=y)
    depends(y, on=x)
    assert sorted(deleted(plan_teardown(b, [x, y]))) == ["x", "y"]


def test_labelled_object_controlled_by_someone_else_is_not_deleted() -> None:
    b = bundle(resource("a"))
    stranger = observed(b, config_map("old"), owned=False)
    stranger.object["metadata"]["labels"] = {BUNDLE_NAME_LABEL: b.name}
    assert not [a for a in plan_bundle(b, [stranger]).actions if isinstance(a, Delete)]


def test_object_controlled_by_another_owner_is_a_terminal_error() -> None:
    b = bundle(resource("a"), resource("b"))
    other = observed(b, config_map("a"), owned=False)
    other.object["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": True}
    ]
    plan = plan_bundle(b, [other])
    assert applied(plan) == ["b"]
    v = plan.verdict("a")
    assert (v.state, v.reason) == (VerdictState.ERROR, Reason.TERMINAL_ERROR)
    assert "controlled by Deployment 'web'" in v.message


def test_object_without_controller_is_not_taken_over() -> None:
    b = bundle(resource("a"))
    plan = plan_bundle(b, [observed(b, config_map("a"), owned=False)])
    assert plan.actions == ()
    assert "has no controller" in plan.verdict("a").message


def test_object_pointed_at_the_bundle_is_adopted() -> None:
    b = bundle(resource("a"))
    adopted = observed(b, config_map("a"), in_sync=False)
    adopted.object["metadata"]["labels"] = {}
    assert applied(plan_bundle(b, [adopted])) == ["a"]


def test_readiness_errors_become_verdicts() -> None:
    b = bundle(resource("a"), resource("b"))
    first = plan_bundle(b, [])
    plan = plan_bundle(
        b,
        [
            observed(b, apply_of(first, "a"), terminal("broken")),
            observed(b, apply_of(first, "b"), retriable("flaky")),
        ],
    )
    assert plan.verdict("a").reason is Reason.TERMINAL_ERROR
    assert plan.verdict("b").reason is Reason.RETRIABLE_ERROR


def test_object_being_deleted_is_waited_for_not_applied() -> None:
    b = bundle(resource("a", config_map("a", {"k": "new"})))
    old = observed(b, config_map("a", {"k": "old"}), in_sync=False)
    old.object["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z"
    plan = plan_bundle(b, [old])
    assert plan.actions == ()
    assert plan.verdict("a").reason is Reason.WAITING


@st.composite
def dag_bundles(draw: st.DrawFn) -> Bundle:
    size = draw(st.integers(min_value=1, max_value=12))
    names = [f"r{i}" for i in range(size)]
    return bundle(
        *(
            resource(n, depends_on=draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else [])
            for i, n in enumerate(names)
        )
    )


@settings(max_examples=50)
@given(dag_bundles(), st.data())
def test_planner_applies_exactly_the_resources_whose_dependencies_are_ready(
    b: Bundle, data: st.DataObject
) -> None:
    """Whatever subset of resources exists and is READY, the plan applies exactly the missing ones
    whose every dependency is READY, and blocks the others naming their non-ready dependencies."""
    present = data.draw(st.sets(st.sampled_from([r.name for r in b.resources])))
    full = plan_bundle(b, [])  # desired objects do not depend on observed state here (no references)
    desired = {r.name: observed(b, config_map(r.name)) for r in b.resources}
    plan = plan_bundle(b, [desired[n] for n in present])
    ready = {v.resource for v in plan.verdicts if v.state is VerdictState.READY}
    assert ready <= present
    for r in b.resources:
        v = plan.verdict(r.name)
        not_ready = tuple(sorted(r.dependencies - ready))
        if not_ready:
            assert v.state is VerdictState.BLOCKED
            assert v.blocked_on == not_ready
        elif r.name not in present:
            assert r.name in applied(plan)
    assert set(applied(plan)) <= {r.name for r in b.resources} - present
    assert full.order == plan.order


@settings(max_examples=50)
@given(dag_bundles())
def test_repeated_planning_converges_in_wave_order(b: Bundle) -> None:
    """Applying each plan and re-planning reaches all-READY, creating each resource after its dependencies."""
    cluster: dict[str, Observed] = {}
    created: list[str] = []
    for _ in range(len(b.resources) + 1):
        plan = plan_bundle(b, cluster.values())
        for a in plan.actions:
            assert isinstance(a, Apply)
            deps = b.by_name[a.resource].dependencies
            assert deps <= set(created)
            created.append(a.resource)
            cluster[a.resource] = observed(b, a.object, READY)
        if not plan.actions:
            break
    assert all(v.state is VerdictState.READY for v in plan_bundle(b, cluster.values()).verdicts)
    assert sorted(created) == sorted(r.name for r in b.resources)


def test_a_dependency_the_bundle_changed_blocks_its_dependents_until_applied() -> None:
    old = bundle(resource("a", config_map("a", {"k": "v1"})), resource("b", depends_on=["a"]))
    new = bundle(resource("a", config_map("a", {"k": "v2"})), resource("b", depends_on=["a"]))
    first = plan_bundle(old, [])
    stored = observed(old, apply_of(first, "a"))
    stored = replace(stored, last_applied=stored.in_sync_with)
    plan = plan_bundle(new, [stored])
    assert applied(plan) == ["a"]
    assert plan.verdict("a").reason is Reason.APPLYING
    assert plan.verdict("b").blocked_on == ("a",)


def test_an_object_its_executor_does_not_know_is_checked_without_blocking_dependents() -> None:
    b = bundle(resource("a"), resource("b", depends_on=["a"]))
    first = plan_bundle(b, [])
    unknown = observed(b, apply_of(first, "a"), in_sync=False)
    plan = plan_bundle(b, [unknown])
    assert applied(plan) == ["a", "b"], "a is checked by its executor, and b goes ahead"
    assert plan.verdict("a").state is VerdictState.READY
