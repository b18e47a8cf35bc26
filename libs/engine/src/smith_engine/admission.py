"""What an executor or the status service re-checks before it writes for a Bundle, whoever asks. Pure.

The controller is the only caller the servers accept (smith_wire.trust), but a caller is not trusted
with what it asks: an executor writes an object only of a kind it serves, in the Bundle's own namespace,
for a Bundle that exists with the uid the request names, and only an object that Bundle controls (or
will control: the object it writes names the Bundle as its controller). It deletes only what the
Bundle controls, and only that incarnation (a uid precondition)."""

from __future__ import annotations

from collections.abc import Container

from smith_engine.model import Bundle, GroupKind, JSONObject, ObjectKey, ObjectRef
from smith_engine.planner import controlled_by


def bundle_problem(bundle: Bundle, uid: str | None) -> str | None:
    """Why nothing may be done for `bundle` when the API server says its uid is `uid` (None: no such
    Bundle), or None when the request's Bundle is the one that exists."""
    if not bundle.uid:
        return f"the request names Bundle {bundle} without its uid"
    if uid is None:
        return f"Bundle {bundle} does not exist"
    if uid != bundle.uid:
        return f"Bundle {bundle} is uid {uid}, not the uid {bundle.uid} the request names"
    return None


def _place_problem(
    key: ObjectKey, namespace: str | None, bundle: Bundle, served: Container[GroupKind]
) -> str | None:
    if key.group_kind not in served:
        return f"this executor does not serve {key.group_kind}"
    if namespace != bundle.namespace:
        return f"{key} is in namespace {namespace!r}, not in Bundle {bundle}'s namespace"
    return None


def write_problem(obj: JSONObject, bundle: Bundle, served: Container[GroupKind]) -> str | None:
    """Why `obj` must not be applied for `bundle` by an executor serving `served`, or None."""
    key = ObjectKey.of(obj)
    if problem := _place_problem(key, obj.get("metadata", {}).get("namespace"), bundle, served):
        return problem
    if not controlled_by(obj, bundle):
        return f"{key} does not name Bundle {bundle} (uid {bundle.uid}) as its controller"
    return None


def delete_problem(ref: ObjectRef, bundle: Bundle, served: Container[GroupKind]) -> str | None:
    """Why the object `ref` names must not be deleted for `bundle`, before it is read, or None."""
    return _place_problem(ref.key, ref.namespace or None, bundle, served)


SMITH_ACCOUNT_PREFIX = "smith-"
_SA_TOKEN_ANNOTATION = "kubernetes.io/service-account.name"


def _pod_specs(obj: JSONObject) -> list[JSONObject]:
    """The pod specs an object runs: a Pod's own, a workload's template's, a CronJob's job's."""
    spec = obj.get("spec") or {}
    found = [spec, (spec.get("template") or {}).get("spec") or {}]
    job = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    found.append(job.get("spec") or {})
    return [s for s in found if isinstance(s, dict)]


def own_account_problem(obj: JSONObject, smith_namespace: str) -> str | None:
    """Smith's own ServiceAccounts (`smith-*` in its namespace) hold Smith's rights, and the
    controller's is the one identity every Smith server answers: no Bundle may run a pod as one of
    them, or have a token Secret made for one. Only in Smith's namespace (accounts are namespaced)."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != smith_namespace:
        return None
    accounts = {str(s.get("serviceAccountName") or s.get("serviceAccount") or "") for s in _pod_specs(obj)}
    if obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        accounts.add(str((meta.get("annotations") or {}).get(_SA_TOKEN_ANNOTATION, "")))
    if own := sorted(a for a in accounts if a.startswith(SMITH_ACCOUNT_PREFIX)):
        return (
            f"{ObjectKey.of(obj)} would act as ServiceAccount {own[0]}, one of Smith's own in "
            f"{smith_namespace}: no Bundle may use Smith's identities"
        )
    return None


def service_account_of(bundle: JSONObject) -> str:
    """The ServiceAccount a Bundle acts as (`spec.serviceAccountName`), "" for none."""
    return str((bundle.get("spec") or {}).get("serviceAccountName") or "")


def acting_user(namespace: str, account: str, default: str) -> str | None:
    """Whom an executor's reads and writes of a Bundle's objects are made as: the ServiceAccount of the
    Bundle's namespace it names, else the `default` one of that namespace (the multi-tenant setting),
    else None (the executor's own rights, as Go Smith did)."""
    name = account or default
    return f"system:serviceaccount:{namespace}:{name}" if name else None


def own_user_problem(user: str | None, smith_namespace: str) -> str | None:
    """Why a Bundle may not act as `user`: one of Smith's own ServiceAccounts (see own_account_problem)."""
    prefix = f"system:serviceaccount:{smith_namespace}:{SMITH_ACCOUNT_PREFIX}"
    if user is not None and user.startswith(prefix):
        return f"a Bundle may not act as {user}, one of Smith's own ServiceAccounts"
    return None
