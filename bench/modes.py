"""Memory of the whole install as in its Pods, both ways (`make bench`'s `modes` phase; `python -m
bench.modes` runs it alone): the seven services, then the one all-in-one process (`smith_all`), then,
with `--peers`, kro; each on a fresh plane, idle, then after each load of reference chains of 10
ConfigMaps (Smith's Bundles, kro's Chains: the same objects) is converged. Each Smith process reads a
service account as in a Pod (its token and CA under /var/run/secrets/kubernetes.io/serviceaccount,
written here, so run it as root on a throw-away machine), and, unless `--with-kubernetes`, with the
`kubernetes` package unimportable, as in the images (kopf imports it when it is there)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import yaml

from bench.controlplane import rss_mib
from bench.peers import GROUP, KIND, Kro, running_kro
from bench.shapes import CONCURRENCY, REFERENCE_CHAIN, reference_chain
from smith_controlplane.install import install_base
from smith_controlplane.plane import ControlPlane, free_ports
from smith_controlplane.services import SERVICES
from smith_kube import KubeClient, KubeConfig

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".smith" / "bench" / "modes"
MOUNTED = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LEAN = (
    "import sys, runpy; sys.modules['kubernetes'] = None; runpy.run_module(sys.argv[1], run_name='__main__')"
)


BATCH = 250  # objects created at once by the load


async def converge(kubeconfig: Path, namespace: str, have: int, want: int, *, kro: bool) -> float:
    """Chains `have`/10 … `want`/10 created in `namespace` (made if need be); seconds until every chain
    there is done (a Bundle Ready, a Chain ACTIVE)."""
    began = time.monotonic()
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
        if have == 0:
            await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        names = [f"b{i}" for i in range(have // REFERENCE_CHAIN, want // REFERENCE_CHAIN)]
        for at in range(0, len(names), BATCH // REFERENCE_CHAIN):
            batch = names[at : at + BATCH // REFERENCE_CHAIN]
            await asyncio.gather(*(kube.create(chain(n, namespace, kro=kro)) for n in batch))
        api, kind = (f"{GROUP}/v1alpha1", KIND) if kro else ("smith.atlassian.com/v1", "Bundle")
        deadline, done, count = time.monotonic() + LOAD_SECONDS, 0, want // REFERENCE_CHAIN
        while time.monotonic() < deadline:
            done = sum(map(finished, (await kube.list(api, kind, namespace))["items"]))
            if done == count:
                return time.monotonic() - began
            await asyncio.sleep(2)
        raise SystemExit(f"{namespace}: {done} of {count} chains done in {LOAD_SECONDS} s")


LOAD_SECONDS = 3600


def chain(name: str, namespace: str, *, kro: bool) -> dict[str, Any]:
    if not kro:
        return reference_chain(name, namespace, REFERENCE_CHAIN)
    meta = {"name": name, "namespace": namespace}
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": KIND, "metadata": meta, "spec": {"seed": "seed"}}


def finished(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", ()))
    return ready or status.get("state") == "ACTIVE"


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


MODES: Final = ("seven", "all")
SETTLE = 15  # seconds a process is left before its memory is read


def measured(running: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    time.sleep(SETTLE)
    return {name: rss_mib(p.pid) for name, p in running.items()}


def smith(mode: str, loads: list[int], lean: bool) -> dict[str, Any]:
    """RSS of each process of `mode`, idle and after each load (objects in all); the load's seconds."""
    with ControlPlane(full=True, nodes=1) as plane:  # the full plane: RBAC's aggregated roles need it
        install_base(plane, ROOT / "deploy" / "overlays" / "all-in-one")
        env = mounted_account(plane, "smith-all")  # every role of the seven (and the planner needs none)
        with processes(mode, env, lean=lean) as running:
            rss, seconds, have = {0: measured(running)}, {}, 0
            for want in loads:
                seconds[want] = asyncio.run(converge(plane.kubeconfig, "modes", have, want, kro=False))
                rss[want], have = measured(running), want
    return {"rss": rss, "seconds": seconds}


def kro(loads: list[int]) -> dict[str, Any]:
    """kro's RSS, idle (its Chain defined) and after each load, on a plane of its own."""
    with (
        ControlPlane(full=True, nodes=1) as plane,
        running_kro(plane.kubeconfig, CONCURRENCY, LOGS) as process,
    ):

        async def define() -> None:
            async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
                await Kro(kube).define(REFERENCE_CHAIN)

        asyncio.run(define())
        running = {"kro": process}
        rss, seconds, have = {0: measured(running)}, {}, 0
        for want in loads:
            seconds[want] = asyncio.run(converge(plane.kubeconfig, "modes", have, want, kro=True))
            rss[want], have = measured(running), want
    return {"rss": rss, "seconds": seconds}


def run(*, loads: list[int], peers: bool, lean: bool = True, modes: Sequence[str] = MODES) -> dict[str, Any]:
    """Per mode ("seven", "all", and "kro" with `peers`): RSS MiB per process at each load (0: idle)."""
    figures = {mode: smith(mode, loads, lean) for mode in modes}
    if peers:
        figures["kro"] = kro(loads)
    return figures


def report(figures: dict[str, Any]) -> str:
    kro_ = figures.get("kro")
    ran = [m for m in MODES if m in figures]
    heads = {"seven": "seven services", "all": "all-in-one"}
    lines = ["", "memory of the whole install (RSS MiB, as in Pods; sum of its processes)"]
    lines.append(
        f"{'objects':>8}" + "".join(f"{heads[m]:>16}" for m in ran) + (f"{'kro':>8}" if kro_ else "")
    )
    for load in figures[ran[-1]]["rss"]:
        sums = {m: sum(figures[m]["rss"][load].values()) for m in ran}
        row = f"{load:>8}" + "".join(f"{sums[m]:>16.0f}" for m in ran)
        if kro_:
            peer = kro_["rss"][load]["kro"]
            row += f"{peer:>8.0f}" + "".join(f"  {heads[m]} {sums[m] / peer:.2f}x kro" for m in ran)
        lines.append(row)
    for mode in [*ran, *(["kro"] if kro_ else [])]:
        took = ", ".join(f"{n} objects in {s:.0f} s" for n, s in figures[mode]["seconds"].items())
        lines.append(f"  {mode}: converged {took}")
    lines.append("per process, idle -> at the largest load:")
    for mode in ran:
        rss = figures[mode]["rss"]
        last = max(rss)
        for name in rss[0]:
            lines.append(f"  {mode:<6}{name:<32}{rss[0][name]:>6.0f} ->{rss[last][name]:>6.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.modes", description=__doc__)
    parser.add_argument("--loads", default="5000", help="objects converged, one load after another")
    parser.add_argument("--peers", action="store_true", help="kro too (built once by tools/peers/build.sh)")
    parser.add_argument("--modes", default=",".join(MODES), help="Smith's modes to measure: seven, all")
    parser.add_argument("--with-kubernetes", action="store_true", help="let the processes import it")
    args = parser.parse_args()
    loads = [int(n) for n in args.loads.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    print(report(run(loads=loads, peers=args.peers, lean=not args.with_kubernetes, modes=modes)))


if __name__ == "__main__":
    main()
