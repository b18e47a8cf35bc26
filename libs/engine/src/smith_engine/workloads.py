"""What Smith's Go controller does to some kinds before applying them, honoured as it is. Pure.

- **HPA coexistence** (`smith.atlassian.com/LastAppliedReplicas` on a Deployment): the annotation holds
  the replicas the Bundle asked for last time. While the Bundle still asks for that many, the live count
  stays (an HPA, or `kubectl scale`, set it); when the Bundle changes its `replicas`, it wins.
- **Config rollouts** (`smith.atlassian.com/envRefHash` on a Deployment's pod template): a hash of the
  ConfigMaps and Secrets the pods read (`env.valueFrom`, `envFrom`, volumes, projected volumes), so that
  a change of one rolls the pods.
- **Service Catalog `parametersFrom`** (`smith.atlassian.com/secretParametersChecksum` on a
  ServiceInstance): a hash of the Secret keys its parameters come from; when it changes,
  `spec.updateRequests` goes up by one, so that the broker gets the update.

Each is turned off per object by setting its annotation to `disabled`. The hashes are Smith's: sha256
over the sorted keys, each key and value followed by a NUL.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smith_engine.model import GROUP, GroupKind, JSONObject, resource_object
from smith_engine.servicecatalog import SERVICE_INSTANCE

LAST_APPLIED_REPLICAS = f"{GROUP}/LastAppliedReplicas"
ENV_REF_HASH = f"{GROUP}/envRefHash"
SECRET_PARAMETERS_CHECKSUM = f"{GROUP}/secretParametersChecksum"
DISABLED = "disabled"

DEPLOYMENTS = frozenset({GroupKind("apps", "Deployment"), GroupKind("extensions", "Deployment")})
CONFIG_KINDS = ("ConfigMap", "Secret")

Lookup = Callable[[str, str], JSONObject | None]
"""(kind, name) -> the ConfigMap or Secret of that name in the Bundle's namespace, if there is one."""


@dataclass(frozen=True, slots=True)
class ConfigRef:
    """A ConfigMap or Secret an object reads; `keys` empty means all of it."""

    kind: str
    name: str
    keys: frozenset[str] = frozenset()
    optional: bool = False


class MissingConfig(Exception):  # noqa: N818 - a verdict, not a failure of Smith's
    """A ConfigMap or Secret (or keys of one) the object reads is not there (yet)."""


def replicas_follow_the_bundle(desired: JSONObject) -> bool:
    """False when the live replica count of this Deployment is someone else's (HPA coexistence)."""
    annotations = desired.get("metadata", {}).get("annotations") or {}
    return GroupKind.of(desired) not in DEPLOYMENTS or annotations.get(LAST_APPLIED_REPLICAS) in (
        None,
        DISABLED,
    )


def prepare(desired: dict[str, Any], existing: JSONObject | None, lookup: Lookup) -> None:
    """Apply the rules above to `desired` in place. Raises MissingConfig."""
    kind = GroupKind.of(desired)
    if kind in DEPLOYMENTS:
        _keep_live_replicas(desired, existing)
        _stamp_env_ref_hash(desired, lookup)
    elif kind == SERVICE_INSTANCE:
        _bump_update_requests(desired, existing, lookup)


def config_refs(obj: JSONObject) -> list[ConfigRef]:
    """The ConfigMaps and Secrets an object's rule reads: a Deployment's pods' (containers and init
    containers: env and envFrom; volumes), a ServiceInstance's `parametersFrom` Secrets. A field of the
    wrong type (a Bundle may hold anything there) reads as absent: the API server tells what is wrong."""
    kind = GroupKind.of(obj)
    if kind == SERVICE_INSTANCE:
        return [
            ConfigRef("Secret", str(ref["name"]), frozenset({str(ref.get("key", ""))}))
            for p in _maps(_map(obj, "spec").get("parametersFrom"))
            if isinstance(ref := p.get("secretKeyRef"), Mapping) and ref.get("name")
        ]
    if kind not in DEPLOYMENTS:
        return []
    return list(_pod_refs(_map(obj, "spec", "template", "spec")))


def _map(value: Any, *path: str) -> Mapping[str, Any]:
    """The map at `path` in `value`; an empty one where any step is missing or not a map."""
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _maps(value: Any) -> list[Mapping[str, Any]]:
    """The maps of a list (nothing, where it is not a list)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def config_sources(bundle: JSONObject) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the objects of a Bundle's spec read (for the controller,
    which gives the planner those that are not the Bundle's own, and watches them)."""
    found = set()
    for raw in _maps(_map(bundle, "spec").get("resources")):
        if isinstance(obj := resource_object(raw.get("spec")), Mapping):
            found |= {(r.kind, r.name) for r in config_refs(obj) if "${" not in r.name}  # not made yet
    return found


def outside_sources(bundle: JSONObject) -> set[tuple[str, str]]:
    """`config_sources` less the ConfigMaps and Secrets the Bundle's own resources describe: what it
    reads of objects it does not hold (read and watched for it by name, at most `MAX_OUTSIDE`)."""
    return config_sources(bundle) - described_config(bundle)


def external_refs(bundle: JSONObject) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of every object a Bundle's resources name with `externalRef`: objects it
    reads and does not hold, in its namespace (read and watched for it by name, as config sources are)."""
    found = []
    for raw in _maps(_map(bundle, "spec").get("resources")):
        ref = _map(raw, "externalRef")
        api_version, kind, name = ref.get("apiVersion"), ref.get("kind"), _map(ref, "metadata").get("name")
        if all(isinstance(v, str) and v for v in (api_version, kind, name)):
            found.append((str(api_version), str(kind), str(name)))
    return sorted(set(found))


def described_config(bundle: JSONObject) -> set[tuple[str, str]]:
    """(kind, name) of the ConfigMaps and Secrets (any v1 object) the Bundle's own resources describe."""
    own = set()
    for raw in _maps(_map(bundle, "spec").get("resources")):
        if isinstance(obj := resource_object(raw.get("spec")), Mapping) and obj.get("apiVersion") == "v1":
            own.add((str(obj.get("kind")), str(_map(obj, "metadata").get("name"))))
    return own


def _pod_refs(pod: Mapping[str, Any]) -> Iterator[ConfigRef]:
    for container in [*_maps(pod.get("containers")), *_maps(pod.get("initContainers"))]:
        for source in _maps(container.get("envFrom")):
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if isinstance(ref := source.get(field), Mapping) and ref.get("name"):
                    yield ConfigRef(kind, str(ref["name"]), optional=bool(ref.get("optional")))
        for env in _maps(container.get("env")):
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if isinstance(ref := _map(env, "valueFrom").get(field), Mapping) and ref.get("name"):
                    keys = frozenset({str(ref.get("key", ""))})
                    yield ConfigRef(kind, str(ref["name"]), keys, bool(ref.get("optional")))
    for volume in _maps(pod.get("volumes")):
        for source in [volume, *_maps(_map(volume, "projected").get("sources"))]:
            if isinstance(ref := source.get("configMap"), Mapping) and ref.get("name"):
                yield ConfigRef("ConfigMap", str(ref["name"]), _item_keys(ref), bool(ref.get("optional")))
            if isinstance(ref := source.get("secret"), Mapping) and (
                ref.get("secretName") or ref.get("name")
            ):
                name = str(ref.get("secretName") or ref.get("name"))
                yield ConfigRef("Secret", name, _item_keys(ref), bool(ref.get("optional")))


def _item_keys(ref: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(i["key"]) for i in _maps(ref.get("items")) if "key" in i)


def config_hash(refs: list[ConfigRef], lookup: Lookup) -> str:
    """Smith's hash of what `refs` read. Raises MissingConfig for a required one that is not there."""
    h = hashlib.sha256()
    for ref in refs:
        found = lookup(ref.kind, ref.name)
        if found is None:
            if ref.optional:
                continue
            raise MissingConfig(f"{ref.kind} {ref.name!r} not found")
        values = _values(found)
        if missing := ref.keys - values.keys():
            if ref.optional:
                continue
            raise MissingConfig(f"{ref.kind} {ref.name!r} has no key {', '.join(sorted(missing))}")
        for key in sorted(ref.keys or values.keys()):
            h.update(key.encode() + b"\0" + values[key] + b"\0")
    return h.hexdigest()


def _values(obj: JSONObject) -> dict[str, bytes]:
    """A ConfigMap's or Secret's values as bytes (Secret and binaryData values are base64 in JSON)."""
    found = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    encoded = obj.get("kind") == "Secret"
    for key, value in (obj.get("data") or {}).items():
        found[key] = base64.b64decode(value) if encoded else str(value).encode()
    return found


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata.get("annotations"), dict):
        metadata["annotations"] = {}
    annotations: dict[str, Any] = metadata["annotations"]
    return annotations


def _keep_live_replicas(desired: dict[str, Any], existing: JSONObject | None) -> None:
    annotations = _annotations(desired)
    if annotations.get(LAST_APPLIED_REPLICAS) == DISABLED:
        return
    spec = desired.setdefault("spec", {})
    asked = int(spec.setdefault("replicas", 1))
    annotations[LAST_APPLIED_REPLICAS] = str(asked)
    if existing is None:
        return
    last = str((existing.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED_REPLICAS, "")).strip()
    live = (existing.get("spec") or {}).get("replicas")
    if last == str(asked) and isinstance(live, int):
        spec["replicas"] = live  # the Bundle did not change its mind: the live count is someone else's


def _stamp_env_ref_hash(desired: dict[str, Any], lookup: Lookup) -> None:
    template = desired.setdefault("spec", {}).setdefault("template", {})
    if (template.get("metadata") or {}).get("annotations", {}).get(ENV_REF_HASH) == DISABLED:
        return
    _annotations(template)[ENV_REF_HASH] = config_hash(config_refs(desired), lookup)


def _bump_update_requests(desired: dict[str, Any], existing: JSONObject | None, lookup: Lookup) -> None:
    annotations = _annotations(desired)
    if annotations.get(SECRET_PARAMETERS_CHECKSUM) == DISABLED:
        return
    checksum = annotations[SECRET_PARAMETERS_CHECKSUM] = config_hash(config_refs(desired), lookup)
    if existing is None:
        return
    spec = desired.setdefault("spec", {})
    # The count only goes up: from the live one, or from the Bundle's own when a user bumps it there.
    count = max(
        int((existing.get("spec") or {}).get("updateRequests") or 0), int(spec.get("updateRequests") or 0)
    )
    before = (existing.get("metadata", {}).get("annotations") or {}).get(SECRET_PARAMETERS_CHECKSUM)
    if before != checksum:
        count += 1
    if count:
        spec["updateRequests"] = count
