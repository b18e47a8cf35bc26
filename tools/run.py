"""`make run`: Smith end to end. Start a full local control plane (or, when $KUBECONFIG or --context
is given, use that cluster), install Smith as deploy/base describes it (on the local plane: CRDs,
namespace, ServiceAccounts and least-privilege RBAC, each service running as its own ServiceAccount),
start every service as its own process, apply the sample Bundles, and show each Bundle's status live
(from a watch) until all are Ready. Ctrl-C stops everything; nothing is left running."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from smith_cli.status import watch

from smith_controlplane.install import install_base, service_kubeconfigs
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import running_services
from smith_kube import KubeClient, KubeConfig
from smith_kube.config import minified
from smith_kube.manifests import create_all

ROOT = Path(__file__).resolve().parent.parent
DEMO_NAMESPACE = "smith-demo"
CRDS = ("deploy/crds", "deploy/servicecatalog", "deploy/samples/crds")


async def install(kube: KubeClient, samples: list[dict[str, Any]]) -> None:
    files = [f for directory in CRDS for f in (ROOT / directory).glob("*.yaml")]
    await create_all(kube, files, namespaces=["smith-system", DEMO_NAMESPACE])
    for sample in samples:
        sample["metadata"]["namespace"] = DEMO_NAMESPACE
        for _ in range(50):
            try:
                await kube.apply(sample, field_manager="smith-demo")
                break
            except Exception:
                await asyncio.sleep(0.2)
                kube.forget()


async def demo(kubeconfig: Path, *, watching: bool) -> None:
    """Apply the samples, then show the demo namespace's Bundles live (`smith status --watch`): until
    all are Ready, or (`watching`) until Ctrl-C. The view rides out the API server going away."""
    samples = [
        yaml.safe_load(path.read_text()) for path in sorted((ROOT / "deploy" / "samples").glob("*.yaml"))
    ]
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
        await install(kube, samples)
        print(
            f"applied {len(samples)} Bundles to namespace {DEMO_NAMESPACE}: "
            f"{', '.join(s['metadata']['name'] for s in samples)}\n",
            flush=True,
        )
        names = None if watching else [s["metadata"]["name"] for s in samples]
        await watch(kube, DEMO_NAMESPACE, names, console=Console(highlight=False), until_ready=not watching)


def cluster_kubeconfig(context: str | None, workdir: Path) -> Path:
    """The chosen context of the user's kubeconfig, on its own (`kubectl config view --minify`), for every
    service to read the same way; exec plugins and token files stay live."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "kubeconfig"
    path.write_text(yaml.safe_dump(minified(context)))
    path.chmod(0o600)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--context", help="run against this context of $KUBECONFIG / ~/.kube/config")
    parser.add_argument(
        "--local", action="store_true", help="start a local control plane even if $KUBECONFIG is set"
    )
    parser.add_argument(
        "--watch", action="store_true", help="keep showing status after all Bundles are Ready"
    )
    parser.add_argument(
        "--all-in-one",
        action="store_true",
        help="run every service in one process (smith_all; deploy/overlays/all-in-one) instead of seven",
    )
    args = parser.parse_args()
    install = ROOT / "deploy" / ("overlays/all-in-one" if args.all_in_one else "base")
    logs = ROOT / ".smith" / "run"
    accounts: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        if not args.local and (args.context or os.environ.get("KUBECONFIG")):
            kubeconfig = cluster_kubeconfig(args.context, ROOT / ".smith" / "run")
            print(f"using the cluster of {kubeconfig}")
        else:
            print(
                "starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
            )
            plane = stack.enter_context(ControlPlane(full=True, nodes=2))
            kubeconfig = plane.kubeconfig
            print(f"control plane ready: {plane.server} (kubeconfig {kubeconfig})")
            install_base(plane, install)
            accounts = service_kubeconfigs(plane, logs / "accounts", all_in_one=args.all_in_one)
            print(f"installed {install.relative_to(ROOT)}; each process runs as its own ServiceAccount")
        fakes = {"fakes": [sys.executable, str(ROOT / "tests" / "fakes.py")]}
        started = stack.enter_context(
            running_services(kubeconfig, logs, extra=fakes, kubeconfigs=accounts, all_in_one=args.all_in_one)
        )
        print(f"started {', '.join(started)} (logs in {logs})")
        try:
            asyncio.run(demo(kubeconfig, watching=args.watch))
        except KeyboardInterrupt:
            print("\nstopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
