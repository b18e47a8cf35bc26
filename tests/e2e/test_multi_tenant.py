"""The multi-tenant install, run for real: deploy/overlays/multi-tenant and its tenant-example.yaml on a
plane of their own, every service as its own ServiceAccount with only the overlay's rights (the
executors may read Bundles and impersonate, and write nothing as themselves). A team's Bundle converges
as its namespace's `bundle-deployer`; what that account may not do is a "forbidden" (retried) on its
resource; a namespace that never granted Smith anything gets nothing written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from live import bundle, exists, resource_condition, until_condition
from smith_controlplane.install import install_base, service_kubeconfigs
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import running_services
from smith_kube import KubeClient, KubeConfig
from support import ROOT, config_map, resource

pytestmark = pytest.mark.controlplane

OVERLAY = ROOT / "deploy" / "overlays" / "multi-tenant"


def test_the_multi_tenant_install_writes_only_what_each_namespace_granted(tmp_path: Path) -> None:
    with ControlPlane(full=True, nodes=1) as plane:  # the controller-manager fills aggregated roles
        install_base(plane, OVERLAY)
        for team in ("team-a", "team-b"):
            plane.kubectl("create", "namespace", team)
        plane.kubectl("apply", "--server-side", "-f", str(OVERLAY / "tenant-example.yaml"))
        accounts = service_kubeconfigs(plane, tmp_path / "accounts")
        env = {"SMITH_DEFAULT_SERVICE_ACCOUNT": "bundle-deployer"}
        with running_services(plane.kubeconfig, tmp_path / "logs", env=env, kubeconfigs=accounts):
            asyncio.run(converge(plane.kubeconfig))


def cluster_admin_binding() -> dict[str, object]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "take-over"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "team-a"}],
    }


async def converge(kubeconfig: Path) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"k": "v"}}
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
        await kube.create(
            bundle("app", "team-a", resource("settings", config_map("settings")), resource("creds", secret))
        )
        await kube.create(
            bundle("grab", "team-a", resource("binding", cluster_admin_binding()), resource("fine"))
        )
        await kube.create(bundle("stranger", "team-b", resource("settings", config_map("settings"))))
        await until_condition(kube, "team-a", "app", "Ready", within=90)
        assert await exists(kube, "v1", "Secret", "creds", "team-a")

        grab = await until_condition(kube, "team-a", "grab", "Error", within=60)
        refused = resource_condition(grab, "binding", "Error")
        assert refused["reason"] == "RetriableError", refused  # retried: rights may be granted
        assert "forbidden" in refused["message"], refused
        assert "system:serviceaccount:team-a:bundle-deployer" in refused["message"], refused
        assert await exists(kube, "v1", "ConfigMap", "fine", "team-a")  # its other resource went on
        rbac = "rbac.authorization.k8s.io/v1"
        assert not await exists(kube, rbac, "RoleBinding", "take-over", "team-a")

        stranger = await until_condition(kube, "team-b", "stranger", "Error", within=60)
        said = resource_condition(stranger, "settings", "Error")
        assert "cannot impersonate" in said["message"], said  # team-b never let Smith act as its account
        assert '"bundle-deployer"' in said["message"], said
        assert '"team-b"' in said["message"], said
        assert not await exists(kube, "v1", "ConfigMap", "settings", "team-b")
        await external_refs_are_read_with_the_bundles_rights(kube)


async def external_refs_are_read_with_the_bundles_rights(kube: KubeClient) -> None:
    """An externalRef's object is read for a Bundle only where its ServiceAccount may get it: Smith's own
    rights (it reads every Secret) never become the author's."""
    for team in ("team-a", "team-b"):
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admin", "namespace": team}}
        await kube.create({**secret, "stringData": {"token": f"never-copied-{team}"}})
    ref = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admin"}}
    copy = config_map("copy", {"token": "${admin.data.token}"})
    for team in ("team-a", "team-b"):
        await kube.create(bundle("peek", team, {"name": "admin", "externalRef": ref}, resource("copy", copy)))
    await until_condition(kube, "team-a", "peek", "Ready", within=60)  # bundle-deployer may read it there
    peek = await until_condition(kube, "team-b", "peek", "Error", within=60)
    said = resource_condition(peek, "admin", "Error")
    assert said["reason"] == "RetriableError", said  # retried: the account may be granted the right
    # team-b never let the executors act as its account: nothing is read for its Bundles
    assert "Smith may not act as system:serviceaccount:team-b:bundle-deployer" in said["message"], said
    assert not await exists(kube, "v1", "ConfigMap", "copy", "team-b")
    assert "never-copied-team-b" not in str(peek)
    # team-a's account may act, but not read Roles (the built-in `edit` reads no RBAC objects)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "bundle-author"},
    }
    rules = config_map("rules", {"rules": "${string(author.rules)}"})
    await kube.create(
        bundle("peek-role", "team-a", {"name": "author", "externalRef": role}, resource("rules", rules))
    )
    refused = await until_condition(kube, "team-a", "peek-role", "Error", within=60)
    said = resource_condition(refused, "author", "Error")
    assert "system:serviceaccount:team-a:bundle-deployer may not get Role bundle-author" in said["message"], (
        said
    )
    assert not await exists(kube, "v1", "ConfigMap", "rules", "team-a")
