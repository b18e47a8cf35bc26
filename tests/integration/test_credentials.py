"""Credentials as kubectl has them, against the real API server: a user that logs in through an `exec`
credential plugin (as EKS, GKE and AKS kubeconfigs do) and a `tokenFile` rewritten while the client
runs (as kubelets rotate service account tokens). The old token is revoked for real: it was bound to a
Secret, and the Secret is deleted."""

from __future__ import annotations

import shutil
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest
import yaml

import smith_kube.config
from smith_controlplane.plane import ControlPlane
from smith_kube import ApiError, KubeClient, KubeConfig
from support import eventually

pytestmark = pytest.mark.controlplane

READER = "reader"


async def reader_token(kube: KubeClient, namespace: str, bound_to: str) -> str:
    """A token of ServiceAccount `reader` (may read the namespace), valid while Secret `bound_to` exists."""
    secret = await kube.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": bound_to, "namespace": namespace}}
    )
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 3600,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": bound_to,
                "uid": secret["metadata"]["uid"],
            },
        },
    }
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{READER}/token"
    answer = await kube.request("POST", path, body=request)
    return str(answer["status"]["token"])


async def reader(kube: KubeClient, namespace: str) -> None:
    """ServiceAccount `reader`, allowed to read the namespace's ConfigMaps and nothing else."""
    meta = {"name": READER, "namespace": namespace}
    rbac = "rbac.authorization.k8s.io"
    await kube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
    await kube.create({"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": meta, "rules": [rule]})
    await kube.create(
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": READER},
            "subjects": [{"kind": "ServiceAccount", **meta}],
        }
    )


def kubeconfig_with(plane: ControlPlane, user: Mapping[str, object], path: Path) -> Path:
    config = plane.kubeconfig_dict()
    config["users"] = [{"name": "smith-admin", "user": user}]
    path.write_text(yaml.safe_dump(config))
    return path


async def refused(server: str, token: str, namespace: str) -> bool:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server}/api/v1/namespaces/{namespace}/configmaps",
            headers={"Authorization": f"Bearer {token}"},
            ssl=False,
        ) as response,
    ):
        return response.status == 401


async def revoke(kube: KubeClient, namespace: str, bound_to: str, token: str) -> None:
    await kube.delete("v1", "Secret", bound_to, namespace=namespace)

    async def gone() -> bool:
        return await refused(kube.config.server, token, namespace)

    await eventually(gone, what="the old token to be refused")


async def test_a_token_file_rewritten_while_the_client_runs_is_read_again(
    kube: KubeClient, namespace: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    await reader(kube, namespace)
    old = await reader_token(kube, namespace, "first")
    token_file = tmp_path / "token"
    token_file.write_text(old)
    config = KubeConfig.load(kubeconfig_with(control_plane, {"tokenFile": "token"}, tmp_path / "config"))
    async with KubeClient(config) as client:
        assert (await client.list("v1", "ConfigMap", namespace))["items"] is not None

        token_file.write_text(await reader_token(kube, namespace, "second"))  # the kubelet rotates it
        await revoke(kube, namespace, "first", old)
        listing = await client.list("v1", "ConfigMap", namespace)  # refused once, read again, sent again
        assert listing["kind"] == "ConfigMapList"
        assert config.token() == token_file.read_text()


async def test_a_user_logging_in_through_an_exec_plugin_reaches_the_cluster(
    kube: KubeClient, namespace: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The plugin (a script, as aws/gcloud/kubelogin are) prints an ExecCredential; when its token is
    revoked, the plugin is run again."""
    await reader(kube, namespace)
    issued = tmp_path / "issued"
    issued.write_text(await reader_token(kube, namespace, "first"))
    runs = tmp_path / "runs"
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib\n"
        f"pathlib.Path({str(runs)!r}).open('a').write('run\\n')\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',\n"
        f"    'status': {{'token': pathlib.Path({str(issued)!r}).read_text()}}}}))\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    config = KubeConfig.load(kubeconfig_with(control_plane, user, tmp_path / "config"))
    async with KubeClient(config) as client:
        assert (await client.list("v1", "ConfigMap", namespace))["kind"] == "ConfigMapList"
        old, before = issued.read_text(), runs.read_text().count("run")

        issued.write_text(await reader_token(kube, namespace, "second"))
        await revoke(kube, namespace, "first", old)
        assert (await client.list("v1", "ConfigMap", namespace))["kind"] == "ConfigMapList"
        assert runs.read_text().count("run") > before, "the plugin was asked again"
    with pytest.raises(ApiError, match=r"(?i)forbidden"):
        async with KubeClient(config) as client:  # the plugin's user is who the server sees
            await client.list("v1", "Secret", namespace)


async def test_the_in_cluster_token_is_read_again_when_the_kubelet_rotates_it(
    kube: KubeClient,
    namespace: str,
    control_plane: ControlPlane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pod's service account files, as the kubelet mounts them, under a test directory."""
    await reader(kube, namespace)
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    cluster = control_plane.kubeconfig_dict()["clusters"][0]["cluster"]
    shutil.copyfile(cluster["certificate-authority"], mounted / "ca.crt")
    (mounted / "namespace").write_text(namespace)
    old = await reader_token(kube, namespace, "first")
    (mounted / "token").write_text(old)
    host, _, port = cluster["server"].removeprefix("https://").rpartition(":")
    monkeypatch.setattr(smith_kube.config, "SERVICE_ACCOUNT", mounted)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    config = KubeConfig.in_cluster()
    assert config.namespace == namespace
    async with KubeClient(config) as client:
        assert (await client.list("v1", "ConfigMap", namespace))["kind"] == "ConfigMapList"
        (mounted / "token").write_text(await reader_token(kube, namespace, "second"))
        await revoke(kube, namespace, "first", old)
        assert (await client.list("v1", "ConfigMap", namespace))["kind"] == "ConfigMapList"
