"""The sample `app` plugin: a short spec becomes a Deployment; a ServiceBinding dependency's outputs
become environment variables; what it cannot do is a PluginError."""

from __future__ import annotations

import pytest
from smith_executor.plugin import Dependency, PluginError, Request
from smith_plugin_app import PLUGIN, SCHEMA, make

from smith_engine.plugins import schema_problems


def request(spec: dict[str, object], **dependencies: Dependency) -> Request:
    return Request(namespace="team-a", resource="web", spec=spec, actual=None, dependencies=dependencies)


def test_a_short_spec_becomes_a_deployment_with_probes_on_its_port() -> None:
    made = make(request({"image": "web:1", "port": 8080, "replicas": 3, "env": {"MODE": "fast"}}))
    assert (made["apiVersion"], made["kind"]) == (PLUGIN.api_version, PLUGIN.kind)
    assert made["spec"]["replicas"] == 3
    (container,) = made["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    assert container["readinessProbe"] == {"tcpSocket": {"port": "http"}}
    assert made["spec"]["selector"]["matchLabels"] == made["spec"]["template"]["metadata"]["labels"]


def test_a_bindings_outputs_become_environment_variables() -> None:
    binding = Dependency("db-binding", {}, {}, outputs={"password": "pw", "host": "db"})
    made = make(request({"image": "web:1", "envFrom": ["db-binding"]}, **{"db-binding": binding}))
    env = made["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "DB_BINDING_HOST", "value": "db"}, {"name": "DB_BINDING_PASSWORD", "value": "pw"}]


def test_envfrom_naming_no_dependency_is_a_terminal_plugin_error() -> None:
    with pytest.raises(PluginError) as raised:
        make(request({"image": "web:1", "envFrom": ["nothere"]}))
    assert not raised.value.retriable


def test_the_schema_says_what_a_spec_may_hold() -> None:
    assert schema_problems(SCHEMA, {"image": "web:1", "port": 8080}) == []
    assert schema_problems(SCHEMA, {"port": 0}) == [
        "spec.plugin.spec: 'image' is a required property",
        "spec.plugin.spec.port: the value is less than the minimum of 1",
    ]
