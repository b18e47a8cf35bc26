"""Least privilege, checked by the real API server's authorizer: each service's ServiceAccount, with
the RBAC of deploy/base installed, may do what its job needs and nothing else of note. (That these
permissions suffice is shown end to end by `make run`, which runs every service as its own
ServiceAccount; see tests/e2e.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from smith_status.events import EventRecorder

from smith.v1 import common_pb2
from smith_controlplane.install import NAMESPACE, install_base
from smith_controlplane.plane import ControlPlane
from smith_engine.events import Notice
from smith_kube import KubeClient, KubeConfig
from support import ROOT, eventually

# Aggregated ClusterRoles are filled in by kube-controller-manager: the full plane.
pytestmark = [pytest.mark.controlplane, pytest.mark.fullplane]

# (verb, group, resource, namespace, name) -> allowed?
Check = tuple[str, str, str, str, str]
MANAGED = "someone"  # a namespace Bundles live in

ALLOWED: dict[str, list[Check]] = {
    "smith-controller": [
        ("watch", "smith.atlassian.com", "bundles", "", ""),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions", "", ""),
        ("list", "smith.atlassian.com", "executors", NAMESPACE, ""),
        ("watch", "", "configmaps", "", ""),
        ("list", "apps", "deployments", "", ""),
        ("get", "", "secrets", MANAGED, "binding-secret"),
        ("patch", "smith.atlassian.com", "bundles", MANAGED, "b"),  # Smith's finalizer, nothing else
        ("watch", "batch", "jobs", "", ""),
        ("watch", "smith.atlassian.com", "plugins", NAMESPACE, ""),
        ("list", "servicecatalog.k8s.io", "clusterserviceplans", "", ""),
        ("watch", "crd.atlassian.com", "sleepers", "", ""),  # aggregated from deploy/samples/crds/rbac.yaml
        ("patch", "coordination.k8s.io", "leases", NAMESPACE, "smith-controller-a"),  # its membership
        ("watch", "coordination.k8s.io", "leases", NAMESPACE, ""),
    ],
    "smith-status": [
        ("patch", "smith.atlassian.com", "bundles/status", MANAGED, "b"),
        ("get", "smith.atlassian.com", "bundles", MANAGED, "b"),
        ("create", "", "events", MANAGED, ""),
        ("patch", "", "events", MANAGED, "b.1"),  # the same Event again: its count raised
        ("create", "authentication.k8s.io", "tokenreviews", "", ""),  # who calls it
    ],
    "smith-planner": [("create", "authentication.k8s.io", "tokenreviews", "", "")],
    "smith-executor-core": [
        ("create", "authentication.k8s.io", "tokenreviews", "", ""),
        ("get", "smith.atlassian.com", "bundles", MANAGED, "b"),  # the request's Bundle, with its uid
        ("list", "smith.atlassian.com", "executors", NAMESPACE, ""),  # kinds claimed by others first
        ("create", "", "configmaps", MANAGED, ""),
        ("patch", "apps", "deployments", MANAGED, "web"),
        ("delete", "", "secrets", MANAGED, "s"),
        ("get", "", "services", MANAGED, "svc"),
        ("patch", "smith.atlassian.com", "executors/status", NAMESPACE, "core"),
        ("list", "discovery.k8s.io", "endpointslices", NAMESPACE, ""),  # its Service's replicas
        ("patch", "apps", "statefulsets", MANAGED, "db"),
        ("create", "batch", "jobs", MANAGED, ""),
        ("delete", "", "persistentvolumeclaims", MANAGED, "data"),
        ("patch", "rbac.authorization.k8s.io", "rolebindings", MANAGED, "readers"),
        # Bundles carry Roles Smith cannot hold in advance: writing a Role needs every permission in it
        # unless one may `escalate`, binding one needs its permissions unless one may `bind`. No other way.
        ("escalate", "rbac.authorization.k8s.io", "roles", MANAGED, "reader"),
        ("bind", "rbac.authorization.k8s.io", "clusterroles", "", "view"),
    ],
    "smith-executor-servicecatalog": [
        ("create", "authentication.k8s.io", "tokenreviews", "", ""),
        ("get", "smith.atlassian.com", "bundles", MANAGED, "b"),
        ("create", "servicecatalog.k8s.io", "serviceinstances", MANAGED, ""),
        ("patch", "smith.atlassian.com", "executors", NAMESPACE, "servicecatalog"),
    ],
    "smith-plugin-app": [
        ("patch", "smith.atlassian.com", "plugins/status", NAMESPACE, "app"),
        ("create", "authentication.k8s.io", "tokenreviews", "", ""),
    ],
    "smith-executor-dynamic": [
        ("create", "authentication.k8s.io", "tokenreviews", "", ""),
        ("get", "smith.atlassian.com", "bundles", MANAGED, "b"),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions", "", ""),
        ("create", "crd.atlassian.com", "sleepers", MANAGED, ""),
        ("delete", "smith.atlassian.com", "executors", NAMESPACE, "dynamic"),
    ],
}

DENIED: dict[str, list[Check]] = {
    "smith-controller": [
        ("create", "", "configmaps", MANAGED, ""),
        ("patch", "smith.atlassian.com", "bundles/status", MANAGED, "b"),
        ("update", "smith.atlassian.com", "bundles", MANAGED, "b"),
        ("create", "", "events", MANAGED, ""),
        ("patch", "coordination.k8s.io", "leases", MANAGED, "x"),  # leases elsewhere are not its business
    ],
    "smith-status": [
        ("create", "", "configmaps", MANAGED, ""),
        ("list", "", "secrets", MANAGED, ""),
        ("update", "smith.atlassian.com", "bundles", MANAGED, "b"),
    ],
    "smith-executor-core": [
        ("patch", "smith.atlassian.com", "bundles/status", MANAGED, "b"),
        ("update", "smith.atlassian.com", "bundles", MANAGED, "b"),
        ("list", "", "secrets", "", ""),
        ("create", "servicecatalog.k8s.io", "serviceinstances", MANAGED, ""),
        ("patch", "smith.atlassian.com", "executors", NAMESPACE, "dynamic"),  # not its own registration
        ("create", "rbac.authorization.k8s.io", "clusterroles", "", ""),
        ("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "admin"),  # namespaced roles only
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""),
    ],
    "smith-executor-servicecatalog": [("create", "", "configmaps", MANAGED, "")],
    "smith-executor-dynamic": [
        ("create", "", "configmaps", MANAGED, ""),
        ("create", "apiextensions.k8s.io", "customresourcedefinitions", "", ""),
    ],
    "smith-plugin-app": [
        ("create", "", "configmaps", MANAGED, ""),  # Smith applies what a plugin makes, not the plugin
        ("patch", "smith.atlassian.com", "plugins", NAMESPACE, "other"),  # not another's registration
        ("get", "", "secrets", MANAGED, "s"),
    ],
    "smith-planner": [
        ("get", "", "configmaps", MANAGED, "c"),
        ("get", "smith.atlassian.com", "bundles", MANAGED, "b"),  # it reads nothing: it only asks who calls
        ("watch", "smith.atlassian.com", "bundles", "", ""),
    ],
}


@pytest_asyncio.fixture(scope="module")
async def installed(
    full_control_plane: ControlPlane, kube: KubeClient, smith: Any
) -> list[dict[str, object]]:
    docs = install_base(full_control_plane, ROOT / "deploy" / "base")
    full_control_plane.kubectl(
        "apply", "--server-side", "-f", str(ROOT / "deploy" / "samples" / "crds" / "rbac.yaml")
    )

    async def aggregated() -> bool:
        rules = [
            (await kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", role)).get("rules") or []
            for role in ("smith-controller", "smith-executor-dynamic")
        ]
        return all(any("sleepers" in r.get("resources", []) for r in found) for found in rules)

    await eventually(aggregated, what="the aggregated ClusterRoles to be filled in")
    return docs


async def allowed(kube: KubeClient, account: str, check: Check) -> bool:
    verb, group, resource, namespace, name = check
    plural, _, sub = resource.partition("/")
    attributes = {"verb": verb, "group": group, "resource": plural, "subresource": sub, "name": name}
    if namespace:
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": f"system:serviceaccount:{NAMESPACE}:{account}", "resourceAttributes": attributes},
    }
    answer = await kube.create(review)
    return bool(answer["status"].get("allowed"))


def cases(table: dict[str, list[Check]]) -> list[tuple[str, Check]]:
    return [(account, check) for account, checks in table.items() for check in checks]


@pytest.mark.parametrize(
    ("account", "check"), cases(ALLOWED), ids=lambda v: "/".join(v) if isinstance(v, tuple) else v
)
async def test_a_service_may_do_what_its_job_needs(
    kube: KubeClient, installed: Any, account: str, check: Check
) -> None:
    assert await allowed(kube, account, check), f"{account} should be allowed to {check}"


@pytest.mark.parametrize(
    ("account", "check"), cases(DENIED), ids=lambda v: "/".join(v) if isinstance(v, tuple) else v
)
async def test_a_service_may_not_do_what_is_not_its_job(
    kube: KubeClient, installed: Any, account: str, check: Check
) -> None:
    assert not await allowed(kube, account, check), f"{account} should not be allowed to {check}"


def test_the_base_gives_every_service_a_service_and_an_account_of_its_own(installed: Any) -> None:
    built = [d for d in installed if d["kind"] in ("Service", "ServiceAccount")]
    names = {(d["kind"], d["metadata"]["name"]) for d in built}
    for service in (
        "planner",
        "status",
        "executor-core",
        "executor-servicecatalog",
        "executor-dynamic",
        "controller",
    ):
        assert ("Service", f"smith-{service}") in names
        assert ("ServiceAccount", f"smith-{service}") in names


async def test_the_status_service_raises_an_events_count_with_its_own_account(
    installed: list[dict[str, object]],
    full_control_plane: ControlPlane,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    """The same Event told twice is one Event with count 2: a PATCH, as the status service's own
    ServiceAccount (a right its Role once lacked: every raise was refused)."""
    config = full_control_plane.service_account_kubeconfig(
        NAMESPACE, "smith-status", tmp_path / "status.yaml"
    )
    bundle = common_pb2.BundleRef(namespace=namespace, name="b", uid="u-1")
    async with KubeClient(KubeConfig.load(config)) as as_status:
        recorder = EventRecorder(as_status)
        for _ in range(2):
            recorder.post(bundle, [Notice("Tested", "told twice")])
            await recorder.drain()

    async def raised() -> bool:
        events = (await kube.list("v1", "Event", namespace))["items"]
        return [e["count"] for e in events if e["reason"] == "Tested"] == [2]

    await eventually(raised, what="the Event's count raised to 2")
