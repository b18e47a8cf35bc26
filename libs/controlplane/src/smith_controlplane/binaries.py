"""Where the control plane's binaries are: $KUBEBUILDER_ASSETS (envtest's layout) when it holds them,
else the cache that tools/controlplane/build.sh fills (building them once if needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MINIMAL = ("etcd", "kube-apiserver", "kube-controller-manager")
FULL = (*MINIMAL, "kube-controller-manager", "kube-scheduler", "kwok")


class BinariesNotFoundError(RuntimeError):
    pass


def _has(directory: Path, names: tuple[str, ...]) -> bool:
    return all(os.access(directory / n, os.X_OK) for n in names)


def build_script(start: Path | None = None, tool: str = "controlplane") -> Path | None:
    """tools/<tool>/build.sh of the Smith checkout containing `start` (default: this file, then cwd)."""
    for origin in (start, Path(__file__).resolve(), Path.cwd()):
        if origin is None:
            continue
        for parent in (origin, *origin.parents):
            if (candidate := parent / "tools" / tool / "build.sh").is_file():
                return candidate
    return None


def find(*, full: bool = False) -> Path:
    """The directory with the binaries a plane needs (the full set when `full`)."""
    wanted = FULL if full else MINIMAL
    for variable in ("SMITH_CONTROLPLANE_BIN", "KUBEBUILDER_ASSETS"):
        if (value := os.environ.get(variable)) and _has(Path(value), wanted):
            return Path(value)
    script = build_script()
    if script is None:
        raise BinariesNotFoundError(
            "no control plane binaries: set KUBEBUILDER_ASSETS or SMITH_CONTROLPLANE_BIN, "
            "or run from a Smith checkout (make controlplane)"
        )
    env = {k: v for k, v in os.environ.items() if k != "KUBEBUILDER_ASSETS"} if full else None
    result = subprocess.run(["bash", str(script)], check=True, capture_output=True, text=True, env=env)
    directory = Path(result.stdout.strip().splitlines()[-1])
    if not _has(directory, wanted):
        raise BinariesNotFoundError(f"{script} did not produce {', '.join(wanted)} in {directory}")
    return directory
