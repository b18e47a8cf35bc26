"""The `app` plugin: what a team says of a web app — image, port, replicas, environment — becomes a
Deployment with Smith's usual labels, probes on the port and sane requests. Values from dependencies
arrive through references (`!{db-host}`) in the spec, and a dependency that is a ServiceBinding lends
its credentials as environment variables (`envFrom: [binding-name]`)."""

from __future__ import annotations

from typing import Any

from smith_executor.plugin import Plugin, PluginError, Request

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {
        "image": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "replicas": {"type": "integer", "minimum": 0},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "envFrom": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Dependencies (ServiceBindings) whose credentials become environment variables.",
        },
    },
}


def make(request: Request) -> dict[str, Any]:
    spec = request.spec
    name = request.resource
    env = [{"name": k, "value": v} for k, v in sorted((spec.get("env") or {}).items())]
    for dependency in spec.get("envFrom") or []:
        found = request.dependencies.get(dependency)
        if found is None:
            raise PluginError(f"envFrom names {dependency!r}, which is not a dependency of {name!r}")
        prefix = dependency.upper().replace("-", "_")
        env += [{"name": f"{prefix}_{k.upper()}", "value": v} for k, v in sorted(found.outputs.items())]
    container: dict[str, Any] = {
        "name": name,
        "image": spec["image"],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }
    if port := spec.get("port"):
        container["ports"] = [{"name": "http", "containerPort": port}]
        container["readinessProbe"] = {"tcpSocket": {"port": "http"}}
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": labels},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


PLUGIN = Plugin(name="app", api_version="apps/v1", kind="Deployment", schema=SCHEMA, make=make)
