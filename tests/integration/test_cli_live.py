"""`smith wait` against the real control plane, run as a user runs it (its own process, $KUBECONFIG):
it returns once the Bundle is Ready, and says in one line why not otherwise."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from live import SMITH, bundle, deployment_object, exists, run_smith
from smith_kube import KubeClient
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


async def test_wait_returns_once_the_bundle_is_ready(
    kube: KubeClient, namespace: str, smith: Any, kubeconfig: Path
) -> None:
    waiting = asyncio.create_task(run_smith(kubeconfig, "wait", "soon", "-n", namespace, "--timeout", "60"))
    await asyncio.sleep(1)  # the Bundle does not exist yet when the wait starts reading: not found
    await kube.create(bundle("soon", namespace, resource("a"), resource("b", depends_on=["a"])))
    code, out, err = await waiting
    if code == 1 and "not found" in err:  # it looked before the Bundle existed: wait again, it exists now
        code, out, err = await run_smith(kubeconfig, "wait", "soon", "-n", namespace, "--timeout", "60")
    assert (code, out, err) == (0, "bundle 'soon' is Ready: AllResourcesReady\n", "")


async def test_wait_says_why_not_in_one_line(kube: KubeClient, namespace: str, kubeconfig: Path) -> None:
    code, out, err = await run_smith(kubeconfig, "wait", "nothere", "-n", namespace)
    assert (code, out) == (1, "")
    assert err == f"Error: bundle 'nothere' not found in namespace '{namespace}'\n"
    await kube.create(bundle("stuck", namespace, resource("a")))  # it will never be in Error
    code, out, err = await run_smith(
        kubeconfig, "wait", "stuck", "-n", namespace, "--for", "error", "--timeout", "2"
    )
    assert (code, err) == (1, "Error: timed out after 2s waiting for bundle 'stuck' to be error\n")


async def test_status_shows_the_tree_and_follows_changes(
    kube: KubeClient, namespace: str, smith: Any, kubeconfig: Path
) -> None:
    await kube.create(bundle("shop", namespace, resource("config"), resource("app", depends_on=["config"])))
    code, out, err = await run_smith(kubeconfig, "wait", "shop", "-n", namespace, "--timeout", "60")
    assert code == 0, err
    code, out, err = await run_smith(kubeconfig, "status", "shop", "-n", namespace)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("✓ shop  2/2  Ready AllResourcesReady")
    assert lines[1].startswith("├── ✓ config  ConfigMap config  Ready Ready")
    assert lines[2].startswith("└── ✓ app  ConfigMap app  Ready Ready")
    assert lines[2].endswith("after config")

    code, out, err = await run_smith(kubeconfig, "status", "nothere", "-n", namespace)
    assert (code, out, err) == (1, "", f"Error: bundle 'nothere' not found in namespace '{namespace}'\n")

    watching = await _watching(kubeconfig, "status", "--watch", "-n", namespace)
    assert watching.stdout is not None
    first = (await asyncio.wait_for(watching.stdout.readline(), 30)).decode()
    assert first.split() == ["shop", "Ready", "2/2", "config:Ready", "app:Ready"]
    await kube.create(bundle("later", namespace, resource("more")))
    seen: list[str] = []
    async with asyncio.timeout(60):
        while not any(line.split()[:2] == ["later", "Ready"] for line in seen):
            seen.append((await watching.stdout.readline()).decode())
    assert await _stopped(watching, signal.SIGINT) == 0

    # Started as a shell's background job starts it (SIGINT ignored), it still stops on Ctrl-C and on
    # SIGTERM, cleanly.
    for stop in (signal.SIGINT, signal.SIGTERM):
        watching = await _watching(kubeconfig, "status", "--watch", "-n", namespace, sigint_ignored=True)
        assert watching.stdout is not None
        await asyncio.wait_for(watching.stdout.readline(), 30)
        assert await _stopped(watching, stop) == 0


async def _watching(kubeconfig: Path, *args: str, sigint_ignored: bool = False) -> asyncio.subprocess.Process:
    """`smith ARGS` running on, its stdout to read; a traceback of every thread if it is sent SIGABRT."""
    ignoring = ["sh", "-c", 'trap "" INT && exec "$0" "$@"'] if sigint_ignored else []
    return await asyncio.create_subprocess_exec(
        *ignoring,
        str(SMITH),
        *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONFAULTHANDLER": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _stopped(process: asyncio.subprocess.Process, stop: signal.Signals) -> int | None:
    """The exit code of `process` sent `stop`; one that does not end in 10 s fails the test with what it
    was doing (its threads' tracebacks) and said."""
    assert process.stderr is not None
    said = asyncio.create_task(process.stderr.read())
    process.send_signal(stop)
    try:
        return await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.send_signal(signal.SIGABRT)
        await process.wait()
        raise AssertionError(f"still running 10 s after {stop.name}:\n{(await said).decode()}") from None


async def test_plan_against_the_cluster_says_what_each_resource_would_do(
    kube: KubeClient, namespace: str, smith: Any, kubeconfig: Path, tmp_path: Path
) -> None:
    """create, unchanged, update (with the fields and values a dry run changes), blocked and refused;
    nothing is written."""
    deployment = deployment_object("web", replicas=2)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": "0.5", "memory": "1024Mi"}}  # stored as 500m and 1Gi
    live = bundle(
        "web",
        namespace,
        resource("config", config_map("config", {"mode": "a"})),
        resource("web", deployment, depends_on=["config"]),
    )
    await kube.create(live)

    async def made() -> bool:  # (no controller-manager here: the Deployment is made, never Available)
        return await exists(kube, "apps/v1", "Deployment", "web", namespace)

    await eventually(made, what="the Deployment")
    taken = config_map("taken", {"k": "v"})
    await kube.create({**taken, "metadata": {"name": "taken", "namespace": namespace}})

    changed = copy.deepcopy(live)
    changed["spec"]["resources"][0]["spec"]["object"]["data"] = {"mode": "b"}
    changed["spec"]["resources"] += [
        resource("extra", config_map("extra", {"k": "v"})),
        resource("taken", config_map("taken", {"k": "mine"})),
    ]
    file = tmp_path / "web.yaml"
    file.write_text(yaml.safe_dump(changed))
    before = await versions(kube, namespace)

    code, out, err = await run_smith(kubeconfig, "plan", str(file), "--cluster")
    assert (code, err) == (1, ""), "a refusal fails the plan"
    assert f"  against {kube.config.server}, namespace {namespace}:" in out
    assert "  ~ update    config  ConfigMap config\n      data.mode: 'a' → 'b'\n" in out
    assert "  = unchanged web     Deployment web\n" in out, "cpu 0.5 is stored as 500m: no change"
    assert "  + create    extra   ConfigMap extra\n" in out
    assert "  ✗ refused   taken   ConfigMap taken: " in out
    assert "has no controller" in out
    assert await versions(kube, namespace) == before, "nothing was written"


async def versions(kube: KubeClient, namespace: str) -> dict[str, str]:
    """What says an object was written: a ConfigMap's resourceVersion; a Deployment's generation and the
    time of its last write by Smith's field manager (on a full plane its controller writes its status)."""
    found = {}
    for item in (await kube.list("v1", "ConfigMap", namespace))["items"]:
        found[f"ConfigMap/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    for item in (await kube.list("apps/v1", "Deployment", namespace))["items"]:
        meta = item["metadata"]
        smith = [f.get("time", "") for f in meta.get("managedFields") or [] if f.get("manager") == "smith"]
        found[f"Deployment/{meta['name']}"] = f"{meta['generation']} {smith}"
    return found
