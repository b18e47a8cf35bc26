"""The Bundle model: what a user wrote, in one typed shape whichever of Smith's two resource shapes
they used. Building the model is `validation.load_bundle`'s job; this module only names things."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from smith_engine.errors import BundleError
from smith_engine.graph import creation_order, creation_waves

GROUP = "smith.atlassian.com"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
BUNDLE_KIND = "Bundle"
BUNDLE_NAME_LABEL = f"{GROUP}/BundleName"

JSON = Any
"""A value decoded from JSON: dict, list, str, int, float, bool or None."""
JSONObject = Mapping[str, Any]


class Modifier(StrEnum):
    """How a reference's value is transformed after it is read."""

    BIND_SECRET = "bindsecret"


@dataclass(frozen=True, slots=True, order=True)
class GroupKind:
    group: str
    kind: str

    @classmethod
    def of(cls, obj: JSONObject) -> GroupKind:
        return cls(group=group_of(str(obj.get("apiVersion", ""))), kind=str(obj.get("kind", "")))

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    """An object's identity inside one namespace: its group, kind and name (not its version)."""

    group_kind: GroupKind
    name: str

    @classmethod
    def of(cls, obj: JSONObject) -> ObjectKey:
        return cls(group_kind=GroupKind.of(obj), name=str(obj.get("metadata", {}).get("name", "")))

    def __str__(self) -> str:
        return f"{self.group_kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""

    @classmethod
    def of(cls, obj: JSONObject) -> ObjectRef:
        metadata = obj.get("metadata") or {}
        return cls(
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            uid=str(metadata.get("uid") or ""),
        )

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(GroupKind(group_of(self.api_version), self.kind), self.name)


@dataclass(frozen=True, slots=True)
class Reference:
    """`!{name}` in the resource's object takes the value at `path` of the dependency `resource`.
    Without a name or a path it only says "depends on" (as in Smith)."""

    name: str
    resource: str
    path: str
    modifier: Modifier | None = None
    example: JSON = None

    @property
    def carries_value(self) -> bool:
        return bool(self.name and self.path)


@dataclass(frozen=True, slots=True)
class PluginRef:
    """A resource's `spec.plugin`: which plugin, the name of the object it makes, and its spec."""

    name: str
    object_name: str
    spec: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resource:
    """`object` is the object as the Bundle says it; for a plugin resource (`plugin` set), the object's
    identity only (apiVersion and kind from the plugin's registration, name from `objectName`)."""

    name: str
    object: JSONObject
    depends_on: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    plugin: PluginRef | None = None
    # CEL expressions (smith_engine.expressions): those of the object (or plugin spec), and the resources
    # they and `include_when` read; `ready_when` reads the object itself (`self`).
    expressions: tuple[str, ...] = ()
    ready_when: tuple[str, ...] = ()
    include_when: tuple[str, ...] = ()
    reads: frozenset[str] = frozenset()
    # `externalRef`: an object Smith reads and never writes (`object` is its identity); READY when it
    # exists (and its `ready_when` holds), Blocked until then.
    external: bool = False
    # `forEach`: an expression giving a list; the resource stands for one object per element, `each`
    # in its expressions (its name among them). Planned by smith_engine.planner as items of their own.
    for_each: str = ""
    # one object of a forEach resource (its name): its object made already, applied as it is
    collection: str = ""
    # Explicit `dependsOn` plus every resource a reference or an expression reads from (a plan asks for
    # them per resource per wave, so they are worked out once).
    dependencies: frozenset[str] = field(init=False, repr=False, compare=False)
    key: ObjectKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dependencies = frozenset(self.depends_on) | {r.resource for r in self.references} | self.reads
        object.__setattr__(self, "dependencies", dependencies)
        object.__setattr__(self, "key", ObjectKey.of(self.object))


@dataclass(frozen=True, slots=True)
class Bundle:
    namespace: str
    name: str
    uid: str = ""
    generation: int = 0
    resources: tuple[Resource, ...] = ()
    description: str = ""
    # Resources whose own content is wrong (validation): their problems, by name. Each is a terminal
    # error of its own; the graph is whole, so the rest of the Bundle goes on.
    refused: Mapping[str, tuple[BundleError, ...]] = field(default_factory=dict)
    by_name: Mapping[str, Resource] = field(init=False, repr=False, compare=False)
    _order: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {r.name: r for r in self.resources})

    @property
    def dependencies(self) -> dict[str, frozenset[str]]:
        return {r.name: r.dependencies for r in self.resources}

    @property
    def order(self) -> tuple[str, ...]:
        """The resources' names in creation order (graph.creation_order), worked out on first use: a pass
        plans the same Bundle once per wave, and more when it plans ahead. Raises as creation_waves."""
        if self._order is None:
            object.__setattr__(self, "_order", creation_order(creation_waves(self.dependencies)))
        assert self._order is not None
        return self._order

    def refusal(self, resource: str) -> str | None:
        """Why `resource` is refused (its own content is wrong), or None."""
        if not (problems := self.refused.get(resource)):
            return None
        prefix = f"resource {resource!r}: "
        return "; ".join(p.message.removeprefix(prefix) for p in problems)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def group_of(api_version: str) -> str:
    """`apps/v1` -> `apps`; `v1` -> `` (the core group)."""
    return api_version.rpartition("/")[0]


def resource_object(spec: Any) -> Any:
    """The object of a resource's `spec`, in either of Smith's shapes: `spec.object`, or `spec` itself."""
    return spec.get("object") if isinstance(spec, Mapping) and "object" in spec else spec


_DNS1123_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


def dns1123_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 subdomain (the rule for most object names), or None."""
    if len(name) > 253:
        return "it is longer than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(name):
        return (
            "it must consist of lower case alphanumeric characters, '-' or '.', "
            "and start and end with an alphanumeric character"
        )
    return None
