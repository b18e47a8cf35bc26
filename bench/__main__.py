"""`make bench`: run every benchmark, print a table and write bench/results/<time>.json.

`make bench ARGS="--counts 10,100 --repeats 2 --idle-seconds 30"` scales it down."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench import controlplane, modes, report, system

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measured figure")
    parser.add_argument("--counts", default="10,100,500", help="Bundle counts for the throughput figure")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="how long to count idle writes")
    parser.add_argument(
        "--footprint",
        type=int,
        default=2000,
        help="Bundles of 10 objects added for the memory figure at scale (0: none)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=3,
        help="controller replicas for the scale-out and takeover figures, against 1 (0 or 1: none)",
    )
    parser.add_argument(
        "--loads",
        default="5000",
        help="objects converged one load after another for the memory of each deployment mode ('': none)",
    )
    parser.add_argument("--only", choices=["controlplane", "system", "modes"], help="run one benchmark")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run kro (built once by tools/peers/build.sh) on the same jobs",
    )
    args = parser.parse_args()
    began = time.perf_counter()
    figures: dict[str, object] = {}
    if args.only in (None, "controlplane"):
        figures["controlplane"] = plane = controlplane.run(repeats=args.repeats)
        print(controlplane.report(plane))
    if args.only in (None, "system"):
        counts = [int(c) for c in args.counts.split(",")]
        figures["system"] = smith = system.run(
            repeats=args.repeats,
            counts=counts,
            idle_seconds=args.idle_seconds,
            peers=args.peers,
            footprint=args.footprint,
            replicas=args.replicas,
        )
        print(report.report(smith))
    if args.only in (None, "modes") and args.loads:
        loads = [int(n) for n in args.loads.split(",")]
        figures["modes"] = memory = modes.run(loads=loads, peers=args.peers)
        print(modes.report(memory))
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "cpus": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    out = RESULTS / time.strftime("%Y%m%dT%H%M%S.json")
    out.write_text(
        json.dumps({"machine": machine, "seconds": time.perf_counter() - began, "figures": figures}, indent=2)
    )
    print(f"\n{time.perf_counter() - began:.0f} s in all; written to {out}")


if __name__ == "__main__":
    main()
