"""Plugins, the pure part: a resource's `spec.plugin` (exactly one of it and the object), a registered
plugin's description, and its spec checked against the plugin's JSON Schema with precise paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smith_engine.model import Bundle, GroupKind, ObjectKey, PluginRef
from smith_engine.planner import Apply, Reason, VerdictState, plan_bundle
from smith_engine.plugins import (
    PluginInfo,
    PluginResult,
    plugin_object,
    plugin_problems,
    plugin_ref,
    schema_problems,
)
from smith_engine.validation import load_bundle
from support import bundle_object, config_map, observed, resource

APP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "replicas": {"type": "integer", "minimum": 0},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def test_a_plugin_resource_names_the_plugin_the_object_and_the_spec() -> None:
    raw = {"plugin": {"name": "app", "objectName": "web", "spec": {"image": "web:1", "port": 8080}}}
    assert plugin_problems(raw) == []
    assert plugin_ref(raw) == PluginRef("app", "web", {"image": "web:1", "port": 8080})
    assert plugin_ref({"apiVersion": "v1", "kind": "ConfigMap"}) is None, "an object is not a plugin"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"plugin": {"name": "app", "objectName": "web"}, "object": {"kind": "ConfigMap"}},
            "spec exactly one",
        ),
        ({"plugin": {"name": "app", "objectName": "web"}, "kind": "ConfigMap"}, "spec exactly one"),
        ({"plugin": "app"}, "spec.plugin must be an object"),
        ({"plugin": {"objectName": "web"}}, "spec.plugin.name is required"),
        ({"plugin": {"name": "app"}}, "spec.plugin.objectName is required"),
        ({"plugin": {"name": "app", "objectName": "web", "spec": []}}, "spec.plugin.spec must be an object"),
    ],
)
def test_what_is_not_a_plugin_reference_says_which_part_is_wrong(raw: dict[str, Any], problem: str) -> None:
    ((field, reason),) = plugin_problems(raw)
    assert problem in f"{field} {reason}".replace("must have exactly", "exactly")
    assert plugin_ref(raw) is None


def test_a_registered_plugin_says_what_it_produces_and_its_schema() -> None:
    body = plugin_object(
        name="app", namespace="smith-system", endpoint="app:7420", api_version="apps/v1", kind="Deployment",
        schema=APP_SCHEMA,
    )  # fmt: skip
    body["status"] = {"heartbeatTime": "2026-11-26T00:00:00Z"}
    info = PluginInfo.of(body)
    assert (info.name, info.endpoint, info.produces) == ("app", "app:7420", GroupKind("apps", "Deployment"))
    assert info.schema == APP_SCHEMA
    assert info.heartbeat == "2026-11-26T00:00:00Z"


def test_a_spec_that_breaks_the_schema_is_told_with_each_path() -> None:
    assert schema_problems(APP_SCHEMA, {"image": "web:1", "port": 8080, "env": {"MODE": "fast"}}) == []
    found = schema_problems(APP_SCHEMA, {"port": "http", "env": {"N": 1}, "replica": 2})
    assert found == [
        "spec.plugin.spec: 'image' is a required property",
        "spec.plugin.spec: Additional properties are not allowed ('replica' was unexpected)",
        "spec.plugin.spec.env.N: the value is not of type 'string'",
        "spec.plugin.spec.port: the value is not of type 'integer'",  # not told: it may be a Secret's
    ]
    assert schema_problems({}, {"anything": True}) == [], "no schema: any object"
    assert "schema itself is invalid" in schema_problems({"type": "no-such-type"}, {})[0]


@pytest.mark.parametrize("ref", ["http://127.0.0.1:9/schema.json", "file", "other.json"])
def test_a_schema_refers_to_nothing_outside_itself(ref: str, tmp_path: Path) -> None:
    """A `$ref` to a URL or a file is an error on the Bundle, never fetched or read (the file here is a
    schema the spec would break); one inside the schema (`#/$defs/...`) works."""
    if ref == "file":
        (tmp_path / "schema.json").write_text('{"type": "string"}')
        ref = (tmp_path / "schema.json").as_uri()
    (problem,) = schema_problems({"$ref": ref}, {"port": 80})
    assert f"refers to {ref!r}" in problem
    inside = {"$defs": {"port": {"type": "integer"}}, "properties": {"port": {"$ref": "#/$defs/port"}}}
    assert schema_problems(inside, {"port": 80}) == []
    assert schema_problems(inside, {"port": "http"}) == [
        "spec.plugin.spec.port: the value is not of type 'integer'"
    ]


def test_a_draft_04_schema_means_what_it_meant_then() -> None:
    """Go Smith's plugins and Service Catalog brokers write draft-04 (gojsonschema read it): its boolean
    `exclusiveMinimum` is refused by draft 2020-12, where it must be a number."""
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"replicas": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}},
        "required": ["replicas"],
    }
    assert schema_problems(schema, {"replicas": 2}) == []
    (problem,) = schema_problems(schema, {"replicas": 0})
    assert problem.startswith("spec.plugin.spec.replicas: ")
    assert "less than or equal to the minimum" in problem
    assert "schema itself is invalid" in schema_problems({**schema, "$schema": ""}, {"replicas": 2})[0]


APP = PluginInfo(name="app", endpoint="app:7420", api_version="apps/v1", kind="Deployment", schema=APP_SCHEMA)


def plugin_resource(spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "web", "spec": {"plugin": {"name": "app", "objectName": "web", "spec": spec}}, **fields}


def test_a_plugin_resource_is_the_object_its_plugin_makes() -> None:
    b = load_bundle(bundle_object(plugin_resource({"image": "web:1"})), plugins={"app": APP})
    (web,) = b.resources
    assert web.plugin == PluginRef("app", "web", {"image": "web:1"})
    assert web.key == ObjectKey(GroupKind("apps", "Deployment"), "web")
    unknown = load_bundle(bundle_object(plugin_resource({"image": "web:1"})))
    assert unknown.resources[0].object["kind"] == "app", "while no plugin 'app' is registered"


def test_a_spec_that_can_never_fit_is_refused_early_with_the_references_examples() -> None:
    refs = [{"name": "port", "resource": "db", "path": "data.port", "example": "5432"}]
    spec = {"image": "web:1", "port": "!{port}"}
    raw = bundle_object(resource("db"), plugin_resource(spec, references=refs))
    refused = load_bundle(raw, plugins={"app": APP})  # an error of that resource alone, as Go Smith
    assert refused.refusal("web") == (
        "the spec does not fit plugin 'app''s schema: "
        "spec.plugin.spec.port: the value is not of type 'integer'"
    )
    assert refused.refusal("db") is None
    fits = [{**refs[0], "example": 5432}]
    assert not load_bundle(
        bundle_object(resource("db"), plugin_resource(spec, references=fits)), plugins={"app": APP}
    ).refused
    unknown = [{"name": "port", "resource": "db", "path": "data.port"}]  # no example: checked later
    assert not load_bundle(
        bundle_object(resource("db"), plugin_resource(spec, references=unknown)), plugins={"app": APP}
    ).refused


def test_a_plugin_spec_marker_must_be_declared() -> None:
    refused = load_bundle(
        bundle_object(plugin_resource({"image": "web:1", "port": "!{port}"})), plugins={"app": APP}
    )
    assert refused.refusal("web") == "marker !{port} names no declared reference (declared: none)"


def deployment_made(name: str = "whatever", image: str = "web:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def app_bundle() -> Bundle:
    refs = [{"name": "port", "resource": "db", "path": "data.port", "example": 5432}]
    web = plugin_resource({"image": "web:1", "port": "!{port}"}, references=refs)
    return load_bundle(
        bundle_object(resource("db", config_map("db", {"port": 5432})), web), plugins={"app": APP}
    )


def test_the_plan_asks_the_plugin_once_the_dependencies_are_ready_and_applies_what_it_made() -> None:
    b = app_bundle()
    assert plan_bundle(b, [], plugins={"app": APP}).plugin_calls == (), "db is not there yet"
    db = observed(b, config_map("db", {"port": 5432}))
    first = plan_bundle(b, [db], plugins={"app": APP})
    (call,) = first.plugin_calls
    assert (call.resource, call.plugin, call.spec) == ("web", "app", {"image": "web:1", "port": 5432})
    assert call.actual is None
    assert [(d.resource, d.actual["data"]) for d in call.dependencies] == [("db", {"port": 5432})]
    assert first.verdict("web").state is VerdictState.IN_PROGRESS
    assert [s.as_status() for s in first.plugin_statuses] == [
        {"name": "app", "status": "Ok", "group": "apps", "version": "v1", "kind": "Deployment"}
    ]
    second = plan_bundle(b, [db], plugins={"app": APP}, processed={"web": PluginResult(deployment_made())})
    (apply,) = [a for a in second.actions if isinstance(a, Apply)]
    assert apply.object["metadata"]["name"] == "web", "Smith names it objectName"
    assert apply.object["metadata"]["namespace"] == b.namespace
    assert second.plugin_calls == ()
    there = observed(b, {**deployment_made("web"), "metadata": {"name": "web"}})
    (again,) = plan_bundle(b, [db, there], plugins={"app": APP}).plugin_calls
    assert again.actual == there.object, "the plugin gets the object as it is"


@pytest.mark.parametrize(
    ("result", "reason", "message"),
    [
        (PluginResult(error="down", retriable=True), Reason.RETRIABLE_ERROR, "plugin 'app': down"),
        (PluginResult(error="no such image"), Reason.TERMINAL_ERROR, "plugin 'app': no such image"),
        (
            PluginResult(config_map("x")),
            Reason.TERMINAL_ERROR,
            "plugin 'app' made a ConfigMap, not the Deployment.apps it declares",
        ),
    ],
)
def test_what_a_plugin_could_not_make_is_an_error_on_its_resource(
    result: PluginResult, reason: Reason, message: str
) -> None:
    b = app_bundle()
    db = observed(b, config_map("db", {"port": 5432}))
    verdict = plan_bundle(b, [db], plugins={"app": APP}, processed={"web": result}).verdict("web")
    assert (verdict.state, verdict.reason, verdict.message) == (VerdictState.ERROR, reason, message)


def test_a_plugin_nobody_serves_is_a_retriable_error_and_no_such_plugin() -> None:
    b = load_bundle(bundle_object(plugin_resource({"image": "web:1"})))
    plan = plan_bundle(b, [])
    assert plan.verdict("web").reason is Reason.RETRIABLE_ERROR
    assert plan.verdict("web").message == "no plugin 'app' is registered (registered: none)"
    assert [s.as_status() for s in plan.plugin_statuses] == [{"name": "app", "status": "NoSuchPlugin"}]


def test_values_that_break_the_schema_are_refused_before_the_plugin_is_called() -> None:
    b = app_bundle()
    db = observed(b, config_map("db", {"port": "not-a-port"}))
    plan = plan_bundle(b, [db], plugins={"app": APP})
    assert plan.plugin_calls == ()
    assert plan.verdict("web").message == (
        "the spec does not fit plugin 'app''s schema: "
        "spec.plugin.spec.port: the value is not of type 'integer'"
    )
