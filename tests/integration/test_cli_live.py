"""`smith wait` against the real control plane, run as a user runs it (its own process, $KUBECONFIG):
it returns once the Bundle is Ready, and says in one line why not otherwise."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from live import bundle
from smith_kube import KubeClient
from support import resource

pytestmark = pytest.mark.controlplane
SMITH = Path(sys.executable).parent / "smith"


async def run_smith(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(SMITH),
        *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


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
