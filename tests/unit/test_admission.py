"""What an executor re-checks before it writes or deletes for a Bundle, whoever asks. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from smith_engine.admission import (
    acting_user,
    bundle_problem,
    delete_problem,
    own_account_problem,
    own_user_problem,
    service_account_of,
    write_problem,
)
from smith_engine.model import Bundle, GroupKind, ObjectRef
from smith_engine.planner import owner_reference

BUNDLE = Bundle(namespace="team-a", name="shop", uid="u-1")
SERVED = [GroupKind("", "ConfigMap"), GroupKind("rbac.authorization.k8s.io", "RoleBinding")]


def config_map(namespace: str = "team-a", owner: Bundle | None = BUNDLE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "cfg", "namespace": namespace}
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_an_object_of_the_bundle_in_its_namespace_may_be_written() -> None:
    assert write_problem(config_map(), BUNDLE, SERVED) is None


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        (config_map(namespace="kube-system"), "not in Bundle team-a/shop's namespace"),
        ({**config_map(), "metadata": {"name": "cfg"}}, "not in Bundle"),  # no namespace at all
        (config_map(owner=None), "as its controller"),
        (config_map(owner=Bundle(namespace="team-a", name="shop", uid="u-0")), "as its controller"),
        (config_map(owner=Bundle(namespace="team-a", name="other", uid="u-1")), "as its controller"),
        ({**config_map(), "apiVersion": "apps/v1", "kind": "Deployment"}, "does not serve Deployment.apps"),
    ],
    ids=["other-namespace", "no-namespace", "no-owner", "earlier-uid", "other-bundle", "kind-not-served"],
)
def test_a_write_is_refused_whoever_asks(obj: dict[str, Any], says: str) -> None:
    problem = write_problem(obj, BUNDLE, SERVED)
    assert problem is not None
    assert says in problem


def test_the_bundle_must_exist_with_the_requests_uid() -> None:
    assert bundle_problem(BUNDLE, "u-1") is None
    assert "does not exist" in (bundle_problem(BUNDLE, None) or "")
    assert "not the uid u-1" in (bundle_problem(BUNDLE, "u-2") or "")
    assert "without its uid" in (bundle_problem(Bundle(namespace="team-a", name="shop"), "u-1") or "")


def test_a_delete_is_refused_outside_the_bundles_namespace_or_kinds() -> None:
    ref = ObjectRef(api_version="v1", kind="ConfigMap", namespace="team-a", name="cfg")
    assert delete_problem(ref, BUNDLE, SERVED) is None
    elsewhere = ObjectRef(api_version="apps/v1", kind="Deployment", namespace="team-b", name="web")
    assert "does not serve" in (delete_problem(elsewhere, BUNDLE, SERVED) or "")
    other_ns = ObjectRef(api_version="v1", kind="ConfigMap", namespace="team-b", name="cfg")
    assert "not in Bundle" in (delete_problem(other_ns, BUNDLE, SERVED) or "")


def pod_template(account: str) -> dict[str, Any]:
    return {
        "template": {"spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "x"}]}}
    }


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": pod_template("smith-controller")},
        {"apiVersion": "v1", "kind": "Pod", "spec": {"serviceAccount": "smith-executor-core"}},
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "spec": {"jobTemplate": {"spec": pod_template("smith-status")}},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {"annotations": {"kubernetes.io/service-account.name": "smith-controller"}},
        },
    ],
    ids=["deployment", "pod", "cronjob", "token-secret"],
)
def test_no_bundle_may_act_as_one_of_smiths_own_accounts(obj: dict[str, Any]) -> None:
    """In Smith's namespace (the single-namespace install keeps Bundles there), a pod running as a Smith
    ServiceAccount, or a token Secret for one, would hold Smith's identity: refused."""
    placed = {**obj, "metadata": {**obj.get("metadata", {}), "name": "x", "namespace": "smith-system"}}
    assert "one of Smith's own" in (own_account_problem(placed, "smith-system") or "")
    elsewhere = {**placed, "metadata": {**placed["metadata"], "namespace": "team-a"}}
    assert own_account_problem(elsewhere, "smith-system") is None  # another namespace's account


def test_a_workload_of_its_own_account_in_smiths_namespace_is_fine() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "smith-system"},
        "spec": pod_template("web"),
    }
    assert own_account_problem(obj, "smith-system") is None


def test_a_bundle_acts_as_the_account_it_names_else_the_default_else_the_executor() -> None:
    assert acting_user("team-a", "deployer", "bundle-deployer") == "system:serviceaccount:team-a:deployer"
    assert acting_user("team-a", "", "bundle-deployer") == "system:serviceaccount:team-a:bundle-deployer"
    assert acting_user("team-a", "", "") is None  # Go Smith's way: the executors' own rights
    assert service_account_of({"spec": {"serviceAccountName": "deployer", "resources": []}}) == "deployer"
    assert service_account_of({"spec": {"resources": []}}) == ""


def test_no_bundle_may_act_as_one_of_smiths_own_accounts_by_naming_it() -> None:
    assert "Smith's own" in (
        own_user_problem("system:serviceaccount:smith-system:smith-controller", "smith-system") or ""
    )
    assert own_user_problem("system:serviceaccount:team-a:smith-app", "smith-system") is None
    assert own_user_problem(None, "smith-system") is None
