"""`smith wait`: follow one Bundle until its condition is True. The watch outlives the API server
restarting (see `follow`): a script waiting in CI rides it out."""

from __future__ import annotations

import asyncio

from smith_cli.follow import AccessError, follow
from smith_engine.conditions import by_type
from smith_engine.model import JSONObject
from smith_kube import KubeClient, KubeConfig


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
    trouble = ""  # why the cluster could not be read last, if it could not
    seen = False
    async with KubeClient(config) as kube:
        try:
            async with asyncio.timeout(within):
                async for snapshot in follow(kube, namespace, [name]):
                    trouble = snapshot.trouble
                    if not snapshot.connected:
                        continue
                    bundle = snapshot.bundles.get(name)
                    if bundle is None:
                        gone = "was deleted" if seen else f"not found in namespace {namespace!r}"
                        raise WaitError(f"bundle {name!r} {gone}")
                    seen = True
                    if (done := _reached(bundle, condition)) is not None:
                        return done
        except AccessError as e:
            raise WaitError(f"cannot read bundle {name!r}: {e}") from None
        except TimeoutError:
            why = f" (cannot reach the cluster at {config.server}: {trouble})" if trouble else ""
            raise WaitError(
                f"timed out after {within:g}s waiting for bundle {name!r} to be {condition}{why}"
            ) from None
    raise AssertionError("follow() never ends")
