"""The controller keeps every managed object as compact JSON with what it looks at without reading it."""

from __future__ import annotations

from typing import Any

from smith_controller.cache import Child

from smith_engine.model import GroupKind, ObjectKey


def test_a_child_reads_back_as_it_came_without_managed_fields_and_knows_its_bundle() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "settings",
            "namespace": "shop",
            "labels": {"smith.atlassian.com/BundleName": "web"},
            "managedFields": [{"manager": "smith", "operation": "Apply"}],
        },
        "data": {"size": "2**64", "big": 18446744073709551617},
    }
    child = Child.of(obj)
    assert child.key == ObjectKey(GroupKind("", "ConfigMap"), "settings")
    assert child.api_version == "v1"
    assert child.bundle == ("shop", "web")
    read = child.object()
    assert "managedFields" not in read["metadata"]
    assert read == {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
    assert "managedFields" in obj["metadata"], "what the watch delivered is not changed"
    assert len(child.json) < 300


def test_the_objects_of_one_bundle_share_its_names_and_their_kind() -> None:
    """What every kept object repeats is kept once: the Bundle's namespace and name (interned), the
    apiVersion, and the kind the cache's watch is for, not a copy per object (thousands of objects)."""
    kind = GroupKind("", "ConfigMap")

    def parsed(name: str) -> dict[str, Any]:
        labels = {"smith.atlassian.com/BundleName": "".join(["w", "eb"])}  # a new string each time
        meta = {"name": name, "namespace": "".join(["sh", "op"]), "labels": labels}
        return {"apiVersion": "".join(["v", "1"]), "kind": "ConfigMap", "metadata": meta}

    a, b = Child.of(parsed("a"), kind), Child.of(parsed("b"), kind)
    assert a.bundle == b.bundle == ("shop", "web")
    assert a.bundle is not None
    assert b.bundle is not None
    assert a.bundle[0] is b.bundle[0]
    assert a.bundle[1] is b.bundle[1]
    assert a.api_version is b.api_version
    assert a.key.group_kind is kind
    assert b.key.group_kind is kind
    assert a.key == ObjectKey(kind, "a")
