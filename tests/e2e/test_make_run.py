"""`make run` (tools/run.py) brings the sample Bundles it can serve to Ready from nothing, and leaves
no process behind. On its own plane every service runs as its own ServiceAccount (deploy/base's
least-privilege RBAC), so this is also the test that those permissions suffice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smith_controlplane.plane import ControlPlane
from support import ROOT

pytestmark = pytest.mark.controlplane


def make_run(kubeconfig: Path | None) -> subprocess.CompletedProcess[str]:
    """`make run` (tools/run.py) as a user runs it, with or without $KUBECONFIG."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "run.py")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "all 6 Bundles are Ready" in done.stdout
    return done


def test_make_run_converges_the_samples_and_cleans_up() -> None:
    done = make_run(None)
    assert "starting a local control plane" in done.stdout
    # the six samples converge with each service holding only its own ServiceAccount's permissions,
    # and nothing was refused on the way (a missing permission would show as errors in the logs)
    assert "each service runs as its own ServiceAccount" in done.stdout
    for log in (ROOT / ".smith" / "run").glob("smith_*.log"):
        errors = [line for line in log.read_text().splitlines() if '"level": "error"' in line]
        assert not errors, f"{log.name}: {errors[:3]}"
    mine = f"{sys.executable} -m smith_"  # this checkout's services only, not another run's
    leftovers = subprocess.run(["pgrep", "-f", mine], capture_output=True, text=True)
    assert leftovers.stdout == ""


@pytest.mark.fullplane
def test_make_run_uses_the_cluster_kubeconfig_names(control_plane: ControlPlane) -> None:
    """With $KUBECONFIG set, make run starts no control plane of its own and runs against that one."""
    done = make_run(control_plane.kubeconfig)
    assert "using the cluster of" in done.stdout
    assert "starting a local control plane" not in done.stdout
