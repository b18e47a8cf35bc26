"""What one Bundle may cost: depth, resources, substituted values, outside objects. Each limit is a
precise error on that Bundle (or resource); just under it, everything works as before."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from smith_engine.errors import InvalidBundleError, LimitError
from smith_engine.limits import (
    MAX_BUNDLE_BYTES,
    MAX_DEPTH,
    MAX_OBJECT_BYTES,
    MAX_OUTSIDE,
    MAX_PROBLEMS,
    MAX_RESOURCES,
    ExpansionError,
    pruned,
    shown,
    too_deep,
    within_reach,
)
from smith_engine.planner import Apply, VerdictState, plan_bundle
from smith_engine.references import PathSyntaxError, compile_path, substitute
from smith_engine.validation import load_bundle
from smith_engine.workloads import outside_sources
from support import bundle, bundle_object, config_map, observed, resource


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_too_deep_names_the_first_path_past_the_limit_at_any_depth() -> None:
    assert too_deep(nested(3), 3) is None
    assert too_deep(nested(4), 3) == ("a", "a", "a")
    assert too_deep([[1], {"k": [[]]}], 3) == (1, "k", 0)
    assert too_deep(nested(50_000), 10) == ("a",) * 10  # no recursion: any depth is safe to ask about


def test_pruned_keeps_what_is_within_the_limit_and_empties_what_is_below() -> None:
    assert pruned({"a": {"b": {"c": 1}}, "x": [1, [2]]}, 2) == {"a": {}, "x": []}
    assert pruned({"a": {"b": 1}}, 5) == {"a": {"b": 1}}
    assert too_deep(pruned(nested(300), 10), 10) is None


def test_a_bundle_too_deep_for_orjson_is_carried_with_its_spec_cut() -> None:
    fine = bundle_object(resource("cm", config_map("cm", {"x": "1"})))
    assert within_reach(fine) is fine
    deep = bundle_object(resource("cm", {**config_map("cm"), "data": nested(400)}))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(deep)
    carried = within_reach(deep)
    orjson.dumps(carried)
    assert carried["metadata"] == deep["metadata"]
    with pytest.raises(InvalidBundleError, match=f"nested more than {MAX_DEPTH} levels deep"):
        load_bundle(carried)


def test_shown_paths_are_short() -> None:
    assert shown(("spec", "resources", 0, "spec")) == "spec.resources[0].spec"
    assert shown(("a",) * 20, first=3) == "a.a.a… (17 more levels)"


def test_a_bundle_just_within_the_depth_limit_is_valid_and_one_level_more_is_not() -> None:
    # The Bundle, spec, resources, the resource, its spec and object are 6 levels.
    within = resource("cm", {**config_map("cm"), "data": nested(MAX_DEPTH - 6)})
    load_bundle(bundle_object(within))
    beyond = resource("cm", {**config_map("cm"), "data": nested(MAX_DEPTH - 5)})
    with pytest.raises(InvalidBundleError) as refused:
        load_bundle(bundle_object(beyond))
    assert str(refused.value).startswith("spec.resources[0].spec.object.data.a.a… (")


def test_a_bundle_of_too_many_resources_is_invalid() -> None:
    load_bundle(bundle_object(*(resource(f"r{i}") for i in range(MAX_RESOURCES))))
    with pytest.raises(InvalidBundleError, match=f"has {MAX_RESOURCES + 1} resources; one may have at most"):
        load_bundle(bundle_object(*(resource(f"r{i}") for i in range(MAX_RESOURCES + 1))))


def reading(*names: str) -> dict[str, Any]:
    container = {"name": "app", "image": "nginx", "envFrom": [{"configMapRef": {"name": n}} for n in names]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def test_a_bundle_reading_too_many_outside_objects_is_invalid_and_its_own_do_not_count() -> None:
    own = [resource(f"own{i}", config_map(f"own-{i}")) for i in range(5)]
    names = [f"outside-{i}" for i in range(MAX_OUTSIDE)] + [f"own-{i}" for i in range(5)]
    load_bundle(bundle_object(*own, resource("app", reading(*names))))
    with pytest.raises(InvalidBundleError, match=f"reads {MAX_OUTSIDE + 1} objects it does not hold"):
        load_bundle(bundle_object(*own, resource("app", reading(*names, "one-more"))))
    external = {
        "name": "ext",
        "externalRef": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
    }
    with pytest.raises(InvalidBundleError, match=f"reads {MAX_OUTSIDE + 1} objects it does not hold"):
        load_bundle(bundle_object(*own, resource("app", reading(*names)), external))  # externalRefs count


def test_substitution_stops_where_the_values_put_in_pass_the_limit() -> None:
    values = {"v": "x" * 1000}
    assert substitute({"a": "!{v}" * 10}, values, limit=10_000) == {"a": "x" * 10_000}
    with pytest.raises(ExpansionError, match="more than 10,000 bytes"):
        substitute({"a": "!{v}" * 10, "b": "!{v}"}, values, limit=10_000)
    with pytest.raises(ExpansionError):  # a whole marker's map counts its JSON text
        substitute([["!{m}"]] * 11, {"m": {"k": "y" * 995}}, limit=10_000)


def test_a_reference_repeated_past_the_limit_is_a_terminal_error_on_its_resource_alone() -> None:
    refs = [{"name": "v", "resource": "big", "path": "data.value"}]
    b = bundle(
        resource("big", config_map("big", {"value": "x" * 100_000})),
        resource("bomb", config_map("bomb", {"copies": "!{v}" * 16}), references=refs),
        resource("fits", config_map("fits", {"copies": "!{v}" * 15}), references=refs),
    )
    first = plan_bundle(b, [])
    big = next(a for a in first.actions if isinstance(a, Apply) and a.resource == "big")
    plan = plan_bundle(b, [observed(b, big.object)])
    bomb = plan.verdict("bomb")
    assert bomb.state is VerdictState.ERROR
    assert f"more than {MAX_OBJECT_BYTES:,} bytes" in bomb.message
    assert [a.resource for a in plan.actions if isinstance(a, Apply)] == ["fits"]


def test_what_all_of_a_bundles_objects_take_in_one_plan_is_bounded_too() -> None:
    """A thousand resources each copying the same large value would hold the planner's memory for all
    of them at once: past 8 MiB in all, the resource that crosses it is a terminal error."""
    refs = [{"name": "v", "resource": "big", "path": "data.value"}]
    copies = [resource(f"c{i}", config_map(f"c{i}", {"copy": "!{v}"}), references=refs) for i in range(9)]
    b = bundle(resource("big", config_map("big", {"value": "x" * 1_000_000})), *copies)
    big = next(a for a in plan_bundle(b, []).actions if isinstance(a, Apply) and a.resource == "big")
    plan = plan_bundle(b, [observed(b, big.object)])
    erred = [v.resource for v in plan.verdicts if v.state is VerdictState.ERROR]
    assert len(erred) == 1, erred  # 8 copies fit in 8 MiB, the ninth does not
    assert f"more than {MAX_BUNDLE_BYTES:,} bytes in all" in plan.verdict(erred[0]).message
    assert len([a for a in plan.actions if isinstance(a, Apply)]) == 8


def test_values_put_in_may_not_nest_an_object_past_the_depth_limit() -> None:
    substitute({"a": {"b": "!{v}"}}, {"v": nested(MAX_DEPTH - 2)})  # levels 3 to 100
    with pytest.raises(ExpansionError, match=f"nested more than {MAX_DEPTH} levels deep"):
        substitute({"a": {"b": "!{v}"}}, {"v": nested(MAX_DEPTH - 1)})


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": "x"},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": ["x"]}}},
        },
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"volumes": 3}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": "x"},
        {
            "apiVersion": "servicecatalog.k8s.io/v1beta1",
            "kind": "ServiceInstance",
            "spec": {"parametersFrom": 1},
        },
    ],
)
def test_fields_of_the_wrong_type_read_as_absent_not_as_a_crash(obj: dict[str, Any]) -> None:
    """The Bundle's CRD lets anything stand in a resource's object: the controller reads what its objects
    read before the planner sees it, and a crash there left the Bundle without a status."""
    b = bundle_object({"name": "r", "spec": obj}, {"name": "s", "spec": "not an object"})
    assert outside_sources(b) == set()


def test_a_path_too_long_and_a_regex_too_large_for_re2_are_syntax_errors() -> None:
    with pytest.raises(PathSyntaxError, match="at most 512"):
        compile_path("a" + ".a" * 300)
    with pytest.raises(PathSyntaxError, match="not an RE2 regular expression"):
        compile_path('items[?(@.name =~ "\\\\pL{400}")].name')


def test_an_invalid_bundles_message_tells_its_first_problems_briefly() -> None:
    errors = [LimitError("x" * 2_000)] + [LimitError(f"problem {i}") for i in range(MAX_PROBLEMS + 4)]
    message = str(InvalidBundleError(errors))
    assert len(message) < 1_000
    assert message.endswith("and 5 more problems")
