"""Plugins, the pure part: a resource's `spec.plugin` (exactly one of it and the object), a registered
plugin's description, and its spec checked against the plugin's JSON Schema with precise paths."""

from __future__ import annotations

from typing import Any

import pytest

from smith_engine.model import GroupKind
from smith_engine.plugins import (
    PluginInfo,
    PluginRef,
    plugin_object,
    plugin_problems,
    plugin_ref,
    schema_problems,
)

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
        "spec.plugin.spec.env.N: 1 is not of type 'string'",
        "spec.plugin.spec.port: 'http' is not of type 'integer'",
    ]
    assert schema_problems({}, {"anything": True}) == [], "no schema: any object"
    assert "schema is invalid" in schema_problems({"type": "no-such-type"}, {})[0]
