"""Fault injection against Smith's services running as processes on a local plane of their own:
Toxiproxy (built from Go modules by tools/toxiproxy/build.sh, once per machine) between the services and
the API server or each other, and a fault-answering TLS proxy (tests/faults.py).

`make test` runs the short version; `make chaos` (SMITH_CHAOS=full) runs every scenario at full size."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from faults import TALLY, Toxiproxy
from smith_controlplane.plane import ControlPlane, dying_with_parent, free_port
from smith_kube import KubeClient, KubeConfig
from smith_kube.manifests import create_all
from support import ROOT, eventually


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos/" in str(item.path):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.controlplane)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault injection (make chaos runs it at full size)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        terminalreporter.write_line(
            "faults: " + "; ".join(f"{n} {what}" for what, n in TALLY.items()) + ", in the tests that passed"
        )


@pytest.fixture(scope="session")
def toxiproxy_server() -> Path:
    built = subprocess.run(
        ["bash", str(ROOT / "tools" / "toxiproxy" / "build.sh")], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        pytest.skip(f"Toxiproxy cannot be built on this machine: {built.stderr.strip()[-1000:]}")
    return Path(built.stdout.strip().splitlines()[-1]) / "toxiproxy-server"


def start_toxiproxy(binary: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        command = dying_with_parent([str(binary), "-host", "127.0.0.1", "-port", str(port)])
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


@pytest_asyncio.fixture
async def toxiproxy(toxiproxy_server: Path, tmp_path: Path) -> AsyncIterator[Toxiproxy]:
    port = free_port()
    server = start_toxiproxy(toxiproxy_server, port, tmp_path / "toxiproxy.log")
    toxi = Toxiproxy(f"http://127.0.0.1:{port}")

    async def up() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            await toxi._call("GET", "/version")
            return True
        return False

    try:
        await eventually(up, within=20, what="toxiproxy")
        yield toxi
    finally:
        server.terminate()
        server.wait()


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane() as started:
        yield started


@pytest_asyncio.fixture(scope="module")
async def kube(plane: ControlPlane) -> AsyncIterator[KubeClient]:
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as client:
        crds = [f for d in ("deploy/crds", "deploy/servicecatalog") for f in (ROOT / d).glob("*.yaml")]
        await create_all(client, crds, namespaces=["smith-system"])
        yield client


@pytest_asyncio.fixture
async def namespace(kube: KubeClient) -> str:
    name = f"c-{os.urandom(4).hex()}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
