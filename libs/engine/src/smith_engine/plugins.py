"""Plugins, as Smith has them: a resource says `spec: {plugin: {name, objectName, spec}}` instead of an
object, and the named plugin turns that spec (plus what the resource's dependencies produced) into the
object to apply. Here a plugin is a service (`proto/smith/v1/plugin.proto`) that registers with a
`Plugin` resource, like executors do. This module is the pure part: reading a resource's plugin
reference, a registered plugin's description, and checking a spec against the plugin's JSON Schema."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from smith_engine.model import JSON, GroupKind, JSONObject, PluginRef, group_of

PLUGIN_KIND = "Plugin"


def plugin_problems(raw_spec: Any) -> list[tuple[str, str]]:
    """What is wrong with a resource's `spec` as Smith takes it, as (field, reason): exactly one of the
    object (`spec.object`, or the object directly under `spec`) and `spec.plugin: {name, objectName,
    spec}`."""
    if not isinstance(raw_spec, Mapping) or "plugin" not in raw_spec:
        return []
    plugin = raw_spec["plugin"]
    if raw_spec.keys() - {"plugin"}:
        return [("spec", "must have exactly one of an object (spec.object, or under spec) and spec.plugin")]
    if not isinstance(plugin, Mapping):
        return [("spec.plugin", "must be an object {name, objectName, spec}")]
    problems = [
        (f"spec.plugin.{key}", "is required (a non-empty string)")
        for key in ("name", "objectName")
        if not isinstance(plugin.get(key), str) or not plugin.get(key)
    ]
    if "spec" in plugin and not isinstance(plugin["spec"], Mapping):
        problems.append(("spec.plugin.spec", "must be an object"))
    return problems


def plugin_ref(raw_spec: Any) -> PluginRef | None:
    """The resource's plugin reference, when its spec is a valid one (see `plugin_problems`)."""
    if not isinstance(raw_spec, Mapping) or ("plugin" in raw_spec and plugin_problems(raw_spec)):
        return None
    plugin = raw_spec.get("plugin")
    if not isinstance(plugin, Mapping):
        return None
    return PluginRef(str(plugin["name"]), str(plugin["objectName"]), dict(plugin.get("spec") or {}))


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A registered plugin, from its `Plugin` resource."""

    name: str
    endpoint: str
    api_version: str
    kind: str
    schema: Mapping[str, JSON] = field(default_factory=dict)
    heartbeat: str = ""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> PluginInfo:
        spec = obj.get("spec") or {}
        return cls(
            name=str(spec.get("name") or obj["metadata"]["name"]),
            endpoint=str(spec.get("endpoint", "")),
            api_version=str(spec.get("apiVersion", "")),
            kind=str(spec.get("kind", "")),
            schema=dict(spec.get("schema") or {}),
            heartbeat=str((obj.get("status") or {}).get("heartbeatTime", "")),
        )

    @property
    def produces(self) -> GroupKind:
        return GroupKind(group_of(self.api_version), self.kind)


def plugin_object(
    *, name: str, namespace: str, endpoint: str, api_version: str, kind: str, schema: Mapping[str, JSON]
) -> dict[str, Any]:
    """The `Plugin` resource a plugin service publishes about itself."""
    return {
        "apiVersion": "smith.atlassian.com/v1",
        "kind": PLUGIN_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "name": name,
            "endpoint": endpoint,
            "apiVersion": api_version,
            "kind": kind,
            "schema": schema,
        },
    }


def schema_problems(
    schema: Mapping[str, JSON], spec: Mapping[str, JSON], *, where: str = "spec.plugin.spec"
) -> list[str]:
    """Where `spec` breaks a JSON Schema, one line each, with the path from `where`:
    `spec.plugin.spec.port: 'http' is not of type 'integer'`. The schema's own `$schema` says its draft
    (Go Smith's plugins and Service Catalog brokers write draft-04, whose `exclusiveMinimum: true` means
    what it meant then); without one, draft 2020-12."""
    if not schema:
        return []
    try:
        draft = validator_for(schema, default=Draft202012Validator)
        draft.check_schema(dict(schema))
        validator = draft(schema, registry=NOTHING_FETCHED)
        errors = sorted(validator.iter_errors(spec), key=lambda e: [str(p) for p in e.absolute_path])
    except SchemaError as e:
        return [f"the schema itself is invalid: {e.message}"]
    except Unresolvable as e:
        return [f"the schema refers to {e.ref!r}: Smith resolves no reference outside the schema itself"]
    found = []
    for error in errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        found.append(f"{where}{path}: {_without_values(error)}")
    return found


# What jsonschema says of these names properties, never values; of the others, the value is taken out.
_NAMES_ONLY: Final = frozenset(
    {"required", "additionalProperties", "dependentRequired", "unevaluatedProperties"}
)


def _without_values(error: ValidationError) -> str:
    """The error's message without the value that broke the schema (it may have come from a Secret: a
    reference, bindsecret); what names only properties is kept as it is."""
    if error.validator in _NAMES_ONLY and isinstance(error.instance, dict):
        return error.message
    shown = repr(error.instance)
    if error.message.startswith(shown):
        return "the value" + error.message[len(shown) :]
    return f"the value does not satisfy the schema's {error.validator!r}"


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class: its fields are keywords


# `$ref`s are resolved inside the schema only: never fetched from a URL or read from a file.
NOTHING_FETCHED: Final = Registry(retrieve=_refuse)  # type: ignore[call-arg]


UNKNOWN_GROUP = "plugins.smith.atlassian.com"  # the identity of a plugin's object before the plugin is known


def identity(ref: PluginRef, plugin: PluginInfo | None) -> dict[str, Any]:
    """The object a plugin resource stands for, as far as it is known before the plugin ran: its kind
    from the plugin's registration (a placeholder kind named after the plugin while none is registered),
    its name from `objectName`."""
    api_version, kind = (plugin.api_version, plugin.kind) if plugin else (f"{UNKNOWN_GROUP}/v1", ref.name)
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": ref.object_name}}


@dataclass(frozen=True, slots=True)
class DependencyInput:
    """What a plugin gets of one dependency of its resource (as in Smith)."""

    resource: str
    spec: JSONObject  # the object, or the plugin spec, as the Bundle says it
    actual: JSONObject  # the object as it is in the cluster
    outputs: Mapping[str, str] = field(default_factory=dict)  # a ServiceBinding's Secret, decoded
    auxiliary: JSONObject | None = None  # a ServiceBinding's ServiceInstance


@dataclass(frozen=True, slots=True)
class PluginCall:
    """Ask `plugin` to make the object of `resource` from `spec` (references substituted)."""

    resource: str
    plugin: str
    spec: JSONObject
    actual: JSONObject | None = None
    dependencies: tuple[DependencyInput, ...] = ()


@dataclass(frozen=True, slots=True)
class PluginResult:
    """What a plugin made: the object, or why not."""

    object: JSONObject | None = None
    error: str = ""
    retriable: bool = False


@dataclass(frozen=True, slots=True)
class PluginStatus:
    """Smith's `status.pluginStatuses` entry."""

    name: str
    api_version: str = ""
    kind: str = ""
    status: str = "NoSuchPlugin"

    def as_status(self) -> dict[str, str]:
        entry = {"name": self.name, "status": self.status}
        if self.kind:
            entry |= {"group": group_of(self.api_version), "version": self.api_version.rpartition("/")[2]}
            entry["kind"] = self.kind
        return entry


def plugin_statuses(used: list[str], plugins: Mapping[str, PluginInfo]) -> tuple[PluginStatus, ...]:
    return tuple(
        PluginStatus(n, p.api_version, p.kind, "Ok") if (p := plugins.get(n)) else PluginStatus(n)
        for n in sorted(set(used))
    )


def decoded(secret: JSONObject | None) -> dict[str, str]:
    """A Secret's data as text: what a ServiceBinding's outputs are to a plugin."""
    data = (secret or {}).get("data") or {}
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
