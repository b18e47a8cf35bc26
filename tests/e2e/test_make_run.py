"""`make run` (tools/run.py) brings the sample Bundles it can serve to Ready from nothing, and leaves
no process behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from smith_controlplane.plane import ControlPlane
from support import ROOT

pytestmark = pytest.mark.controlplane


def test_make_run_converges_the_samples_and_cleans_up() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "run.py")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "all 6 Bundles are Ready" in done.stdout
    leftovers = subprocess.run(["pgrep", "-f", "python -m smith_"], capture_output=True, text=True)
    assert leftovers.stdout == ""


@pytest.mark.fullplane
def test_make_run_uses_the_cluster_kubeconfig_names(control_plane: ControlPlane) -> None:
    """With $KUBECONFIG set, make run starts no control plane of its own and runs against that one."""
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "run.py")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "using the cluster of" in done.stdout
    assert "starting a local control plane" not in done.stdout
    assert "all 6 Bundles are Ready" in done.stdout
