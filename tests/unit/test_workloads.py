"""Smith's rules for some kinds, honoured as written: HPA coexistence (LastAppliedReplicas), config
rollouts (envRefHash), Service Catalog parametersFrom (secretParametersChecksum, updateRequests)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from smith_engine.changes import desired_hash
from smith_engine.model import JSONObject
from smith_engine.workloads import (
    ENV_REF_HASH,
    LAST_APPLIED_REPLICAS,
    SECRET_PARAMETERS_CHECKSUM,
    MissingConfig,
    config_sources,
    prepare,
)
from support import config_map

TOKEN = base64.b64encode(b"t0k3n").decode()
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "creds"},
    "data": {"token": TOKEN, "x": "eA=="},
}


def deployment(replicas: int | None = 2, **annotations: str) -> dict[str, Any]:
    container = {
        "name": "web",
        "image": "registry.example.com/web:1",
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
    }
    spec: dict[str, Any] = {"template": {"spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": dict(annotations)},
        "spec": spec,
    }


def lookup_in(*objects: JSONObject) -> Any:
    found = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    return lambda kind, name: found.get((kind, name))


CONFIG = lookup_in(config_map("settings", {"MODE": "fast"}), SECRET)


def prepared(obj: dict[str, Any], existing: JSONObject | None = None, lookup: Any = CONFIG) -> dict[str, Any]:
    prepare(obj, existing, lookup)
    return obj


def live(replicas: int, last_applied: str) -> dict[str, Any]:
    return deployment(replicas, **{LAST_APPLIED_REPLICAS: last_applied})


def test_a_new_deployment_records_the_replicas_it_was_asked_for() -> None:
    made = prepared(deployment(None))
    assert made["spec"]["replicas"] == 1
    assert made["metadata"]["annotations"][LAST_APPLIED_REPLICAS] == "1"


def test_replicas_scaled_by_someone_else_stay_while_the_bundle_asks_for_the_same() -> None:
    made = prepared(deployment(2), existing=live(5, "2"))
    assert made["spec"]["replicas"] == 5
    assert made["metadata"]["annotations"][LAST_APPLIED_REPLICAS] == "2"
    assert desired_hash(made) == desired_hash(prepared(deployment(2), existing=live(7, "2"))), (
        "an HPA scaling the Deployment is no change of the Bundle"
    )


def test_the_bundle_changing_its_replicas_wins() -> None:
    made = prepared(deployment(3), existing=live(5, "2"))
    assert made["spec"]["replicas"] == 3
    assert made["metadata"]["annotations"][LAST_APPLIED_REPLICAS] == "3"


def test_disabled_replicas_rule_applies_the_bundle_as_written() -> None:
    made = prepared(deployment(2, **{LAST_APPLIED_REPLICAS: "disabled"}), existing=live(5, "2"))
    assert made["spec"]["replicas"] == 2
    assert desired_hash(made) != desired_hash({**made, "spec": {**made["spec"], "replicas": 5}})


def env_hash(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["metadata"]["annotations"][ENV_REF_HASH])


def test_the_pod_template_carries_smiths_hash_of_what_the_pods_read() -> None:
    expected = hashlib.sha256(b"MODE\0fast\0" + b"token\0t0k3n\0").hexdigest()
    assert env_hash(prepared(deployment())) == expected, "only the keys read, values as bytes, as Smith"
    other = lookup_in(config_map("settings", {"MODE": "slow"}), SECRET)
    assert env_hash(prepared(deployment(), lookup=other)) != expected, "a changed ConfigMap rolls the pods"


def test_volumes_and_projected_volumes_count_too() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["volumes"] = [
        {"name": "files", "configMap": {"name": "files", "items": [{"key": "a.conf", "path": "a.conf"}]}},
        {"name": "all", "projected": {"sources": [{"secret": {"name": "certs"}}]}},
    ]
    read = {name for _, name in config_sources({"spec": {"resources": [{"spec": obj}]}})}
    assert read == {"settings", "creds", "files", "certs"}
    with pytest.raises(MissingConfig, match="ConfigMap 'files' not found"):
        prepared(obj)
    certs = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "certs"}, "data": {"tls.crt": "eA=="}}
    files = config_map("files", {"a.conf": "x=1", "b.conf": "unused"})
    before = env_hash(prepared(deployment()))
    with_volumes = env_hash(
        prepared(obj, lookup=lookup_in(config_map("settings", {"MODE": "fast"}), SECRET, certs, files))
    )
    assert with_volumes != before


def test_a_missing_key_is_waited_for_unless_optional() -> None:
    with pytest.raises(MissingConfig, match="Secret 'creds' has no key token"):
        prepared(deployment(), lookup=lookup_in(config_map("settings", {}), {**SECRET, "data": {}}))
    optional = deployment()
    optional["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"][
        "optional"
    ] = True
    prepared(optional, lookup=lookup_in(config_map("settings", {})))


def test_disabled_env_ref_hash_reads_nothing() -> None:
    obj = deployment()
    obj["spec"]["template"]["metadata"] = {"annotations": {ENV_REF_HASH: "disabled"}}
    assert env_hash(prepared(obj, lookup=lookup_in())) == "disabled"


def instance(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "servicecatalog.k8s.io/v1beta1",
        "kind": "ServiceInstance",
        "metadata": {"name": "db"},
        "spec": {"parametersFrom": [{"secretKeyRef": {"name": "creds", "key": "token"}}], **spec},
    }


def test_a_changed_parameters_secret_bumps_update_requests() -> None:
    first = prepared(instance())
    checksum = first["metadata"]["annotations"][SECRET_PARAMETERS_CHECKSUM]
    assert "updateRequests" not in first["spec"], "a new instance is provisioned with the parameters"
    same = prepared(instance(), existing={**first, "spec": {**first["spec"], "updateRequests": 2}})
    assert same["spec"]["updateRequests"] == 2, "unchanged: the count stays"
    rotated = lookup_in({**SECRET, "data": {"token": base64.b64encode(b"new").decode()}})
    bumped = prepared(
        instance(), existing={**first, "spec": {**first["spec"], "updateRequests": 2}}, lookup=rotated
    )
    assert bumped["spec"]["updateRequests"] == 3
    assert bumped["metadata"]["annotations"][SECRET_PARAMETERS_CHECKSUM] != checksum
