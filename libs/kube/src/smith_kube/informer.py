"""List, then watch from the list's resourceVersion, forever: the informer loop every Smith watcher
runs. A stale resourceVersion (410) or a broken connection lists again; nothing is missed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import aiohttp

from smith_kube.client import ApiError, GoneError, JSONObject, KubeClient, WatchEvent

log = logging.getLogger("smith.kube.informer")
RETRY_SECONDS = 1.0


async def run_informer(
    kube: KubeClient,
    api_version: str,
    kind: str,
    *,
    on_list: Callable[[Sequence[JSONObject]], None],
    on_event: Callable[[WatchEvent], None],
    label_selector: str | None = None,
    field_selector: str | None = None,
    synced: asyncio.Event | None = None,
    namespace: str | None = None,
) -> None:
    """`on_list` gets every object after each (re)list; `on_event` each change after it. Runs until
    cancelled; UnservedKindError (the kind is not served) propagates. `namespace` limits it to one."""
    while True:
        try:
            version = await _list(kube, api_version, kind, namespace, label_selector, field_selector, on_list)
            if synced is not None:
                synced.set()
            while True:
                async for event in kube.watch(
                    api_version,
                    kind,
                    namespace,
                    resource_version=version,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    timeout_seconds=300,
                ):
                    version = event.object.get("metadata", {}).get("resourceVersion", version)
                    if event.type != "BOOKMARK":
                        on_event(event)
        except GoneError:
            continue
        except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as e:
            log.warning("watch of %s %s failed (%s); listing again", api_version, kind, e)
            await asyncio.sleep(RETRY_SECONDS)


async def _list(
    kube: KubeClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    label_selector: str | None,
    field_selector: str | None,
    on_list: Callable[[Sequence[JSONObject]], None],
) -> str:
    """List, hand the objects to `on_list`, return the list's resourceVersion. A function of its own so
    that the listing is let go before the watch starts: it holds every object in full, and a watch
    lasts as long as the process."""
    listing = await kube.list(
        api_version, kind, namespace, label_selector=label_selector, field_selector=field_selector
    )
    items = listing.get("items", [])
    for item in items:  # list items carry no apiVersion/kind of their own
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
    on_list(items)
    return str(listing.get("metadata", {}).get("resourceVersion", ""))
