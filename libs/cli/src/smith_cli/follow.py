"""Bundles as the API server has them, followed from a watch that outlives the server: a list, then a
watch from its resourceVersion; when the watch ends or breaks (the API server restarting, a 410 Gone,
the network gone), a snapshot says so and the list and watch start again once the server answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from smith_engine.model import API_VERSION, BUNDLE_KIND, JSONObject
from smith_kube import ApiError, GoneError, KubeClient, TransportError

RECONNECT_SECONDS = 1.0


class AccessError(Exception):
    """The server answered, and will not change its mind (forbidden, not served): one line for the user."""


@dataclass(frozen=True)
class Snapshot:
    """The Bundles last seen, by name; `trouble` says why they may be out of date (empty: connected)."""

    bundles: Mapping[str, JSONObject] = field(default_factory=dict)
    trouble: str = ""

    @property
    def connected(self) -> bool:
        return not self.trouble


async def follow(
    kube: KubeClient, namespace: str, names: Sequence[str] | None = None
) -> AsyncIterator[Snapshot]:
    """Every change to the Bundles of `namespace`, as whole snapshots (one Bundle named: only it is read)."""
    selector = f"metadata.name={names[0]}" if names and len(names) == 1 else None
    bundles: dict[str, JSONObject] = {}
    while True:
        try:
            listing = await kube.list(API_VERSION, BUNDLE_KIND, namespace, field_selector=selector)
            bundles = {item["metadata"]["name"]: item for item in listing["items"]}
            yield Snapshot(dict(bundles))
            async for event in kube.watch(
                API_VERSION,
                BUNDLE_KIND,
                namespace,
                resource_version=listing["metadata"]["resourceVersion"],
                field_selector=selector,
            ):
                if event.type == "BOOKMARK":
                    continue
                key = event.object["metadata"]["name"]
                if event.type == "DELETED":
                    bundles.pop(key, None)
                else:
                    bundles[key] = event.object
                yield Snapshot(dict(bundles))
            continue  # the server ended the watch (its timeout): list and watch again
        except GoneError:
            continue  # the version is too old to watch from: a fresh list
        except ApiError as e:
            if not e.retriable:
                raise AccessError(str(e)) from None
            trouble = str(e)
        except TransportError as e:
            trouble = str(e)
        yield Snapshot(dict(bundles), trouble)
        await asyncio.sleep(RECONNECT_SECONDS)


async def first(kube: KubeClient, namespace: str, names: Sequence[str] | None = None) -> Snapshot:
    """The Bundles of `namespace` (only `names`' are sure to be there) as they are now, or why not."""
    async for snapshot in follow(kube, namespace, names):
        return snapshot
    raise AssertionError("follow() never ends")
