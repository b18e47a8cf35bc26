"""Install Smith into a local control plane the way a cluster gets it (deploy/base: CRDs, namespace,
ServiceAccounts, least-privilege RBAC) and give each service a kubeconfig of its own ServiceAccount,
so local runs and tests use exactly the permissions a real deployment has."""

from __future__ import annotations

import time
import urllib.error
from pathlib import Path
from typing import Any

import yaml

from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import SERVICES

NAMESPACE = "smith-system"


def account(module: str) -> str:
    """The ServiceAccount of a service module: smith_executor_core -> smith-executor-core."""
    return module.replace("_", "-")


def install_base(plane: ControlPlane, base: Path) -> list[dict[str, Any]]:
    """Apply everything `base` (a kustomization) holds except its Deployments, which run here as
    local processes; returns what was applied."""
    built = plane.kubectl("kustomize", str(base)).stdout
    docs = [d for d in yaml.safe_load_all(built) if d and d["kind"] != "Deployment"]
    plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=smith-install",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
    )
    for crd in (d for d in docs if d["kind"] == "CustomResourceDefinition"):
        _until_served(plane, crd)
    return docs


def _until_served(plane: ControlPlane, crd: dict[str, Any], *, within: float = 60) -> None:
    """Wait until the CRD's kind can be listed: discovery serves it and its storage is ready (a new
    CRD answers 404, then 429 "storage is (re)initializing", for a moment), so services started next
    find it whole."""
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served", True))
    path = f"/apis/{spec['group']}/{version}/{spec['names']['plural']}?limit=1"
    deadline = time.monotonic() + within
    while True:
        try:
            plane.api("GET", path)
            return
        except urllib.error.HTTPError as e:
            if e.code not in (404, 429, 503) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def service_kubeconfigs(plane: ControlPlane, workdir: Path, *, all_in_one: bool = False) -> dict[str, Path]:
    """A kubeconfig per service, acting as that service's own ServiceAccount (with `all_in_one`: the one
    of `smith_all`, as deploy/overlays/all-in-one makes it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return {
        module: plane.service_account_kubeconfig(
            NAMESPACE, account(module), workdir / f"{account(module)}.yaml"
        )
        for module in (("smith_all",) if all_in_one else SERVICES)
    }
