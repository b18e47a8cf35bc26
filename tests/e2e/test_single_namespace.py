"""The single-namespace install, run for real: deploy/overlays/single-namespace on a plane of its own,
every service as its own ServiceAccount with only the overlay's RoleBindings, the controller limited
to smith-system. A Bundle there converges (with its Events); a Bundle elsewhere is not touched."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from live import bundle, exists, get_bundle, until_condition
from smith_controlplane.install import NAMESPACE, install_base, service_kubeconfigs
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import running_services
from smith_kube import KubeClient, KubeConfig
from support import ROOT, eventually, resource

pytestmark = pytest.mark.controlplane


def test_the_single_namespace_install_manages_its_namespace_only(tmp_path: Path) -> None:
    with ControlPlane(full=True, nodes=1) as plane:  # the controller-manager fills aggregated roles
        installed = install_base(plane, ROOT / "deploy" / "overlays" / "single-namespace")
        assert not [
            d
            for d in installed
            if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "smith-controller"
        ]
        accounts = service_kubeconfigs(plane, tmp_path / "accounts")
        env = {"SMITH_WATCH_NAMESPACE": NAMESPACE}
        with running_services(plane.kubeconfig, tmp_path / "logs", env=env, kubeconfigs=accounts):
            asyncio.run(converge(plane.kubeconfig))
    # nothing was refused on the way (a missing permission shows as errors, e.g. kopf retrying a 403)
    for log in (tmp_path / "logs").glob("*.log"):
        errors = [line for line in log.read_text().splitlines() if '"level": "error"' in line]
        assert not errors, f"{log.name}: {errors[:3]}"


async def converge(kubeconfig: Path) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
        await kube.create(bundle("outside", "elsewhere", resource("far")))
        await kube.create(
            bundle("inside", NAMESPACE, resource("near"), resource("s", secret, depends_on=["near"]))
        )
        await until_condition(kube, NAMESPACE, "inside", "Ready", within=60)

        async def told() -> bool:  # Events are posted in the background, after the status
            events = (await kube.list("v1", "Event", NAMESPACE))["items"]
            return {e["reason"] for e in events if e["involvedObject"]["name"] == "inside"} >= {"Created"}

        await eventually(told, within=30, what="the Created events on the Bundle")
        assert "status" not in await get_bundle(kube, "elsewhere", "outside")
        assert not await exists(kube, "v1", "ConfigMap", "far", "elsewhere")
        assert await exists(kube, "v1", "Secret", "s", NAMESPACE)
