"""`smith wait`: watch one Bundle until its condition is True. A watch that ends, or breaks (the API
server restarting, a 410 Gone), is started again from a fresh read: a script waiting in CI rides it out."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from smith_engine.conditions import by_type
from smith_engine.model import API_VERSION, BUNDLE_KIND, JSONObject
from smith_kube import ApiError, KubeClient, KubeConfig, NotFoundError

RECONNECT_SECONDS = 1.0


class WaitError(Exception):
    """Why the wait ended without the condition: one line for the user."""


def _reached(bundle: JSONObject, condition: str) -> str | None:
    """A one-line report when `bundle` has its condition `ready` or `error` True, else None."""
    conditions = by_type((bundle.get("status") or {}).get("conditions"))
    found = conditions.get("Ready" if condition == "ready" else "Error") or {}
    if found.get("status") != "True":
        return None
    name = bundle["metadata"]["name"]
    said = found.get("message") or found.get("reason") or ""
    return f"bundle {name!r} is {'Ready' if condition == 'ready' else 'in Error'}" + (
        f": {said}" if said else ""
    )


async def wait_for(config: KubeConfig, name: str, namespace: str, condition: str, within: float) -> str:
    kube = KubeClient(config)
    trouble: list[str] = []  # the last reason the cluster could not be read, if any
    try:
        async with asyncio.timeout(within):
            return await _watch(kube, name, namespace, condition, trouble)
    except TimeoutError:
        why = f" (cannot reach the cluster at {config.server}: {trouble[-1]})" if trouble else ""
        raise WaitError(
            f"timed out after {within:g}s waiting for bundle {name!r} to be {condition}{why}"
        ) from None
    finally:
        await kube.close()


async def _watch(kube: KubeClient, name: str, namespace: str, condition: str, trouble: list[str]) -> str:
    while True:
        try:
            bundle = await kube.get(API_VERSION, BUNDLE_KIND, name, namespace)
        except NotFoundError:
            raise WaitError(f"bundle {name!r} not found in namespace {namespace!r}") from None
        except (ApiError, aiohttp.ClientError, OSError) as e:
            if isinstance(e, ApiError) and not e.retriable:
                raise WaitError(f"cannot read bundle {name!r}: {e}") from None
            trouble.append(str(e) or type(e).__name__)
            await asyncio.sleep(RECONNECT_SECONDS)  # unreachable for now: try again
            continue
        trouble.clear()
        if (done := _reached(bundle, condition)) is not None:
            return done
        with contextlib.suppress(ApiError, aiohttp.ClientError, OSError):
            async for event in kube.watch(
                API_VERSION,
                BUNDLE_KIND,
                namespace,
                resource_version=bundle["metadata"]["resourceVersion"],
                field_selector=f"metadata.name={name}",
            ):
                if event.type == "DELETED":
                    raise WaitError(f"bundle {name!r} was deleted")
                if (done := _reached(event.object, condition)) is not None:
                    return done
        await asyncio.sleep(RECONNECT_SECONDS)
