"""Bundle model and validation: both resource shapes, and a typed error for every kind of bad input."""

from __future__ import annotations

from typing import Any

import pytest

from smith_engine.errors import (
    BundleError,
    CycleError,
    DuplicateObjectError,
    DuplicateReferenceError,
    DuplicateResourceError,
    ForeignNamespaceError,
    InvalidBundleError,
    InvalidFieldError,
    InvalidNameError,
    InvalidPathError,
    MalformedMarkerError,
    MissingFieldError,
    OutputNotDependencyError,
    SelfDependencyError,
    UndeclaredReferenceError,
    UnknownDependencyError,
    UnknownModifierError,
)
from smith_engine.model import GroupKind, Modifier, Reference
from smith_engine.validation import load_bundle
from support import NAMESPACE, bundle, bundle_object, config_map, resource


def problems(obj: dict[str, Any]) -> tuple[BundleError, ...]:
    with pytest.raises(InvalidBundleError) as caught:
        load_bundle(obj)
    return caught.value.problems


def only_problem(obj: dict[str, Any]) -> BundleError:
    found = problems(obj)
    assert len(found) == 1, found
    return found[0]


def only_refusal(obj: dict[str, Any]) -> BundleError:
    """The one problem of the Bundle's content, kept to its resource: the Bundle itself is valid (its
    graph is whole) and every other resource plans as usual."""
    refused = load_bundle(obj).refused
    found = [p for own in refused.values() for p in own]
    assert len(found) == 1, found
    return found[0]


def test_original_shape_takes_the_object_directly_under_spec() -> None:
    b = bundle(resource("a", wrapped=False), resource("b", depends_on=["a"], wrapped=False))
    assert b.by_name["b"].object["kind"] == "ConfigMap"
    assert b.by_name["b"].dependencies == {"a"}


def test_later_shape_takes_the_object_under_spec_object_with_references() -> None:
    b = bundle(
        resource("a"),
        resource(
            "b",
            config_map("b", {"x": "!{ax}"}),
            references=[
                {"name": "ax", "resource": "a", "path": "data.x", "modifier": "bindsecret", "example": "e"}
            ],
        ),
    )
    assert b.by_name["b"].references == (
        Reference(name="ax", resource="a", path="data.x", modifier=Modifier.BIND_SECRET, example="e"),
    )


def test_references_are_dependencies() -> None:
    b = bundle(resource("a"), resource("b", references=[{"name": "r", "resource": "a", "path": "data"}]))
    assert b.by_name["b"].dependencies == {"a"}


def test_bundle_keeps_identity_and_description() -> None:
    obj = bundle_object(resource("a"), name="shop", generation=7)
    obj["description"] = "the shop"
    b = load_bundle(obj)
    assert (b.namespace, b.name, b.generation, b.description) == (NAMESPACE, "shop", 7, "the shop")
    assert b.resources[0].key.group_kind == GroupKind("", "ConfigMap")


def test_duplicate_resource_names_are_reported() -> None:
    found = problems(bundle_object(resource("a"), resource("a", config_map("other"))))
    assert DuplicateResourceError(resource="a") in found


def test_two_resources_for_one_object_are_reported() -> None:
    err = only_problem(bundle_object(resource("a", config_map("same")), resource("b", config_map("same"))))
    assert err == DuplicateObjectError(resources=("a", "b"), object="ConfigMap/same")


def test_unknown_dependency_is_named() -> None:
    err = only_problem(bundle_object(resource("a", depends_on=["ghost", "db"])))
    assert err == UnknownDependencyError(resource="a", missing=("db", "ghost"))
    assert "'a' depends on 'db', 'ghost'" in str(err)


def test_reference_to_a_resource_not_in_the_bundle_is_an_unknown_dependency() -> None:
    err = only_problem(
        bundle_object(resource("a", references=[{"name": "r", "resource": "nope", "path": "x"}]))
    )
    assert err == UnknownDependencyError(resource="a", missing=("nope",))


def test_self_dependency_is_reported() -> None:
    assert only_problem(bundle_object(resource("a", depends_on=["a"]))) == SelfDependencyError(resource="a")


def test_cycle_names_its_members_in_order() -> None:
    err = only_problem(
        bundle_object(
            resource("a", depends_on=["b"]),
            resource("b", depends_on=["c"]),
            resource("c", depends_on=["a"]),
            resource("d", depends_on=["a"]),
        )
    )
    assert err == CycleError(cycle=("a", "b", "c", "a"))
    assert str(err) == "dependency cycle: a -> b -> c -> a"


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "apiVersion"),
        ({"apiVersion": "v1", "metadata": {"name": "x"}}, "kind"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "metadata.name"),
    ],
)
def test_object_without_identity_is_reported(obj: dict[str, Any], field: str) -> None:
    assert only_problem(bundle_object(resource("a", obj))) == MissingFieldError(resource="a", field=field)


def test_resource_without_object_is_reported() -> None:
    err = only_problem(bundle_object({"name": "a"}))
    assert isinstance(err, MissingFieldError)
    assert err.resource == "a"


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "trail-", "a" * 254])
def test_object_name_must_be_dns1123(name: str) -> None:
    err = only_problem(bundle_object(resource("a", config_map(name))))
    assert isinstance(err, InvalidNameError)
    assert (err.field, err.name) == ("metadata.name", name)


def test_resource_name_must_be_dns1123() -> None:
    err = only_problem(bundle_object(resource("Bad_Name", config_map("fine"))))
    assert isinstance(err, InvalidNameError)
    assert err.field == "resource name"


def test_object_in_another_namespace_is_refused() -> None:
    obj = config_map("x")
    obj["metadata"]["namespace"] = "elsewhere"
    err = only_refusal(bundle_object(resource("a", obj)))
    assert err == ForeignNamespaceError(resource="a", namespace="elsewhere", bundle_namespace=NAMESPACE)


def test_object_in_the_bundle_namespace_is_accepted() -> None:
    obj = config_map("x")
    obj["metadata"]["namespace"] = NAMESPACE
    assert bundle(resource("a", obj)).by_name["a"].object["metadata"]["namespace"] == NAMESPACE


def test_marker_that_names_no_declared_reference_is_reported() -> None:
    err = only_refusal(
        bundle_object(
            resource("a"),
            resource(
                "b",
                config_map("b", {"x": "!{nope}"}),
                references=[{"name": "r", "resource": "a", "path": "data"}],
            ),
        )
    )
    assert err == UndeclaredReferenceError(resource="b", reference="nope", declared=("r",))


def test_marker_without_references_is_reported() -> None:
    err = only_refusal(bundle_object(resource("b", config_map("b", {"x": "!{nope}"}), depends_on=[])))
    assert err == UndeclaredReferenceError(resource="b", reference="nope", declared=())


@pytest.mark.parametrize("text", ["!{}", "!{a b}", "!{a/b}"])
def test_malformed_marker_is_reported(text: str) -> None:
    """A whole string meant as one marker that is not `!{name}` (Go Smith took any `!{...}` for one)."""
    err = only_refusal(
        bundle_object(
            resource("a"),
            resource(
                "b", config_map("b", {"x": text}), references=[{"name": "a", "resource": "a", "path": "data"}]
            ),
        )
    )
    assert err == MalformedMarkerError(resource="b", text=text)


def test_unknown_modifier_is_reported() -> None:
    err = only_refusal(
        bundle_object(
            resource("a"),
            resource("b", references=[{"name": "r", "resource": "a", "path": "d", "modifier": "rot13"}]),
        )
    )
    assert err == UnknownModifierError(resource="b", reference="r", modifier="rot13", known=("bindsecret",))


def test_reference_with_unparseable_path_is_reported() -> None:
    err = only_refusal(
        bundle_object(
            resource("a"), resource("b", references=[{"name": "r", "resource": "a", "path": "x[y"}])
        )
    )
    assert isinstance(err, InvalidPathError)
    assert (err.resource, err.reference, err.path) == ("b", "r", "x[y")


def test_reference_declared_twice_is_reported() -> None:
    ref = {"name": "r", "resource": "a", "path": "data"}
    err = only_refusal(bundle_object(resource("a"), resource("b", references=[ref, ref])))
    assert err == DuplicateReferenceError(resource="b", reference="r")


def test_reference_without_a_resource_is_reported() -> None:
    err = only_refusal(
        bundle_object(resource("a"), resource("b", references=[{"name": "r", "path": "data"}]))
    )
    assert isinstance(err, InvalidFieldError)
    assert err.field == "references[0]"


@pytest.mark.parametrize(
    "ref", [{"resource": "a"}, {"name": "r", "resource": "a"}, {"resource": "a", "path": "x"}]
)
def test_reference_with_only_a_resource_is_a_dependency_as_in_smith(ref: dict[str, str]) -> None:
    b = bundle(resource("a"), resource("b", references=[ref]))
    assert b.by_name["b"].dependencies == {"a"}


def test_marker_of_a_reference_without_path_is_reported() -> None:
    obj = config_map("b", {"x": "!{r}"})
    err = only_refusal(
        bundle_object(resource("a"), resource("b", obj, references=[{"name": "r", "resource": "a"}]))
    )
    assert isinstance(err, UndeclaredReferenceError)


def test_output_marker_of_smiths_first_form_becomes_a_reference() -> None:
    obj = config_map("b", {"x": "{{a#data.k}}"})
    b = bundle(resource("a"), resource("b", obj, depends_on=["a"]))
    assert b.by_name["b"].references == (Reference(name="a#data.k", resource="a", path="data.k"),)


def test_output_marker_must_read_a_dependency() -> None:
    obj = config_map("b", {"x": "{{a#data.k}}"})
    err = only_refusal(bundle_object(resource("a"), resource("b", obj)))
    assert err == OutputNotDependencyError(resource="b", marker="{{a#data.k}}", target="a")


def test_output_marker_with_a_bad_path_is_reported() -> None:
    obj = config_map("b", {"x": "{{a#data[}}"})
    err = only_refusal(bundle_object(resource("a"), resource("b", obj, depends_on=["a"])))
    assert isinstance(err, InvalidPathError)


def test_a_controller_owner_reference_in_an_object_is_refused() -> None:
    obj = config_map("a")
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u", "controller": True}
    ]
    err = only_refusal(bundle_object(resource("a", obj)))
    assert isinstance(err, InvalidFieldError)
    assert err.field == "metadata.ownerReferences"
    assert "controller" in err.message


def test_every_problem_is_reported_at_once() -> None:
    found = problems(bundle_object(resource("a", depends_on=["ghost"]), resource("Bad", config_map("x"))))
    assert {type(p) for p in found} == {UnknownDependencyError, InvalidNameError}
    with pytest.raises(InvalidBundleError, match=r"ghost.*Bad|Bad.*ghost"):
        load_bundle(bundle_object(resource("a", depends_on=["ghost"]), resource("Bad", config_map("x"))))


@pytest.mark.parametrize("spec", [None, [], {"resources": {}}, {"resources": ["x"]}])
def test_malformed_spec_is_reported(spec: Any) -> None:
    obj = bundle_object()
    obj["spec"] = spec
    assert all(isinstance(p, InvalidFieldError) for p in problems(obj))


def test_empty_bundle_is_valid() -> None:
    assert bundle().resources == ()


def test_a_resource_with_both_an_object_and_a_plugin_says_exactly_one() -> None:
    both = {
        "name": "web",
        "spec": {"plugin": {"name": "app", "objectName": "web"}, "object": config_map("web")},
    }
    with pytest.raises(InvalidBundleError) as raised:
        load_bundle(bundle_object(both, resource("ok")))
    assert str(raised.value) == (
        "resource 'web': spec must have exactly one of an object (spec.object, or under spec) and spec.plugin"
    )


@pytest.mark.parametrize(
    "text",
    [
        "#!/bin/sh\necho !{HOME} ${PATH} {{.Values.x}}",  # a script and a template: literal
        "x !{unterminated",
        "!{a}!{",
        "!{",
        "see {{a#data.k}} in the docs",  # Smith's first form inside longer text: literal
        "an escaped \\!{r} is literal too",
    ],
)
def test_text_that_is_not_a_declared_marker_is_literal(text: str) -> None:
    """Go Smith substituted only a string that is exactly one marker: other text is never an error."""
    refs = [{"name": "r", "resource": "a", "path": "data.v"}]
    b = bundle(resource("a"), resource("b", config_map("b", {"x": text}), references=refs))
    assert b.refused == {}


def test_only_the_resource_with_a_problem_is_refused_the_rest_is_planned() -> None:
    bad = config_map("b", {"x": "!{nope}"})
    b = bundle(resource("a"), resource("b", bad), resource("c", depends_on=["b"]))
    assert set(b.refused) == {"b"}
    assert b.refusal("b") == "marker !{nope} names no declared reference (declared: none)"
    assert b.order == ("a", "b", "c")
