"""Trust between the services, tried as an attacker would on the real plane: a call with no identity, or
with a tenant's, does nothing; the executors and the status service re-check what even the controller
asks; certificates and the controller's token rotate with nothing restarted."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest
from smith_executor import registration
from smith_wire.convert import action_to_proto
from smith_wire.trust import audience

from live import bundle, exists, get_bundle, until_condition
from smith.v1 import (
    common_pb2,
    executor_pb2,
    executor_pb2_grpc,
    planner_pb2,
    planner_pb2_grpc,
    plugin_pb2,
    plugin_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
)
from smith_controlplane.trust import account_token
from smith_engine.model import API_VERSION, Bundle, GroupKind, ObjectRef
from smith_engine.planner import Apply, Delete, owner_reference
from smith_kube import KubeClient

KUBE_SYSTEM = "kube-system"
ATTACKER = "an attacker was here"


def cluster_admin_binding(namespace: str, name: str = "smith-pwned") -> dict[str, Any]:
    """What an attacker asks an executor for: its own account bound to cluster-admin in kube-system."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": KUBE_SYSTEM},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    }


def config_map(name: str, namespace: str, owner: Bundle | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def credentials(smith: Any, token: str | None) -> grpc.ChannelCredentials:
    tls = grpc.ssl_channel_credentials(smith.trust.ca.read_bytes())
    if token is None:
        return tls
    return grpc.composite_channel_credentials(tls, grpc.access_token_call_credentials(token))


async def endpoints(smith: Any) -> dict[str, str]:
    """Every gRPC server of the running system, by what it is."""
    found = {
        "planner": f"127.0.0.1:{smith.planner_port}",
        "status": f"127.0.0.1:{smith.status_port}",
    }
    for name in ("core", "servicecatalog", "dynamic"):
        executor = await smith.kube.get(API_VERSION, "Executor", name, "smith-system")
        found[f"executor-{name}"] = executor["spec"]["endpoint"]
    plugin = await smith.kube.get(API_VERSION, "Plugin", "app", "smith-system")
    found["plugin-app"] = plugin["spec"]["endpoint"]
    return found


def ref_of(b: dict[str, Any]) -> common_pb2.BundleRef:
    meta = b["metadata"]
    return common_pb2.BundleRef(namespace=meta["namespace"], name=meta["name"], uid=meta.get("uid", ""))


async def call(server: str, channel: grpc.aio.Channel, bundle_ref: common_pb2.BundleRef, attack: Any) -> Any:
    """One call of the server's main method, as the attacker makes it."""
    if server == "planner":
        return await planner_pb2_grpc.PlannerStub(channel).Plan(planner_pb2.PlanRequest(), timeout=10)
    if server == "status":
        report = status_pb2.ReportRequest(
            bundle=bundle_ref, previous_status_json=b"{}", invalid_bundle_message=ATTACKER
        )
        return await status_pb2_grpc.StatusStub(channel).Report(report, timeout=10)
    if server == "plugin-app":
        process = plugin_pb2.ProcessRequest(bundle=bundle_ref, spec_json=b"{}", plugin="app")
        return await plugin_pb2_grpc.PluginStub(channel).Process(process, timeout=10)
    apply = executor_pb2.ApplyRequest(bundle=bundle_ref, actions=[action_to_proto(Apply("attack", attack))])
    return await executor_pb2_grpc.ExecutorStub(channel).Apply(apply, timeout=10)


async def bound(kube: KubeClient, name: str = "smith-pwned") -> bool:
    return await exists(kube, "rbac.authorization.k8s.io/v1", "RoleBinding", name, KUBE_SYSTEM)


async def victim_deployment(kube: KubeClient, namespace: str) -> dict[str, Any]:
    """A Deployment in another namespace than the Bundle's, which an attacker asks to be deleted."""
    victim_ns = f"{namespace}-victim"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": victim_ns}})
    labels = {"app": "victim"}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}
    return await kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "victim", "namespace": victim_ns},
            "spec": {"selector": {"matchLabels": labels}, "template": pod},
        }
    )


@pytest.mark.parametrize("identity", ["none", "tenant", "replayed", "api-audience"])
async def test_a_call_without_the_controllers_identity_is_refused_by_every_server_and_does_nothing(
    kube: KubeClient, namespace: str, smith: Any, identity: str
) -> None:
    """No token: UNAUTHENTICATED. A tenant's ServiceAccount token for the server's own audience:
    authenticated, and PERMISSION_DENIED. The controller's token for another server (the plugin, which
    could replay what it is sent) or for the API server: UNAUTHENTICATED."""
    target = ref_of(await kube.create(bundle("target", namespace)))
    victim = await victim_deployment(kube, namespace)
    for server, endpoint in (await endpoints(smith)).items():
        if identity == "replayed" and server == "plugin-app":
            continue  # that token is the plugin's own to take
        token = {
            "none": None,
            "tenant": await account_token(kube, namespace, "tenant", audience=audience(server)),
            "replayed": await controller_token(kube, "plugin-app"),
            "api-audience": await account_token(
                kube, "smith-system", "smith-controller", audience="https://kubernetes.default.svc"
            ),
        }[identity]
        async with grpc.aio.secure_channel(endpoint, credentials(smith, token)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(server, channel, target, cluster_admin_binding(namespace))
        expected = (
            grpc.StatusCode.PERMISSION_DENIED if identity == "tenant" else grpc.StatusCode.UNAUTHENTICATED
        )
        assert refused.value.code() == expected, (server, refused.value)
        if server.startswith("executor-"):
            async with grpc.aio.secure_channel(endpoint, credentials(smith, token)) as channel:
                delete = executor_pb2.DeleteRequest(
                    bundle=target, actions=[action_to_proto(Delete(ObjectRef.of(victim), "victim"))]
                )
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await executor_pb2_grpc.ExecutorStub(channel).Delete(delete, timeout=10)
            assert refused.value.code() == expected, (server, refused.value)
    assert not await bound(kube)
    assert await exists(kube, "apps/v1", "Deployment", "victim", victim["metadata"]["namespace"])
    assert ATTACKER not in json.dumps(await get_bundle(kube, namespace, "target"))  # no status written


async def test_plain_text_is_not_served(smith: Any) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{smith.planner_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await planner_pb2_grpc.PlannerStub(channel).Plan(planner_pb2.PlanRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def controller_token(kube: KubeClient, server: str) -> str:
    return await account_token(kube, "smith-system", "smith-controller", audience=audience(server))


async def owning_bundle(kube: KubeClient, namespace: str) -> tuple[dict[str, Any], Bundle]:
    made = await kube.create(bundle("owner", namespace))
    meta = made["metadata"]
    return made, Bundle(namespace=namespace, name=meta["name"], uid=meta["uid"])


async def test_an_executor_refuses_what_even_the_controller_must_not_ask(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """With the controller's own identity: an object in another namespace, an object that does not name
    the Bundle its controller, an existing object someone else (or nobody) controls, a Bundle uid that
    is not the Bundle's, a Bundle that does not exist. Each refused, nothing written."""
    made, owner = await owning_bundle(kube, namespace)
    elsewhere = f"{namespace}-other"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": elsewhere}})
    theirs = await kube.create(config_map("theirs", namespace, a="1"))
    asks = {
        "elsewhere": (config_map("elsewhere", elsewhere, owner), False),
        "unowned": (config_map("unowned", namespace), True),
        "theirs": (config_map("theirs", namespace, owner, a="2"), False),
        "binding": (cluster_admin_binding(namespace), True),
    }
    token = await controller_token(kube, "executor-core")
    async with grpc.aio.secure_channel(smith.executor_endpoint, credentials(smith, token)) as channel:
        stub = executor_pb2_grpc.ExecutorStub(channel)
        actions = [
            action_to_proto(Apply(name, obj, expect_absent=absent)) for name, (obj, absent) in asks.items()
        ]
        answer = await stub.Apply(executor_pb2.ApplyRequest(bundle=ref_of(made), actions=actions), timeout=10)
        errors = {r.resource_name: r.error_message for r in answer.results}
        assert all(not r.ok and r.terminal for r in answer.results), answer
        assert "not in Bundle" in errors["elsewhere"]
        assert "as its controller" in errors["unowned"]
        assert "does not take over" in errors["theirs"]
        assert "not in Bundle" in errors["binding"]

        for wrong in (
            common_pb2.BundleRef(namespace=namespace, name="owner", uid="not-its-uid"),
            common_pb2.BundleRef(namespace=namespace, name="nobody", uid=owner.uid),
            common_pb2.BundleRef(namespace=namespace, name="owner"),
        ):
            request = executor_pb2.ApplyRequest(
                bundle=wrong, actions=[action_to_proto(Apply("c", config_map("c", namespace, owner)))]
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Apply(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        delete = executor_pb2.DeleteRequest(
            bundle=ref_of(made), actions=[action_to_proto(Delete(ObjectRef.of(theirs), "theirs"))]
        )
        (deleted,) = (await stub.Delete(delete, timeout=10)).results
        assert not deleted.ok
        assert "does not take over" in deleted.error_message

    for name, ns in (("elsewhere", elsewhere), ("unowned", namespace), ("c", namespace)):
        assert not await exists(kube, "v1", "ConfigMap", name, ns)
    assert (await kube.get("v1", "ConfigMap", "theirs", namespace))["data"] == {"a": "1"}
    assert not await bound(kube)


async def test_an_executor_deletes_only_what_the_bundle_controls_in_its_namespace(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """A Deployment in another namespace, asked to be deleted for a Bundle that exists: refused."""
    made, _ = await owning_bundle(kube, namespace)
    victim = await victim_deployment(kube, namespace)
    token = await controller_token(kube, "executor-core")
    async with grpc.aio.secure_channel(smith.executor_endpoint, credentials(smith, token)) as channel:
        delete = action_to_proto(Delete(ObjectRef.of(victim), "victim"))
        answer = await executor_pb2_grpc.ExecutorStub(channel).Delete(
            executor_pb2.DeleteRequest(bundle=ref_of(made), actions=[delete]), timeout=10
        )
    (refused,) = answer.results
    assert not refused.ok
    assert refused.terminal
    assert await exists(kube, "apps/v1", "Deployment", "victim", victim["metadata"]["namespace"])


async def test_the_status_service_reports_only_on_the_bundle_whose_uid_it_is(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await owning_bundle(kube, namespace)
    token = await controller_token(kube, "status")
    stale = common_pb2.BundleRef(namespace=namespace, name="owner", uid="an-earlier-bundle")
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{smith.status_port}", credentials(smith, token)
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await status_pb2_grpc.StatusStub(channel).Report(
                status_pb2.ReportRequest(
                    bundle=stale, previous_status_json=b"{}", invalid_bundle_message="x"
                ),
                timeout=10,
            )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is uid" in (refused.value.details() or "")
    conditions = (await get_bundle(kube, namespace, "owner")).get("status", {}).get("conditions", [])
    assert all(c.get("message") != "x" for c in conditions)  # the report's "invalid" was not written


async def test_an_executor_cannot_take_the_kinds_another_serves(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """A second registration claiming ConfigMaps (as anyone who may create Executors could publish):
    refused, told in its status; ConfigMaps still go to executor-core."""
    rogue = registration.executor_object(
        name="rogue", namespace="smith-system", endpoint="127.0.0.1:1", kinds=[GroupKind("", "ConfigMap")]
    )
    await kube.apply(rogue, field_manager="attacker")
    try:
        refused = await registration.tell_claims(kube, name="rogue", namespace="smith-system")
        assert {str(k): owner for k, owner in refused.items()} == {"ConfigMap": "core"}
        status = (await kube.get(API_VERSION, "Executor", "rogue", "smith-system"))["status"]
        (accepted,) = status["conditions"]
        assert (accepted["type"], accepted["status"], accepted["reason"]) == (
            "KindsAccepted",
            "False",
            "KindClaimed",
        )
        await kube.create(
            bundle("cm", namespace, {"name": "cfg", "spec": config_map("cfg", namespace, a="1")})
        )
        await until_condition(kube, namespace, "cm", "Ready", within=30)
    finally:
        await kube.delete(API_VERSION, "Executor", "rogue", namespace="smith-system")


async def test_certificates_and_the_controllers_token_rotate_with_nothing_restarted(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """A new CA (the old one no longer trusted), new serving certificates, a new token, each file
    replaced in place as cert-manager and the kubelet do. The status service's connection is made anew
    (its server restarted on its port): the controller's channel trusts the new CA only if it was made
    again. A Bundle made after converges; the servers were shown the new token."""
    await kube.create(
        bundle("before", namespace, {"name": "cfg", "spec": config_map("before", namespace, a="1")})
    )
    await until_condition(kube, namespace, "before", "Ready", within=30)
    old_token = (smith.trust.tokens / "status").read_text()
    await smith.trust.rotate(kube, keep_old_ca=False)
    new_token = (smith.trust.tokens / "status").read_text()
    assert new_token != old_token
    await smith.restart_status()
    await kube.create(
        bundle("after", namespace, {"name": "cfg", "spec": config_map("after", namespace, a="1")})
    )
    await until_condition(kube, namespace, "after", "Ready", within=60)
    assert hashlib.sha256(new_token.encode()).hexdigest() in smith.reviewed
    for port in (smith.planner_port, smith.status_port):  # both serve certificates of the new CA now
        assert await served_issuer(port, smith.trust.ca) == "smith-local-ca"


async def served_issuer(port: int, ca: Path) -> str:
    """The issuer of the certificate a server presents to a new connection, verified against `ca`."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    try:
        cert = writer.get_extra_info("peercert")
        return str(dict(pair[0] for pair in cert["issuer"])["commonName"])
    finally:
        writer.close()
