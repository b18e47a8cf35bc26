"""Change detection: desired hashes, digests that ignore what moves on its own, the in-sync verdict
from a dry run, the fields that differ; and the executor's memory of objects in sync."""

from __future__ import annotations

import copy
from typing import Any

from smith_executor.memo import Memo

from smith_engine.changes import desired_hash, differing_fields, digest, foreign_keys, in_sync
from smith_engine.model import ObjectKey

STORED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "team-a",
        "uid": "u1",
        "resourceVersion": "10",
        "generation": 2,
        "managedFields": [{"manager": "smith", "operation": "Apply"}],
    },
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "web", "resources": {"limits": {"cpu": "500m"}}}]}},
    },
    "status": {"replicas": 2, "availableReplicas": 1},
}
KEY = ("team-a", ObjectKey.of(STORED))


def test_digest_ignores_status_and_bookkeeping_that_moves_on_its_own() -> None:
    rolled = copy.deepcopy(STORED)
    rolled["status"] = {"replicas": 2, "availableReplicas": 2}
    rolled["metadata"] |= {"resourceVersion": "11", "generation": 3, "managedFields": []}
    assert digest(rolled) == digest(STORED)


def test_digest_changes_with_what_the_object_says() -> None:
    edited = copy.deepcopy(STORED)
    edited["spec"]["replicas"] = 3
    labelled = copy.deepcopy(STORED)
    labelled["metadata"]["labels"] = {"team": "a"}
    assert len({digest(STORED), digest(edited), digest(labelled)}) == 3


def test_desired_hash_is_independent_of_key_order() -> None:
    a = {"kind": "ConfigMap", "data": {"x": "1", "y": "2"}}
    b = {"data": {"y": "2", "x": "1"}, "kind": "ConfigMap"}
    assert desired_hash(a) == desired_hash(b)
    assert desired_hash(a) != desired_hash({"kind": "ConfigMap", "data": {"x": "1"}})


def test_in_sync_when_the_dry_run_equals_what_is_observed() -> None:
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    predicted = copy.deepcopy(STORED)
    predicted["metadata"]["managedFields"] = [{"manager": "smith", "time": "later"}]
    assert in_sync(desired, predicted, digest(STORED))
    predicted["spec"]["replicas"] = 1
    assert not in_sync(desired, predicted, digest(STORED))


def test_a_secret_with_keys_the_bundle_does_not_list_is_not_in_sync() -> None:
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"t": "eA=="}}
    stored = {**desired, "data": {"t": "eA==", "extra": "eQ=="}}
    assert foreign_keys(desired, stored) == ["extra"]
    assert not in_sync(desired, stored, digest(stored))
    assert foreign_keys({**desired, "kind": "ConfigMap"}, stored) == []


def test_differing_fields_are_named_by_path() -> None:
    other = copy.deepcopy(STORED)
    other["spec"]["replicas"] = 5
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    other["metadata"]["labels"] = {"x": "y"}
    other["status"] = {}
    assert differing_fields(STORED, other) == [
        "metadata.labels",
        "spec.replicas",
        "spec.template.spec.containers[0].image",
    ]


def test_memo_knows_an_object_in_sync_only_at_the_digest_it_saw() -> None:
    memo = Memo()
    assert memo.known(KEY, "d1")[0] == ""
    memo.synced(KEY, digest="d1", desired="h1")
    assert memo.known(KEY, "d1")[0] == "h1"
    assert memo.known(KEY, "d2")[0] == ""
    assert memo.applied_other(KEY, "h2")
    assert not memo.applied_other(KEY, "h1")
    assert not memo.applied_other(("other", KEY[1]), "h1"), "unknown objects are checked by a dry run"


def test_memo_forgets_the_oldest_objects_beyond_its_capacity() -> None:
    memo = Memo(capacity=2)
    keys = [("ns", ObjectKey.of({"kind": "ConfigMap", "metadata": {"name": n}})) for n in "abc"]
    for key in keys:
        memo.synced(key, digest="d", desired="h")
    assert [memo.known(k, "d")[0] for k in keys] == ["", "h", "h"]


def test_one_drift_is_put_back_but_repeated_drift_is_an_update_cycle() -> None:
    memo = Memo(window=60, limit=3)
    memo.synced(KEY, digest="d", desired="h")
    assert [memo.drifted(KEY, "h", now=t) for t in (0, 10, 20)] == [False, False, False]
    assert memo.drifted(KEY, "h", now=30)
    memo.stuck(KEY, "data.mode did not stick")
    assert memo.cycle(KEY, "h") == "data.mode did not stick"
    assert memo.known(KEY, "d")[0] == "", "an object in a cycle is never taken as in sync"
    assert memo.cycle(KEY, "h2") == "", "a new desired object starts afresh"
    memo.synced(KEY, digest="d", desired="h")
    assert memo.cycle(KEY, "h") == "", "found in sync again: the cycle is over"


def test_drifts_far_apart_are_hand_edits_not_a_cycle() -> None:
    memo = Memo(window=60, limit=3)
    memo.synced(KEY, digest="d", desired="h")
    assert not any(memo.drifted(KEY, "h", now=t) for t in (0, 100, 200, 300, 400))


def test_drift_from_something_smith_never_applied_is_not_counted() -> None:
    memo = Memo(limit=1)
    assert not memo.drifted(KEY, "h", now=0)
    memo.synced(KEY, digest="d", desired="other")
    assert not memo.drifted(KEY, "h", now=1)
    assert not memo.drifted(KEY, "h", now=2)


def test_memo_remembers_an_object_the_server_refused_until_the_bundle_changes_it() -> None:
    memo = Memo()
    memo.refuse(KEY, "h", "data.a: expected string, got number")
    assert memo.invalid(KEY, "h") == "data.a: expected string, got number"
    assert memo.invalid(KEY, "h2") == ""
