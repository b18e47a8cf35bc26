"""Refusals that heal without an edit of the Bundle, as Go Smith treated them: a write the API server
refuses with 403 (an exhausted ResourceQuota, a policy, a right not granted yet) or 404 (a namespace not
there) is a retriable error on its resource, tried again with the controller's capped back-off, so a
raised quota is picked up by itself. Run with a controller that never resyncs: only the retry heals."""

from __future__ import annotations

from typing import Any

from live import bundle, resource_condition, until_condition
from smith_kube import KubeClient
from smith_kube.client import MERGE_PATCH
from support import config_map, resource


def quota(namespace: str, configmaps: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "configmaps", "namespace": namespace},
        "spec": {"hard": {"count/configmaps": str(configmaps)}},
    }


async def set_quota(kube: KubeClient, namespace: str, *, hard: int, used: int) -> None:
    """The quota and its usage as the quota controller (not running on this plane) would record them:
    the API server's quota admission checks a write against them."""
    await kube.apply(quota(namespace, hard), field_manager="platform-team", force=True)
    status = {"status": {"hard": {"count/configmaps": str(hard)}, "used": {"count/configmaps": str(used)}}}
    await kube.patch(
        "v1",
        "ResourceQuota",
        "configmaps",
        status,
        namespace=namespace,
        subresource="status",
        content_type=MERGE_PATCH,
    )


async def test_a_write_over_quota_is_retried_and_converges_once_the_quota_is_raised(
    kube: KubeClient, namespace: str, smith_without_resync: Any
) -> None:
    await set_quota(kube, namespace, hard=1, used=1)
    settings = config_map("settings", {"LOG_LEVEL": "info", "replicas": "3"})
    await kube.create(bundle("app", namespace, resource("settings", settings)))
    refused = await until_condition(kube, namespace, "app", "Error")
    error = resource_condition(refused, "settings", "Error")
    assert error["reason"] == "RetriableError", error  # not terminal: a quota may be raised
    assert "exceeded quota" in error["message"], error
    assert "count/configmaps" in error["message"], error

    await set_quota(kube, namespace, hard=10, used=1)  # the platform team raises it; no edit
    await until_condition(kube, namespace, "app", "Ready", within=90)
    stored = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert stored["data"] == {"LOG_LEVEL": "info", "replicas": "3"}
