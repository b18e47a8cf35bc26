"""`make bench`: run every benchmark, print a table and write bench/results/<time>.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench import controlplane

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measured figure")
    args = parser.parse_args()
    figures = {"controlplane": controlplane.run(repeats=args.repeats)}
    print(controlplane.report(figures["controlplane"]))
    RESULTS.mkdir(exist_ok=True)
    machine = {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()}
    out = RESULTS / time.strftime("%Y%m%dT%H%M%S.json")
    out.write_text(json.dumps({"machine": machine, "figures": figures}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
