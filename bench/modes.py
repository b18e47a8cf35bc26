"""`python -m bench.modes`: the resident memory of Smith's processes as they run in Pods, both ways: the
seven services, then the one all-in-one process (`smith_all`); idle, then with Bundles of 10 ConfigMaps
converged. Each process reads a service account as in a Pod (its token and CA under
/var/run/secrets/kubernetes.io/serviceaccount, written here, so run it as root on a throw-away
machine), and, unless `--with-kubernetes`, with the `kubernetes` package unimportable, as in the
images (kopf imports it when it is there)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.controlplane import rss_mib
from smith_controlplane.install import install_base
from smith_controlplane.plane import ControlPlane, free_ports
from smith_controlplane.services import SERVICES
from smith_kube import KubeClient, KubeConfig

ROOT = Path(__file__).resolve().parent.parent
MOUNTED = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LEAN = (
    "import sys, runpy; sys.modules['kubernetes'] = None; runpy.run_module(sys.argv[1], run_name='__main__')"
)


def bundle(name: str, namespace: str) -> dict[str, Any]:
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-c{i}"},
            "data": {"k": "v" * 100},
        }
        for i in range(10)
    ]
    resources = [{"name": f"c{i}", "spec": {"object": o}} for i, o in enumerate(objects)]
    meta = {"name": name, "namespace": namespace}
    return {
        "apiVersion": "smith.atlassian.com/v1",
        "kind": "Bundle",
        "metadata": meta,
        "spec": {"resources": resources},
    }


async def converge(kubeconfig: Path, namespace: str, count: int) -> None:
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        await asyncio.gather(*(kube.create(bundle(f"b{i}", namespace)) for i in range(count)))
        deadline, ready = time.monotonic() + 300, 0
        while time.monotonic() < deadline:
            items = (await kube.list("smith.atlassian.com/v1", "Bundle", namespace))["items"]
            ready = sum(
                any(c.get("type") == "Ready" and c.get("status") == "True" for c in b["status"]["conditions"])
                for b in items
                if b.get("status")
            )
            if ready == count:
                return
            await asyncio.sleep(1)
        raise SystemExit(f"{namespace}: {ready} of {count} Bundles Ready in 300 s")


@contextmanager
def processes(mode: str, env: Mapping[str, str], lean: bool) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """`mode` "seven" (the services, plain gRPC between them) or "all" (smith_all), running."""
    modules = ["smith_all"] if mode == "all" else list(SERVICES)
    listen = dict(
        zip([m for m in modules if m != "smith_controller"], free_ports(len(modules)), strict=False)
    )
    base = {**env, "SMITH_METRICS": "off", "SMITH_INSECURE_DEVELOPMENT": "1"}
    if mode == "seven":
        base |= {"SMITH_PLANNER": f"127.0.0.1:{listen['smith_planner']}"}
        base |= {"SMITH_STATUS": f"127.0.0.1:{listen['smith_status']}"}
    started = {}
    for module in modules:
        own = {**base, **({"SMITH_LISTEN": f"127.0.0.1:{listen[module]}"} if module in listen else {})}
        command = ["-c", LEAN, module] if lean else ["-m", module]
        started[module] = subprocess.Popen(
            [sys.executable, *command], env=own, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    try:
        yield started
    finally:
        for process in started.values():
            process.terminate()
        for process in started.values():
            process.wait(10)


def mounted_account(plane: ControlPlane, account: str) -> dict[str, str]:
    """`account`'s token and the plane's CA where a Pod has them; the environment a Pod's process sees."""
    made = plane.service_account_kubeconfig("smith-system", account, Path(tempfile.mkdtemp()) / "k.yaml")
    token = yaml.safe_load(made.read_text())["users"][0]["user"]["token"]
    ca = plane.kubeconfig_dict()["clusters"][0]["cluster"]["certificate-authority"]
    MOUNTED.mkdir(parents=True, exist_ok=True)
    (MOUNTED / "token").write_text(token)
    (MOUNTED / "ca.crt").write_bytes(Path(ca).read_bytes())
    (MOUNTED / "namespace").write_text("smith-system")
    host, _, port = plane.server.removeprefix("https://").rpartition(":")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return env | {
        "HOME": tempfile.mkdtemp(),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.modes", description=__doc__)
    parser.add_argument("--bundles", type=int, default=50, help="Bundles of 10 ConfigMaps to converge")
    parser.add_argument("--with-kubernetes", action="store_true", help="let the processes import it")
    args = parser.parse_args()
    with ControlPlane(full=True, nodes=1) as plane:  # the full plane: RBAC's aggregated roles need it
        install_base(plane, ROOT / "deploy" / "overlays" / "all-in-one")
        env = mounted_account(plane, "smith-all")  # every role of the seven (and the planner needs none)
        for mode in ("seven", "all"):
            with processes(mode, env, lean=not args.with_kubernetes) as running:
                time.sleep(15)
                idle = {m: rss_mib(p.pid) for m, p in running.items()}
                asyncio.run(converge(plane.kubeconfig, f"modes-{mode}", args.bundles))
                time.sleep(5)
                loaded = {m: rss_mib(p.pid) for m, p in running.items()}
            total, objects = sum(loaded.values()), args.bundles * 10
            print(f"{mode}: idle {sum(idle.values()):.0f} MiB, with {objects} objects {total:.0f} MiB")
            for module in running:
                print(f"  {module:<32}{idle[module]:>6.0f} ->{loaded[module]:>6.0f}")


if __name__ == "__main__":
    main()
