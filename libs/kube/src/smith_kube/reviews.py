"""Asking the API server who a token belongs to (TokenReview): how Smith's servers know their callers."""

from __future__ import annotations

from collections.abc import Sequence

from smith_kube.client import KubeClient


async def token_user(kube: KubeClient, token: str, *, audiences: Sequence[str]) -> str | None:
    """The user `token` authenticates for one of `audiences` (e.g.
    `system:serviceaccount:smith-system:smith-controller`), or None when the API server refuses it."""
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": list(audiences)},
    }
    answer = await kube.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=review)
    status = answer.get("status") or {}
    if not status.get("authenticated") or not set(status.get("audiences") or ()) & set(audiences):
        return None
    return str((status.get("user") or {}).get("username") or "") or None
