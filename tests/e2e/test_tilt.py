"""The Tiltfile run by Tilt itself (built from Go modules by tools/tilt/build.sh, once per machine) on a
local plane of its own: `tilt ci` brings up every service and converges the samples; under `tilt up`,
an edit to a service's source restarts that service. Skipped only when Tilt cannot be built here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from live import condition
from smith_controlplane import tilt
from smith_controlplane.plane import ControlPlane, free_port
from smith_kube import KubeClient, KubeConfig
from support import ROOT, eventually

pytestmark = [pytest.mark.controlplane, pytest.mark.tilt]


@pytest.fixture(scope="module")
def tilt_binary() -> Path:
    try:
        return tilt.binary()
    except tilt.TiltNotBuiltError as e:
        pytest.skip(f"Tilt cannot be built on this machine: {e}")


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(full=True, nodes=2) as started:  # kwok nodes: the samples' Deployments roll out
        yield started


def test_tilt_ci_starts_every_service_and_converges_the_samples(
    tilt_binary: Path, plane: ControlPlane
) -> None:
    assert tilt.ci(tilt_binary, plane, timeout="8m") == 0
    samples = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "deploy" / "samples").glob("*.yaml"))]
    asyncio.run(all_ready(plane.kubeconfig, [s["metadata"]["name"] for s in samples]))


async def all_ready(kubeconfig: Path, names: list[str]) -> None:
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
        listing = (await kube.list("smith.atlassian.com/v1", "Bundle", "smith-demo"))["items"]
        by_name = {b["metadata"]["name"]: b for b in listing}
        assert sorted(by_name) == sorted(names)
        for name, found in by_name.items():
            assert condition(found, "Ready")["status"] == "True", (name, found.get("status"))


def test_an_edit_under_tilt_up_restarts_that_service(
    tilt_binary: Path, plane: ControlPlane, tmp_path: Path
) -> None:
    port = free_port()
    argv = tilt.command(
        tilt_binary, "up", "--port", str(port), "--host", "127.0.0.1", "--stream", "crds", "planner"
    )
    with (tmp_path / "tilt.log").open("wb") as log, running(argv, tilt.environment(plane), log):

        def resource() -> dict[str, Any]:
            got = subprocess.run(
                [str(tilt_binary), "get", "uiresource", "planner", "-o", "json", "--port", str(port)],
                capture_output=True,
                text=True,
                check=False,
            )
            return json.loads(got.stdout) if got.returncode == 0 else {}

        def serving() -> int:
            """The planner's process id once it is up and ready (0 before)."""
            status = resource().get("status") or {}
            ready = status.get("runtimeStatus") == "ok"
            return int((status.get("localResourceInfo") or {}).get("pid") or 0) if ready else 0

        asyncio.run(eventually(until(lambda: serving() > 0), within=180, what="the planner under tilt up"))
        first = serving()
        touched = ROOT / "services" / "planner" / "src" / "smith_planner" / "_tilt_touch.py"
        try:
            touched.write_text("# written by tests/e2e/test_tilt.py: Tilt restarts the planner on it\n")
            asyncio.run(
                eventually(
                    until(lambda: serving() not in (0, first)), within=120, what="the planner restarted"
                )
            )
        finally:
            touched.unlink(missing_ok=True)


def until(check: Any) -> Any:
    async def checked() -> bool:
        return bool(await asyncio.to_thread(check))

    return checked


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], log: Any) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, cwd=tilt.checkout(), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
