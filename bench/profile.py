"""`make profile`: where each service spends its CPU while Smith converges reference chains.

Starts a local control plane and every service as its own process (as `make bench` does), attaches
py-spy to each service, converges `--chains` reference chains one after another and then as many at
once, and prints each service's CPU seconds and its hottest functions (own time, and time inside
Smith's own functions). The raw stacks are written to `.smith/profile/<service>.txt` (collapsed-stack
format: flamegraph.pl, speedscope and inferno read it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.shapes import CHAINS_AT_ONCE, REFERENCE_CHAIN, ROOT
from bench.system import Bench, system
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import cpu_seconds
from smith_kube import KubeClient, KubeConfig
from smith_kube.manifests import create_all

OUT = ROOT / ".smith" / "profile"
OURS = ("smith_", "smith/")  # frames of Smith's own code (its packages' module paths)


@contextlib.contextmanager
def sampling(pids: dict[str, int], out: Path, rate: int) -> Iterator[dict[str, Path]]:
    """py-spy sampling each process (Python frames, idle time left out) until the block ends."""
    spy = Path(sys.executable).with_name("py-spy")
    files = {name: out / f"{name}.txt" for name in pids}
    options = ["--rate", str(rate), "--format", "raw", "--nonblocking"]
    recorders = [
        subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), *options, "--output", str(files[name])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield files
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for recorder in recorders:
            recorder.wait(timeout=60)


def stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks: 'frame;frame;frame count' per line, outermost first."""
    counts: Counter[tuple[str, ...]] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            frames, _, n = line.rpartition(" ")
            if frames and n.isdigit():
                counts[tuple(frames.split(";"))] += int(n)
    return counts


Shares = list[tuple[str, float]]


def hottest(counts: Counter[tuple[str, ...]], top: int) -> tuple[Shares, Shares]:
    """(own time, time inside) as shares of all samples: own time is the innermost frame; time inside
    counts each of Smith's functions once per sample it is on the stack of."""
    total = sum(counts.values()) or 1
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    for frames, n in counts.items():
        own[frames[-1]] += n
        for frame in set(frames):
            if any(mark in frame for mark in OURS):
                inside[frame] += n
    return (
        [(f, n / total) for f, n in own.most_common(top)],
        [(f, n / total) for f, n in inside.most_common(top)],
    )


async def workload(bench: Bench, chains: int) -> None:
    for _ in range(chains):
        await bench.smith_chains(1)
    await bench.smith_chains(chains)


async def measure(plane: ControlPlane, chains: int, rate: int, top: int) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
        await create_all(kube, (ROOT / "deploy" / "crds").glob("*.yaml"), namespaces=["smith-system"])
        with system(plane, kube, OUT / "logs") as bench:
            await bench.settled()
            before = cpu_seconds(bench.pids)
            with sampling(bench.pids, OUT, rate) as files:
                await workload(bench, chains)
                await bench.settled()
            used = {n: s - before[n] for n, s in cpu_seconds(bench.pids).items()}
    lines = [
        f"{chains} reference chains of {REFERENCE_CHAIN} one by one, then {chains} at once; CPU seconds "
        "per service and its hottest functions (share of its samples)"
    ]
    for name, cpu in sorted(used.items(), key=lambda item: -item[1]):
        lines.append(f"\n{name}: {cpu:.2f} CPU s ({files[name].relative_to(ROOT)})")
        own, inside = hottest(stacks(files[name]), top)
        for title, shares in (("own time", own), ("inside Smith's functions", inside)):
            lines += [f"  {title}:", *(f"    {share * 100:5.1f}%  {frame}" for frame, share in shares)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="make profile", description=__doc__)
    parser.add_argument("--chains", type=int, default=CHAINS_AT_ONCE, help="reference chains")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=12, help="functions shown per service")
    args = parser.parse_args()
    if os.geteuid() != 0 and Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip() != "0":
        sys.exit("py-spy needs ptrace: run as root or set kernel.yama.ptrace_scope=0")
    with ControlPlane() as plane:
        print(asyncio.run(measure(plane, args.chains, args.rate, args.top)))


if __name__ == "__main__":
    main()
