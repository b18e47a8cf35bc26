"""Install Smith into a local control plane the way a cluster gets it (deploy/base: CRDs, namespace,
ServiceAccounts, least-privilege RBAC) and give each service a kubeconfig of its own ServiceAccount,
so local runs and tests use exactly the permissions a real deployment has."""

from __future__ import annotations

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
    return docs


def service_kubeconfigs(plane: ControlPlane, workdir: Path) -> dict[str, Path]:
    """A kubeconfig per service, acting as that service's own ServiceAccount."""
    workdir.mkdir(parents=True, exist_ok=True)
    return {
        module: plane.service_account_kubeconfig(
            NAMESPACE, account(module), workdir / f"{account(module)}.yaml"
        )
        for module in SERVICES
    }
