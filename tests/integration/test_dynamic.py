"""Custom resources: CRDs enabled for Smith by annotation, learnt at run time, and refused clearly
when not enabled."""

from __future__ import annotations

from typing import Any

import pytest

from live import (
    bundle,
    condition,
    deployment_object,
    get_bundle,
    install,
    resource_condition,
    sleeper,
    unique_group,
    until_condition,
    wake,
)
from smith_engine.model import API_VERSION
from smith_engine.readiness import READY_WHEN_PATH, READY_WHEN_VALUE, SUPPORT_ENABLED
from smith_kube import KubeClient, NotFoundError
from support import config_map, crd_object, eventually, resource

pytestmark = pytest.mark.controlplane

Json = dict[str, Any]


async def test_custom_resource_becomes_ready_from_its_status_and_feeds_a_dependent(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    group = unique_group()
    await install(
        kube, crd_object(group, "Sleeper", **{READY_WHEN_PATH: "{$.status.state}", READY_WHEN_VALUE: "Awake"})
    )
    app = deployment_object("app", replicas=1)
    app["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "ADDR", "value": "!{addr}"}]
    refs = [{"name": "addr", "resource": "sleeper", "path": "status.address"}]
    await kube.create(
        bundle("dyn", namespace, resource("sleeper", sleeper(group)), resource("app", app, references=refs))
    )

    async def sleeping() -> bool:
        got = await get_bundle(kube, namespace, "dyn")
        return "waiting for {$.status.state}" in resource_condition(got, "sleeper", "InProgress").get(
            "message", ""
        )

    await eventually(sleeping, what="the Sleeper to be in progress until it is awake")
    assert resource_condition(await get_bundle(kube, namespace, "dyn"), "app", "Blocked")["status"] == "True"
    await wake(kube, group, namespace)

    async def deployed() -> bool:
        try:
            made = await kube.get("apps/v1", "Deployment", "app", namespace)
        except NotFoundError:
            return False
        return bool(
            made["spec"]["template"]["spec"]["containers"][0]["env"]
            == [{"name": "ADDR", "value": "10.1.2.3"}]
        )

    await eventually(deployed, what="the Deployment with the Sleeper's address")


async def test_crd_installed_after_the_bundle_is_learnt_without_a_restart(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    group = unique_group()
    await kube.create(
        bundle(
            "early",
            namespace,
            resource(
                "thing",
                {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}},
            ),
            resource("after", depends_on=["thing"]),
        )
    )
    waiting = await until_condition(kube, namespace, "early", "Error")
    assert condition(waiting, "Error")["reason"] == "TerminalError"
    message = resource_condition(waiting, "thing", "Error")["message"]
    assert f"Smith does not manage Widget.{group}: it manages ConfigMap, " in message
    assert "SupportEnabled" in message
    await install(kube, crd_object(group, "Widget", **{SUPPORT_ENABLED: "true"}))
    await until_condition(kube, namespace, "early", "Ready", within=60)
    assert (await kube.get("v1", "ConfigMap", "after", namespace))["metadata"]["name"] == "after"


async def test_custom_resource_of_a_crd_not_enabled_is_refused(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    group = unique_group()
    await install(kube, crd_object(group, "Gadget"))

    async def served() -> bool:
        executor = await kube.get(API_VERSION, "Executor", "dynamic", "smith-system")
        return {"group": group, "kind": "Gadget"} in executor["spec"]["kinds"]

    await eventually(served, what="the dynamic executor to serve Gadget")
    await kube.create(
        bundle(
            "nope",
            namespace,
            resource("g", {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}}),
            resource("ok", config_map("ok")),
        )
    )
    done = await until_condition(kube, namespace, "nope", "Error")
    error = resource_condition(done, "g", "Error")
    assert error["reason"] == "TerminalError"
    assert f"CRD gadgets.{group} is not enabled for Smith" in error["message"]
    with pytest.raises(NotFoundError):
        await kube.get(f"{group}/v1", "Gadget", "g", namespace)
