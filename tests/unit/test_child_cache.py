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
