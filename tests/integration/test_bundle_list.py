"""The controller's own list and watch of the Bundles (not kopf's, which held every Bundle's listing
event at once), on the real control plane: a list comes page by page and misses nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from smith_controller import manager
from smith_controller.cache import BundleKey, BundleState
from smith_controller.manager import Controller

from live import bundle, until_condition
from smith_engine.model import API_VERSION, JSONObject
from smith_kube import KubeClient
from support import config_map, resource

pytestmark = pytest.mark.controlplane


async def test_the_bundles_are_listed_page_by_page_and_a_list_forgets_those_it_does_not_show(
    kube: KubeClient, namespace: str, smith: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed again (as a replica back from a lapsed lease does) two Bundles a page: every Bundle of every
    page is known once the last is in, and one the list no longer shows (deleted while no watch looked)
    is forgotten — only then, not at the first page."""
    names = [f"p{i}" for i in range(5)]
    for name in names:
        await kube.create(bundle(name, namespace, resource("c", config_map(f"{name}-c", {"k": "v"}))))
    for name in names:
        await until_condition(kube, namespace, name, "Ready")
    monkeypatch.setattr(manager, "BUNDLES_PAGE", 2)
    gone: BundleKey = (namespace, "gone")
    pages: list[tuple[int, bool, bool]] = []
    listed = Controller._bundles_page

    def page(self: Controller, items: Sequence[JSONObject], first: bool, last: bool) -> None:
        pages.append((len(items), first, gone in self.bundles))
        listed(self, items, first, last)

    monkeypatch.setattr(Controller, "_bundles_page", page)
    body = {"apiVersion": API_VERSION, "kind": "Bundle", "metadata": {"namespace": namespace, "name": "gone"}}

    async def listed_again(controller: Controller) -> set[BundleKey]:
        controller.bundles[gone] = BundleState(json.dumps({**body, "spec": {"resources": []}}).encode())
        controller._catch_up()
        await controller._fresh.wait()
        return set(controller.bundles)

    known = await smith.in_controller(listed_again)
    assert {(namespace, n) for n in names} <= known
    assert gone not in known
    assert len(pages) >= 3, pages
    assert all(size <= 2 for size, _, _ in pages), pages
    assert all(kept for _, _, kept in pages), "forgotten before the last page was in"
