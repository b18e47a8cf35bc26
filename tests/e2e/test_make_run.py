"""`make run` (tools/run.py) brings the sample Bundles it can serve to Ready from nothing, and leaves
no process behind. On its own plane every service runs as its own ServiceAccount (deploy/base's
least-privilege RBAC), so this is also the test that those permissions suffice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from live import bundle as live_bundle
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import SERVICES
from smith_kube import KubeClient, KubeConfig
from support import ROOT, eventually, resource

pytestmark = pytest.mark.controlplane


async def make_run(kubeconfig: Path | None, *args: str) -> str:
    """`make run` (tools/run.py) as a user runs it, with or without $KUBECONFIG; its output. Awaited, so
    the session's event loop (and the test system's servers on it) keeps running meanwhile."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    with tempfile.TemporaryFile() as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tools" / "run.py"), *args, cwd=ROOT, env=env, stdout=out, stderr=out
        )
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), 240)
        except TimeoutError:
            timed_out = True
            process.kill()
            await process.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
    assert not timed_out, f"make run did not finish in 240 s:\n{text[-6000:]}{logs()}"
    assert process.returncode == 0, text[-6000:] + logs()
    samples = len(list((ROOT / "deploy" / "samples").glob("*.yaml")))
    assert f"all {samples} Bundles are Ready" in text
    return text


def logs() -> str:
    """The last lines of every log make run left, to tell why it did not finish."""
    tails = [
        f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        for log in sorted((ROOT / ".smith" / "run").glob("*.log"))
    ]
    return "".join(tails)


@pytest.mark.parametrize("mode", ["microservices", "all-in-one"])
async def test_make_run_converges_the_samples_and_cleans_up(mode: str) -> None:
    """Both deployments: seven processes (deploy/base), or one (`smith_all`, deploy/overlays/all-in-one)."""
    done = await make_run(None, *(["--all-in-one"] if mode == "all-in-one" else []))
    assert "starting a local control plane" in done
    # every sample converges (the plugin's too) with each process holding only its own ServiceAccount's
    # permissions, and nothing was refused on the way (a missing permission would show as errors in the logs)
    assert "each process runs as its own ServiceAccount" in done
    installed = "deploy/overlays/all-in-one" if mode == "all-in-one" else "deploy/base"
    assert f"installed {installed};" in done
    started = done.split("started ", 1)[1].split(" (logs", 1)[0]
    assert started == ("smith_all, fakes" if mode == "all-in-one" else f"{', '.join(SERVICES)}, fakes")
    for log in (ROOT / ".smith" / "run").glob("smith_*.log"):
        errors = [line for line in log.read_text().splitlines() if '"level": "error"' in line]
        assert not errors, f"{log.name}: {errors[:3]}"
        refused = [line for line in log.read_text().splitlines() if " 403" in line or "forbidden" in line]
        assert not refused, f"{log.name}: a right its ServiceAccount lacks: {refused[:3]}"
        denied = [line for line in log.read_text().splitlines() if "refused a call" in line]
        assert not denied, f"{log.name}: the controller's own call refused: {denied[:3]}"
    mine = f"{sys.executable} -m smith_"  # this checkout's services only, not another run's
    pgrep = await asyncio.create_subprocess_exec("pgrep", "-f", mine, stdout=asyncio.subprocess.PIPE)
    leftovers, _ = await pgrep.communicate()
    assert leftovers == b""


async def test_make_run_uses_the_cluster_kubeconfig_names() -> None:
    """With $KUBECONFIG set, make run starts no control plane of its own and runs against that one
    (a cluster of the test's own: the session's plane has the test system's Smith running on it)."""
    with ControlPlane(full=True, nodes=2) as cluster:
        done = await make_run(cluster.kubeconfig)
    assert "using the cluster of" in done
    assert "starting a local control plane" not in done


async def test_make_run_rides_out_the_api_server_restarting() -> None:
    """`make run --watch` while its cluster's kube-apiserver is killed and stays down 10 s: the live view
    says it is reconnecting, nothing exits, and once the server is back a Bundle applied then converges
    and shows up. Ctrl-C still stops everything."""
    with ControlPlane(full=True, nodes=2) as cluster:
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "tools" / "run.py"),
            "--watch",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        output = Output(process.stdout)
        samples = len(list((ROOT / "deploy" / "samples").glob("*.yaml")))
        try:
            await output.until(f"all {samples} Bundles are Ready", 240)
            await asyncio.to_thread(cluster.restart_apiserver, 10)
            await output.until("reconnecting…", 30)
            await output.until("connected again", 60)
            async with KubeClient(KubeConfig.load(cluster.kubeconfig)) as kube:
                await kube.apply(live_bundle("later", "smith-demo", resource("after")), field_manager="test")
            await output.until(f"all {samples + 1} Bundles are Ready", 60)
            assert process.returncode is None, "make run kept running"
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 60)
            await output.done()
        assert process.returncode == 0, output.text() + logs()
        assert "Traceback" not in output.text()


class Output:
    """A process's output lines, read as they come."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._reading = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    async def until(self, text: str, within: float) -> None:
        async def seen() -> bool:
            return any(text in line for line in self.lines)

        try:
            await eventually(seen, within=within, what=f"make run to say {text!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.text()[-6000:]}{logs()}") from None

    async def done(self) -> None:
        await asyncio.wait_for(self._reading, 10)
