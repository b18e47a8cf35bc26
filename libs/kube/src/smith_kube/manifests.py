"""Install YAML manifests the way `kubectl create -f` would, for local runs, tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from smith_kube.client import ApiError, ConflictError, KubeClient, UnservedKindError

CRD_API = "apiextensions.k8s.io/v1"


async def create_all(kube: KubeClient, files: Iterable[Path], *, namespaces: Iterable[str] = ()) -> None:
    """Create `namespaces` and every object of every file (each may hold several documents); objects
    that exist are left alone. Returns once every CRD among them is Established, served, and its storage
    answers (a new CRD's kind is refused with 429 "storage is (re)initializing" for a moment)."""
    for name in namespaces:
        with contextlib.suppress(ConflictError):
            await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    docs = [doc for path in sorted(files) for doc in yaml.safe_load_all(path.read_text()) if doc]
    await create_objects(kube, docs)


async def create_objects(kube: KubeClient, objects: Iterable[Mapping[str, Any]]) -> None:
    """Create every object (those that exist are left alone), as `create_all` does."""
    crds = []
    for obj in objects:
        with contextlib.suppress(ConflictError):
            await kube.create(obj)
        if obj["kind"] == "CustomResourceDefinition":
            crds.append(obj["metadata"]["name"])
    await asyncio.gather(*(_established(kube, name) for name in crds))
    kube.forget()


async def _established(kube: KubeClient, name: str, *, within: float = 30) -> None:
    async with asyncio.timeout(within):
        while True:
            crd = await kube.get(CRD_API, "CustomResourceDefinition", name)
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            await asyncio.sleep(0.1)
        spec = crd["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("served", True))
        while True:
            try:
                await kube.list(f"{spec['group']}/{version}", spec["names"]["kind"])
                return
            except (UnservedKindError, ApiError) as e:
                if isinstance(e, ApiError) and not e.retriable:
                    raise
                kube.forget(f"{spec['group']}/{version}")
                await asyncio.sleep(0.1)
