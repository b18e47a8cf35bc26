"""Objects outside a Bundle that it reads, on the real plane: watched by name, kept as their watch
tells, and read from memory by a pass (the API only before the watch has told)."""

from __future__ import annotations

from typing import Any

import pytest
from smith_controller.outside import OutsideWatches, read

from smith_engine.model import ObjectRef
from smith_kube import KubeClient
from support import config_map, eventually

pytestmark = pytest.mark.controlplane

BUNDLE = ("team-a", "app")


async def test_an_outside_object_is_kept_as_its_watch_tells_and_read_from_memory(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[Any] = []
    watches = OutsideWatches(kube, told.append)
    ref = ObjectRef("v1", "ConfigMap", namespace, "team-settings")
    bundle = {"metadata": {"namespace": namespace, "name": "app"}, "spec": {"resources": []}}

    async def kept(value: str | None) -> None:
        async def now() -> bool:
            known, obj = watches.kept(ref)
            if value is None:
                return known and obj is None
            return known and obj is not None and obj["data"]["MODE"] == value

        await eventually(now, what=f"the kept ConfigMap with MODE={value}")

    try:
        watches.set(BUNDLE, [ref])
        await kept(None)  # listed: not there yet
        made = config_map("team-settings", {"MODE": "fast"})
        await kube.create({**made, "metadata": {**made["metadata"], "namespace": namespace}})
        await kept("fast")
        assert BUNDLE in told

        async def no_get(*_: Any, **__: Any) -> Any:
            raise AssertionError("a watched object was read from the API")

        monkeypatch.setattr(kube, "get", no_get)
        (found,) = (await read(kube, bundle, [], [ref], watches)).objects
        assert found["data"] == {"MODE": "fast"}
        assert "managedFields" not in found["metadata"]
        monkeypatch.undo()

        await kube.patch("v1", "ConfigMap", "team-settings", {"data": {"MODE": "slow"}}, namespace=namespace)
        await kept("slow")
        await kube.delete("v1", "ConfigMap", "team-settings", namespace=namespace)
        await kept(None)
        assert (await read(kube, bundle, [], [ref], watches)).objects == []

        watches.set(BUNDLE, ())  # no Bundle reads it any more: not watched, not kept
        assert watches.kept(ref) == (False, None)
    finally:
        await watches.stop()
