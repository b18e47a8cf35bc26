"""Helpers for tests against the running system: Bundles as a user writes them, and waiting for
their status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smith_engine.model import API_VERSION, BUNDLE_NAME_LABEL
from smith_kube import ApiError, ConflictError, KubeClient, NotFoundError
from support import eventually

Json = dict[str, Any]
RESYNC_SECONDS = 2.0  # the test system's controller resyncs this often (so tests see resyncs)


def bundle(name: str, namespace: str, *resources: Json) -> Json:
    return {
        "apiVersion": API_VERSION,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": list(resources)},
    }


SMITH = Path(sys.executable).parent / "smith"  # the command line, as a user runs it


async def run_smith(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """`smith ARGS` in its own process with $KUBECONFIG: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(SMITH),
        *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


# Go Smith's user agent (atlassian/ctrl sets it to the controller's name): the API server names the
# manager of its plain Create and Update calls after it, `smith`.
GO_SMITH_AGENT = "smith/v2.4.1 (linux/amd64) kubernetes/$Format"


async def as_go_smith(kube: KubeClient, method: str, obj: Json, *, bundle: str, bundle_uid: str) -> Json:
    """`obj` (a core kind) created (POST) or updated (PUT) as Go Smith wrote it: a plain write under
    its user agent, with its label and its controller owner reference to the Bundle."""
    meta = obj["metadata"]
    meta.setdefault("labels", {})[BUNDLE_NAME_LABEL] = bundle
    owner = {"apiVersion": API_VERSION, "kind": "Bundle", "name": bundle, "uid": bundle_uid}
    meta["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    base = f"/api/v1/namespaces/{meta['namespace']}/{obj['kind'].lower()}s"
    path = base if method == "POST" else f"{base}/{meta['name']}"
    return await kube.request(method, path, body=obj, headers={"User-Agent": GO_SMITH_AGENT})


async def get_bundle(kube: KubeClient, namespace: str, name: str) -> Json:
    return await kube.get(API_VERSION, "Bundle", name, namespace)


def condition(obj: Json, kind: str) -> Json:
    found: Json = next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )
    return found


def resource_condition(obj: Json, name: str, kind: str) -> Json:
    for entry in (obj.get("status") or {}).get("resourceStatuses") or []:
        if entry["name"] == name:
            found: Json = next((c for c in entry["conditions"] if c["type"] == kind), {})
            return found
    return {}


async def until_condition(
    kube: KubeClient, namespace: str, name: str, kind: str, *, within: float = 30
) -> Json:
    """Wait until the Bundle's condition `kind` is True; return the Bundle."""
    seen: Json = {}

    async def true() -> bool:
        nonlocal seen
        seen = await get_bundle(kube, namespace, name)
        return condition(seen, kind).get("status") == "True"

    try:
        await eventually(true, within=within, what=f"Bundle {name} {kind}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last status: {seen.get('status')}") from None
    return seen


async def until_resource(
    kube: KubeClient, namespace: str, name: str, resource: str, kind: str, *, within: float = 30
) -> Json:
    """Wait until condition `kind` of the Bundle's resource `resource` is True; return the Bundle."""
    seen: Json = {}

    async def true() -> bool:
        nonlocal seen
        seen = await get_bundle(kube, namespace, name)
        return resource_condition(seen, resource, kind).get("status") == "True"

    try:
        await eventually(true, within=within, what=f"resource {resource} of Bundle {name} {kind}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last status: {seen.get('status')}") from None
    return seen


def deployment_object(
    name: str, *, replicas: int, paused: bool = False, env_from: list[Json] | None = None
) -> Json:
    container: Json = {"name": name, "image": f"registry.example.com/{name}:1"}
    if env_from:
        container["envFrom"] = env_from
    spec: Json = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
    }
    if paused:
        spec["paused"] = True
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


async def edit_bundle(kube: KubeClient, namespace: str, name: str, change: Any) -> Json:
    """Read the Bundle, let `change` edit its spec in place, and write it back (as `kubectl edit` does);
    when Smith wrote its status in between (409), read it again and redo the edit, as kubectl would."""
    for _ in range(5):
        current = await get_bundle(kube, namespace, name)
        change(current["spec"])
        with contextlib.suppress(ConflictError):
            return await kube.replace(current)
    raise AssertionError(f"Bundle {name} kept changing under the edit")


async def exists(kube: KubeClient, api_version: str, kind: str, name: str, namespace: str) -> bool:
    try:
        await kube.get(api_version, kind, name, namespace)
    except NotFoundError:
        return False
    return True


async def finished_trace(
    smith: Any, namespace: str, name: str, holding: Callable[[list[Any]], bool], *, within: float = 10
) -> list[Any]:
    """The spans of the first finished reconcile of the Bundle whose trace satisfies `holding`.

    Smith writes a Bundle's status inside the reconcile, so a test that has just seen the status may be
    a moment ahead of the end of that reconcile's root span: wait for the trace instead of reading it.
    """
    found: list[Any] = []

    async def done() -> bool:
        nonlocal found
        spans = smith.spans.get_finished_spans()
        for root in (s for s in spans if s.name == f"reconcile {namespace}/{name}"):
            found = [s for s in spans if s.context.trace_id == root.context.trace_id]
            if holding(found):
                return True
        return False

    await eventually(done, within=within, what=f"a finished reconcile of {name}")
    return found


# --- a custom resource whose readiness the test sets (the Sleeper, ready when its status says Awake) ---


def unique_group() -> str:
    return f"g{uuid.uuid4().hex[:8]}.smith.test"


async def install(kube: KubeClient, definition: Json) -> None:
    with contextlib.suppress(ConflictError):
        await kube.create(definition)


def sleeper(group: str, name: str = "nap") -> Json:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Sleeper",
        "metadata": {"name": name},
        "spec": {"sleepFor": 1},
    }


async def wake(kube: KubeClient, group: str, namespace: str, name: str = "nap") -> None:
    """The test's stand-in for the Sleeper's controller: set its status."""

    async def woken() -> bool:
        try:
            await kube.patch(
                f"{group}/v1",
                "Sleeper",
                name,
                {"status": {"state": "Awake", "address": "10.1.2.3"}},
                namespace=namespace,
                subresource="status",
            )
        except NotFoundError:
            return False
        return True

    await eventually(woken, what="the Sleeper to exist")


def nested(depth: int) -> str:
    """JSON text of a map nested `depth` levels deep."""
    return '{"a":' * depth + '"leaf"' + "}" * depth


async def post(kube: KubeClient, obj: Json, **texts: str) -> None:
    """Create `obj` with each string value named in `texts` replaced by that JSON text, posted as text:
    Smith's own client writes no JSON deeper than Python's recursion reaches."""
    text = json.dumps(obj)
    for placeholder, replacement in texts.items():
        text = text.replace(json.dumps(placeholder), replacement)
    meta = obj["metadata"]
    info = await kube.resource(obj["apiVersion"], obj["kind"])
    path = info.path(meta.get("namespace"))
    async with kube._send(
        "POST", path, data=text.encode(), headers={"Content-Type": "application/json"}
    ) as r:
        if r.status != 201:
            raise ApiError(r.status, json.loads(await r.read()))
