"""The best peer in the same run (`make bench ARGS=--peers`): kro (kubernetes-sigs/kro, built from Go
modules by tools/peers/build.sh) doing Smith's benchmark jobs on the same control plane — a chain of
ConfigMaps each holding a value read from the one before (a ResourceGraphDefinition whose resources read
the previous one with `${}`), one at a time and many at once, with as many workers as Smith has."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smith_controlplane.plane import free_ports
from smith_kube import ApiError, KubeClient
from smith_kube.manifests import create_all

ROOT = Path(__file__).resolve().parent.parent
GROUP = "kro.run"
KIND = "Chain"
Json = dict[str, Any]


def build() -> Path:
    """The directory of the kro binary and its CRDs (built once, then cached)."""
    done = subprocess.run(
        ["bash", str(ROOT / "tools" / "peers" / "build.sh")], check=True, capture_output=True, text=True
    )
    return Path(done.stdout.strip().splitlines()[-1])


def definition(depth: int) -> Json:
    """A ResourceGraphDefinition of `Chain`: ConfigMaps c0…c{depth-1}, each reading the one before."""
    resources: list[Json] = []
    for i in range(depth):
        value = "${schema.spec.seed}" if i == 0 else f"${{c{i - 1}.data.k}}"
        template = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"${{schema.metadata.name}}-c{i}"},
            "data": {"k": value},
        }
        resources.append({"id": f"c{i}", "template": template})
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": "chains"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": KIND, "spec": {"seed": 'string | default="seed"'}},
            "resources": resources,
        },
    }


@contextlib.contextmanager
def running_kro(kubeconfig: Path, workers: int, logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    binary = build() / "kro"
    metrics, probes = free_ports(2)
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "kro.log").open("ab") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--metrics-bind-address=127.0.0.1:{metrics}",
                f"--health-probe-bind-address=127.0.0.1:{probes}",
                f"--dynamic-controller-concurrent-reconciles={workers}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Kro:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    async def define(self, depth: int) -> None:
        """Install kro's CRDs and the Chain graph; return once instances of it can be made."""
        await create_all(self.kube, sorted((build() / "crds").glob("*.yaml")))
        await self.kube.apply(definition(depth), field_manager="bench")
        async with asyncio.timeout(120):
            while True:  # served in discovery, then its storage ready (429 until then)
                try:
                    await self.kube.list(f"{GROUP}/v1alpha1", KIND)
                    return
                except (LookupError, ApiError):
                    self.kube.forget()
                    await asyncio.sleep(0.2)

    async def chains(self, namespace: str, count: int) -> float:
        """Seconds from creating `count` Chains at once to all of them ACTIVE."""
        began = time.perf_counter()
        listing = await self.kube.list(f"{GROUP}/v1alpha1", KIND, namespace)
        await asyncio.gather(
            *(
                self.kube.create(
                    {
                        "apiVersion": f"{GROUP}/v1alpha1",
                        "kind": KIND,
                        "metadata": {"name": f"k{i}", "namespace": namespace},
                        "spec": {"seed": "seed"},
                    }
                )
                for i in range(count)
            )
        )
        pending = {f"k{i}" for i in range(count)}
        version = listing["metadata"]["resourceVersion"]
        while pending:
            async for event in self.kube.watch(
                f"{GROUP}/v1alpha1", KIND, namespace, resource_version=version
            ):
                version = event.object["metadata"].get("resourceVersion", version)
                if (event.object.get("status") or {}).get("state") == "ACTIVE":
                    pending.discard(event.object["metadata"]["name"])
                if not pending:
                    break
        return time.perf_counter() - began
