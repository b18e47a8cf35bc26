"""The Service Catalog's classes and plans as the cluster holds them (for the plan-schema check of
smith_engine.servicecatalog), read by the controller for a pass and by `smith migrate`."""

from __future__ import annotations

import contextlib

from smith_engine.servicecatalog import CATALOG_KINDS
from smith_kube.client import ApiError, JSONObject, KubeClient, UnservedKindError


async def service_catalog(kube: KubeClient) -> list[JSONObject]:
    """Every ClusterServiceClass and ClusterServicePlan, each with its apiVersion and kind; none of a
    kind the cluster does not serve (no Service Catalog) or this client may not read."""
    found: list[JSONObject] = []
    for kind in CATALOG_KINDS:
        with contextlib.suppress(ApiError, UnservedKindError):
            listing = await kube.list(f"{kind.group}/v1beta1", kind.kind)
            found += [
                {**o, "apiVersion": listing.get("apiVersion", ""), "kind": kind.kind}
                for o in listing["items"]
            ]
    return found
