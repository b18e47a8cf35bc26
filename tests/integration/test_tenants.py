"""Tenants, on the real plane: a Bundle acts as a ServiceAccount of its namespace, so the API server's
RBAC and escalation checks decide what its author may create through Smith, not the executors' rights."""

from __future__ import annotations

from typing import Any

from live import bundle, exists, get_bundle, resource_condition
from smith_kube import KubeClient
from support import config_map, eventually, resource

RBAC = "rbac.authorization.k8s.io/v1"


async def account(kube: KubeClient, namespace: str, name: str, *, may: dict[str, list[str]]) -> None:
    """ServiceAccount `name` with a Role of its own: `may` maps "group/resource" to verbs."""
    await kube.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    )
    rules = [
        {"apiGroups": [what.split("/")[0]], "resources": [what.split("/")[1]], "verbs": verbs}
        for what, verbs in may.items()
    ]
    meta = {"name": name, "namespace": namespace}
    await kube.create({"apiVersion": RBAC, "kind": "Role", "metadata": meta, "rules": rules})
    await grant(kube, namespace, name, "Role", name)


async def grant(kube: KubeClient, namespace: str, account: str, kind: str, role: str) -> None:
    binding = {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": {"name": f"{account}-{role}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }
    await kube.create(binding)


def binding_to(role: str, name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    }


def privileged_daemon_set() -> dict[str, Any]:
    labels = {"app": "node-agent"}
    container = {
        "name": "agent",
        "image": "busybox:1.36",
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "root", "mountPath": "/host"}],
        "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-agent"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
            },
        },
    }


def acting_as(name: str, namespace: str, account: str, *resources: dict[str, Any]) -> dict[str, Any]:
    made = bundle(name, namespace, *resources)
    made["spec"]["serviceAccountName"] = account
    return made


async def conditions_become(
    kube: KubeClient, namespace: str, name: str, wanted: dict[str, str], *, within: float = 60
) -> dict[str, Any]:
    """Wait until each resource has its `wanted` condition (Ready, Error) True; the Bundle then."""
    seen: dict[str, Any] = {}

    async def there() -> bool:
        nonlocal seen
        seen = await get_bundle(kube, namespace, name)
        return all(resource_condition(seen, r, c).get("status") == "True" for r, c in wanted.items())

    try:
        await eventually(there, within=within, what=f"{name}: {wanted}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last status: {seen.get('status')}") from None
    return seen


async def may(kube: KubeClient, user: str, namespace: str, verb: str, resource: str, group: str = "") -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "resource": resource,
                "group": group,
            },
        },
    }
    answer = await kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
    return bool(answer["status"].get("allowed"))


async def configmaps_only_team(kube: KubeClient, namespace: str, *more: dict[str, Any]) -> None:
    """Bundle `team`, acting as `deployer`, which may write ConfigMaps only: a ConfigMap `cfg`, and `more`."""
    await account(kube, namespace, "deployer", may={"/configmaps": ["get", "create", "patch", "delete"]})
    cfg = resource("cfg", config_map("cfg", {"a": "1"}))
    await kube.create(acting_as("team", namespace, "deployer", cfg, *more))


async def test_a_bundle_gets_what_its_service_account_may_and_a_precise_error_for_the_rest(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """`deployer` may write ConfigMaps only: its Bundle's ConfigMap converges; its RoleBinding to
    cluster-admin and its privileged hostPath DaemonSet get "forbidden" errors naming it, retried with
    back-off (rights may be granted: see the next test); the author gains nothing."""
    await configmaps_only_team(
        kube,
        namespace,
        resource("admin", binding_to("cluster-admin", "tenant-admin", namespace)),
        resource("agent", privileged_daemon_set()),
    )
    user = f"system:serviceaccount:{namespace}:deployer"
    done = await conditions_become(
        kube, namespace, "team", {"cfg": "Ready", "admin": "Error", "agent": "Error"}
    )
    for name in ("admin", "agent"):
        error = resource_condition(done, name, "Error")
        assert error["reason"] == "RetriableError"
        assert "forbidden" in error["message"], error
        assert user in error["message"], error
    assert not await exists(kube, RBAC, "RoleBinding", "tenant-admin", namespace)
    assert not await exists(kube, "apps/v1", "DaemonSet", "node-agent", namespace)
    tenant = f"system:serviceaccount:{namespace}:tenant"
    assert not await may(kube, tenant, namespace, "create", "pods")
    assert not await may(kube, tenant, namespace, "*", "*")


async def test_the_same_bundle_converges_once_its_service_account_is_granted_the_rights(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "stringData": {"k": "v"}}
    await configmaps_only_team(
        kube,
        namespace,
        resource("viewers", binding_to("view", "tenant-view", namespace)),
        resource("token", secret),
    )
    await conditions_become(kube, namespace, "team", {"cfg": "Ready", "viewers": "Error", "token": "Error"})
    more = {
        "apiVersion": RBAC,
        "kind": "Role",
        "metadata": {"name": "more", "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch", "delete"]},
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings"],
                "verbs": ["get", "create", "patch", "delete"],
            },
            {  # binding `view` needs its rights, or `bind` on it
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "resourceNames": ["view"],
                "verbs": ["bind"],
            },
        ],
    }
    await kube.create(more)
    await grant(kube, namespace, "deployer", "Role", "more")
    await conditions_become(kube, namespace, "team", {"cfg": "Ready", "viewers": "Ready", "token": "Ready"})
    assert await exists(kube, RBAC, "RoleBinding", "tenant-view", namespace)


async def test_a_bundle_naming_an_account_that_does_not_exist_writes_nothing(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(acting_as("ghost", namespace, "nobody", resource("cfg", config_map("cfg", {"a": "1"}))))
    done = await conditions_become(kube, namespace, "ghost", {"cfg": "Error"})
    assert f"system:serviceaccount:{namespace}:nobody" in resource_condition(done, "cfg", "Error")["message"]
    assert not await exists(kube, "v1", "ConfigMap", "cfg", namespace)


async def test_with_the_default_every_bundle_acts_as_that_account_of_its_namespace(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """The multi-tenant setting (SMITH_DEFAULT_SERVICE_ACCOUNT): a Bundle naming no account acts as
    `bundle-deployer` of its namespace, which here may write Secrets but not ConfigMaps."""
    await account(kube, namespace, "bundle-deployer", may={"/secrets": ["get", "create", "patch", "delete"]})
    for executor in smith.executors:
        executor.default_account = "bundle-deployer"
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
        await kube.create(
            bundle("plain", namespace, resource("cfg", config_map("cfg")), resource("s", secret))
        )
        done = await conditions_become(kube, namespace, "plain", {"cfg": "Error", "s": "Ready"})
        message = resource_condition(done, "cfg", "Error")["message"]
        assert f"system:serviceaccount:{namespace}:bundle-deployer" in message
    finally:
        for executor in smith.executors:
            executor.default_account = ""
