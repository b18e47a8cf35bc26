"""The plugin API as the API server enforces it (the Bundle CRD): a resource has exactly one of an object
and `spec.plugin: {name, objectName, spec}`."""

from __future__ import annotations

from typing import Any

import pytest

from live import bundle
from smith_kube import ApiError, KubeClient
from support import config_map

pytestmark = pytest.mark.controlplane


async def test_a_resource_with_an_object_and_a_plugin_is_refused_by_the_crd(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    plugin = {"name": "app", "objectName": "web", "spec": {"image": "web:1"}}
    both = {"name": "web", "spec": {"plugin": plugin, "object": config_map("web")}}
    with pytest.raises(ApiError, match="exactly one of an object") as raised:
        await kube.create(bundle("both", namespace, both))
    assert raised.value.status == 422
    direct = {"name": "web", "spec": {"plugin": plugin, **config_map("web")}}
    with pytest.raises(ApiError, match="exactly one of an object"):
        await kube.create(bundle("direct", namespace, direct))
    nameless = {"name": "web", "spec": {"plugin": {"name": "app"}}}
    with pytest.raises(ApiError, match="objectName: Required value"):
        await kube.create(bundle("nameless", namespace, nameless))
