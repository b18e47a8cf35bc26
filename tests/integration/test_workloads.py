"""The kinds Smith v2 users put in Bundles besides Deployments, each READY by its rule (README table),
on the real control plane: StatefulSet and DaemonSet rolled out, Job Complete (Failed is terminal),
PersistentVolumeClaim Bound, and NetworkPolicy, Role, RoleBinding, ResourceQuota, LimitRange on
existing."""

from __future__ import annotations

from typing import Any

import pytest

from live import Json, bundle, resource_condition, until_condition
from smith_kube import KubeClient
from support import resource

pytestmark = pytest.mark.controlplane


def pod_template(name: str, **spec: Any) -> Json:
    container = {
        "name": name,
        "image": f"registry.example.com/{name}:1",
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container], **spec}}


def namespace_policy() -> list[Json]:
    """What a platform team puts around an app: who may read its config, what it may use, who may
    reach it."""
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "config-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "app-reads-config"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "config-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "app"}],
    }
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute"},
        "spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "20"}},
    }
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults"},
        "spec": {
            "limits": [{"type": "Container", "default": {"cpu": "0.5", "memory": "512Mi"}}],
        },
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-only"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": "http"}, {"port": 8443}]}],
        },
    }
    return [
        resource("reader", reader),
        resource("account", account),
        resource("binding", binding, depends_on=["reader", "account"]),
        resource("quota", quota),
        resource("limits", limits),
        resource("policy", policy),
    ]


async def test_policy_kinds_are_ready_once_they_exist(kube: KubeClient, namespace: str, smith: Any) -> None:
    await kube.create(bundle("policy", namespace, *namespace_policy()))
    await until_condition(kube, namespace, "policy", "Ready")
    binding = await kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "app-reads-config", namespace)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "app"}]
    kinds = {r["kind"] for r in binding["metadata"]["ownerReferences"] if not r.get("controller")}
    assert kinds == {"Role", "ServiceAccount"}, "it holds references to what it depends on"
    limits = await kube.get("v1", "LimitRange", "defaults", namespace)
    assert limits["spec"]["limits"][0]["default"]["cpu"] == "500m", "stored in the server's normal form"


@pytest.mark.fullplane
async def test_workloads_are_ready_once_rolled_out_or_complete(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432, "name": "pg"}]},
    }
    stateful = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "replicas": 2,
            "selector": {"matchLabels": {"app": "db"}},
            "template": pod_template("db"),
        },
    }
    daemons = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")},
    }
    migrate = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"backoffLimit": 2, "template": pod_template("migrate", restartPolicy="Never")},
    }
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-data"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/data"},
            "storageClassName": "manual",
        },
    }
    await kube.create(volume)  # a volume for the claim to bind to (no provisioner here)
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual",
            "volumeName": f"{namespace}-data",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    await kube.create(
        bundle(
            "workloads",
            namespace,
            resource("service", headless),
            resource("db", stateful, depends_on=["service"]),
            resource("migrate", migrate, depends_on=["db"]),
            resource("agent", daemons),
            resource("data", claim),
        )
    )
    done = await until_condition(kube, namespace, "workloads", "Ready", within=120)
    for name in ("db", "migrate", "agent", "data"):
        assert resource_condition(done, name, "Ready")["status"] == "True"
    db = await kube.get("apps/v1", "StatefulSet", "db", namespace)
    assert db["status"]["readyReplicas"] == 2
    assert db["status"]["currentRevision"] == db["status"]["updateRevision"]
    job = await kube.get("batch/v1", "Job", "migrate", namespace)
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    assert (await kube.get("v1", "PersistentVolumeClaim", "data", namespace))["status"]["phase"] == "Bound"
    await kube.delete("v1", "PersistentVolume", f"{namespace}-data")
