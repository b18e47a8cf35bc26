"""`python -m smith_controlplane up|down|status`: a detached local control plane for kubectl and
`make run`, remembered in a state file so `down` stops exactly what `up` started. `trust` makes the
files Smith's services trust each other by (smith_controlplane.trust) for processes run against
$KUBECONFIG, under --dir (Tilt does)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from smith_controlplane.plane import ControlPlane, PlaneState
from smith_controlplane.services import SERVICES
from smith_controlplane.trust import make_local_trust

DEFAULT_DIR = Path(".smith/cluster")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _state(directory: Path) -> PlaneState | None:
    path = directory / "state.json"
    if not path.exists():
        return None
    state: PlaneState = json.loads(path.read_text())
    return state


def up(directory: Path, *, full: bool, nodes: int) -> int:
    state = _state(directory)
    if state and all(_alive(p) for p in state["pids"].values()):
        print(state["kubeconfig"])
        return 0
    if state:
        down(directory)
    plane = ControlPlane(full=full, nodes=nodes, detached=True, workdir=directory.resolve())
    plane.start()
    (directory / "state.json").write_text(json.dumps(plane.state(), indent=2))
    print(plane.kubeconfig)
    return 0


def down(directory: Path) -> int:
    state = _state(directory)
    if state is None:
        print(f"no control plane recorded in {directory}", file=sys.stderr)
        return 0
    pids = list(state["pids"].values())
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)
    print(f"stopped the control plane in {directory}")
    return 0


def status(directory: Path) -> int:
    state = _state(directory)
    if state is None:
        print("not running")
        return 1
    for name, pid in state["pids"].items():
        print(f"{name:<24} pid {pid:<8} {'running' if _alive(pid) else 'STOPPED'}")
    print(f"kubeconfig: {state['kubeconfig']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smith_controlplane", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "trust"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the plane keeps its files")
    parser.add_argument(
        "--full", action="store_true", help="add kube-controller-manager, kube-scheduler and kwok"
    )
    parser.add_argument("--nodes", type=int, default=2, help="fake kwok nodes for --full")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.dir, full=args.full, nodes=args.nodes)
    if args.command == "down":
        return down(args.dir)
    if args.command == "trust":
        trust = make_local_trust(Path(os.environ.get("KUBECONFIG", "")), args.dir, SERVICES)
        print(f"trust files in {trust.directory}")
        return 0
    return status(args.dir)


if __name__ == "__main__":
    sys.exit(main())
