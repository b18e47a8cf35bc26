"""List, then watch from the list's resourceVersion, forever: the informer loop every Smith watcher
runs. A stale resourceVersion (410) or a broken connection lists again; nothing is missed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from smith_kube.client import GoneError, JSONObject, KubeClient, KubeError, WatchEvent

log = logging.getLogger("smith.kube.informer")
RETRY_SECONDS = 1.0
PAGE = 500  # objects per page of a paged list (as client-go's informers)


async def run_informer(
    kube: KubeClient,
    api_version: str,
    kind: str,
    *,
    on_list: Callable[[Sequence[JSONObject]], None] | None = None,
    on_event: Callable[[WatchEvent], None],
    on_page: Callable[[Sequence[JSONObject], bool, bool], None] | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    synced: asyncio.Event | None = None,
    namespace: str | None = None,
    page: int = PAGE,
) -> None:
    """`on_list` gets every object after each (re)list; `on_event` each change after it. Runs until
    cancelled; UnservedKindError (the kind is not served) propagates. `namespace` limits it to one.

    With `on_page` instead of `on_list`, the list comes in pages of `page` objects, each given to
    `on_page` as it arrives (with whether it is the first, and the last): a kind of 50,000 objects is
    never held whole, parsed, at once. A list that fails part way starts again from its first page."""
    while True:
        try:
            selectors = (label_selector, field_selector)
            if on_page is not None:
                version = await _list_paged(kube, api_version, kind, namespace, selectors, on_page, page)
            else:
                assert on_list is not None, "run_informer needs on_list or on_page"
                version = await _list(kube, api_version, kind, namespace, *selectors, on_list)
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
                        _handle(on_event, event, api_version, kind)
        except GoneError:
            continue
        except KubeError as e:
            log.warning("watch of %s %s failed (%s); listing again", api_version, kind, e)
            await asyncio.sleep(RETRY_SECONDS)


def _handle(on_event: Callable[[WatchEvent], None], event: WatchEvent, api_version: str, kind: str) -> None:
    """One event to its handler: a handler failing on one object (however it was built) is logged, and
    the watch goes on for every other."""
    try:
        on_event(event)
    except Exception as e:
        meta = event.object.get("metadata") or {}
        where = f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")
        log.error(
            "%s %s %s: its %s event was not handled (%s)",
            api_version,
            kind,
            where,
            event.type,
            type(e).__name__,
        )


async def _list_paged(
    kube: KubeClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    selectors: tuple[str | None, str | None],
    on_page: Callable[[Sequence[JSONObject], bool, bool], None],
    size: int,
) -> str:
    """List page by page, each handed to `on_page` and let go; the list's resourceVersion."""
    token: str | None = None
    first = True
    while True:
        page = await kube.list(
            api_version,
            kind,
            namespace,
            label_selector=selectors[0],
            field_selector=selectors[1],
            limit=size,
            continue_from=token,
        )
        items = _typed(page.get("items", []), api_version, kind)
        meta = page.get("metadata", {})
        token = meta.get("continue") or None
        on_page(items, first, token is None)
        first = False
        if token is None:
            return str(meta.get("resourceVersion", ""))


def _typed(items: list[JSONObject], api_version: str, kind: str) -> list[JSONObject]:
    """List items carry no apiVersion and kind of their own: given them first, where a watch event's
    object has them, so that an object serialises the same whichever way it was read."""
    return [item if "kind" in item else {"apiVersion": api_version, "kind": kind, **item} for item in items]


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
    on_list(_typed(listing.get("items", []), api_version, kind))
    return str(listing.get("metadata", {}).get("resourceVersion", ""))
