"""Tilt against a local control plane: the binary tools/tilt/build.sh builds once per machine (from the
Go module proxy; minutes) and caches, and `tilt ci` / `tilt up` run on the Smith checkout's Tiltfile with
the plane's kubeconfig and kubectl."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from smith_controlplane.binaries import build_script
from smith_controlplane.plane import ControlPlane


class TiltNotBuiltError(RuntimeError):
    pass


def binary() -> Path:
    """The `tilt` binary, built first if it is not cached; TiltNotBuiltError (with the build's last
    words) when it cannot be built here."""
    script = build_script(tool="tilt")
    if script is None:
        raise TiltNotBuiltError("not in a Smith checkout: tools/tilt/build.sh not found")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TiltNotBuiltError(f"{script} failed: {done.stderr.strip()[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1]) / "tilt"


def checkout() -> Path:
    script = build_script(tool="tilt")
    if script is None:
        raise TiltNotBuiltError("not in a Smith checkout: tools/tilt/build.sh not found")
    return script.parent.parent.parent


def environment(plane: ControlPlane) -> dict[str, str]:
    """The plane's kubeconfig, and its kubectl first on PATH (the Tiltfile's commands run kubectl)."""
    path = os.pathsep.join([str(plane.bin_dir), os.environ.get("PATH", "")])
    return {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "PATH": path}


def command(tilt: Path, verb: str, *args: str) -> list[str]:
    return [str(tilt), verb, "--file", str(checkout() / "Tiltfile"), *args]


def ci(tilt: Path, plane: ControlPlane, *, timeout: str = "10m", extra: Sequence[str] = ()) -> int:
    """`tilt ci` on the checkout's Tiltfile against `plane`; Tilt's exit status."""
    argv = command(tilt, "ci", "--port", "0", "--timeout", timeout, *extra)
    return subprocess.run(argv, cwd=checkout(), env=environment(plane), check=False).returncode
