"""`make tilt-ci`: the Tiltfile run for real. Build Tilt once (tools/tilt/build.sh), start a full local
control plane, and run `tilt ci` against it: CRDs applied, every service started and ready, the sample
Bundles applied and every one Ready, then exit with Tilt's status (0 when all that happened)."""

from __future__ import annotations

import sys

from smith_controlplane import tilt
from smith_controlplane.plane import ControlPlane


def main() -> int:
    binary = tilt.binary()
    print(f"tilt: {binary}", flush=True)
    with ControlPlane(full=True, nodes=2) as plane:
        print(f"control plane ready: {plane.server} (kubeconfig {plane.kubeconfig})", flush=True)
        return tilt.ci(binary, plane)


if __name__ == "__main__":
    sys.exit(main())
