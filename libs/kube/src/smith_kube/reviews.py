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


def service_account_user(namespace: str, name: str) -> tuple[str, list[str]]:
    """The user a ServiceAccount authenticates as, and the groups the API server gives it."""
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    return f"system:serviceaccount:{namespace}:{name}", groups


async def may(
    kube: KubeClient,
    user: str,
    groups: Sequence[str],
    *,
    verb: str,
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
) -> bool:
    """Whether the API server's authorizers let `user` (with `groups`) `verb` the object named
    (SubjectAccessReview): what a Bundle's ServiceAccount may read, asked before Smith reads it for it."""
    info = await kube.resource(api_version, kind)
    attributes = {
        "verb": verb,
        "group": api_version.rpartition("/")[0],
        "version": api_version.rpartition("/")[2],
        "resource": info.plural,
        "namespace": namespace,
        "name": name,
    }
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": list(groups), "resourceAttributes": attributes},
    }
    answer = await kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
    return bool((answer.get("status") or {}).get("allowed"))
