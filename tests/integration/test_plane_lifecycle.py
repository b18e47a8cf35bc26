"""The launcher leaves nothing behind: no fixed ports, no processes, no directories, even when the
process that started the plane is killed; `cluster-up` / `cluster-down` work from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from smith_controlplane.plane import ControlPlane

pytestmark = pytest.mark.controlplane


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def wait_dead(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_two_planes_run_side_by_side_and_stop_cleanly() -> None:
    with ControlPlane() as one, ControlPlane() as two:
        assert one.server != two.server
        assert one.etcd_url != two.etcd_url
        assert one.api("GET", "/version")["gitVersion"] == "v1.37.2"
        assert foreground_deletion_completes(one), "the garbage collector runs, as in every cluster"
        pids = [p.popen.pid for p in (*one.processes, *two.processes)]
        dirs = [one.workdir, two.workdir]
    assert wait_dead(pids) == []
    assert not any(d is not None and d.exists() for d in dirs)


def foreground_deletion_completes(plane: ControlPlane) -> bool:
    """A ConfigMap deleted in the foreground goes: only the garbage collector removes the finalizer
    `foregroundDeletion` that the API server sets."""
    path = "/api/v1/namespaces/default/configmaps"
    plane.api("POST", path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fg"}})
    plane.api("DELETE", f"{path}/fg", {"kind": "DeleteOptions", "propagationPolicy": "Foreground"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = [c["metadata"]["name"] for c in plane.api("GET", path)["items"]]
        if "fg" not in names:
            return True
        time.sleep(0.1)
    return False


SCRIPT = """
import sys, time
from smith_controlplane.plane import ControlPlane
plane = ControlPlane()
plane.start()
print(" ".join(str(p.popen.pid) for p in plane.processes), plane.workdir, flush=True)
time.sleep(600)
"""


def test_killing_the_parent_takes_the_plane_down_with_it_and_the_next_plane_sweeps_its_directory() -> None:
    with subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        *pids, workdir = parent.stdout.readline().split()
        children = [int(p) for p in pids]
        assert children
        assert all(alive(p) for p in children)
        parent.send_signal(signal.SIGKILL)
    assert wait_dead(children) == []
    assert Path(workdir).exists()
    with ControlPlane():
        assert not Path(workdir).exists()


def test_cluster_up_and_down_from_the_command_line(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    run = [sys.executable, "-m", "smith_controlplane"]
    up = subprocess.run([*run, "up", "--dir", str(directory)], check=True, capture_output=True, text=True)
    kubeconfig = Path(up.stdout.strip())
    state = yaml.safe_load((directory / "state.json").read_text())
    try:
        assert kubeconfig.exists()
        assert set(state["pids"]) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        again = subprocess.run(
            [*run, "up", "--dir", str(directory)], check=True, capture_output=True, text=True
        )
        assert again.stdout == up.stdout, "a second `up` reuses the running plane"
        status = subprocess.run([*run, "status", "--dir", str(directory)], capture_output=True, text=True)
        assert status.returncode == 0
        assert "running" in status.stdout
    finally:
        subprocess.run([*run, "down", "--dir", str(directory)], check=True, capture_output=True)
    assert wait_dead(list(state["pids"].values())) == []
    assert not directory.exists()
