"""pytest fixtures for a real control plane: one per test session, a fresh namespace per test.

Tests marked `fullplane` get kube-controller-manager, kube-scheduler and kwok added to the session's
plane (started on first use). Load with `pytest_plugins = ["smith_controlplane.pytest_plugin"]`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from smith_controlplane.plane import ControlPlane
from smith_kube import KubeClient, KubeConfig, NotFoundError


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "controlplane: needs the local kube-apiserver + etcd")
    config.addinivalue_line(
        "markers", "fullplane: needs kube-controller-manager, kube-scheduler and kwok too"
    )


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane(nodes=2)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def full_control_plane(control_plane: ControlPlane) -> ControlPlane:
    control_plane.start_full()
    return control_plane


@pytest.fixture(autouse=True)
def _full_plane_when_marked(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("fullplane") is not None:
        request.getfixturevalue("full_control_plane")


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest_asyncio.fixture(scope="session")
async def kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    async with KubeClient(KubeConfig.load(kubeconfig)) as client:
        yield client


@pytest_asyncio.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    """A namespace of its own for one test, deleted afterwards (without waiting for it to go)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(NotFoundError):
            await kube.delete("v1", "Namespace", name)
