"""Go Smith's Update-owned fields moved into Smith's apply entry, once, as client-go's csaupgrade."""

from __future__ import annotations

from typing import Any

from smith_engine.managedfields import upgraded


def entry(manager: str, operation: str, fields: dict[str, Any], **more: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **more,
    }


GO_SMITH = entry(
    "smith", "Update", {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}
)
STATUS = entry("smith", "Update", {"f:status": {"f:ready": {}}}, subresource="status")
OTHER = entry("kubectl-edit", "Update", {"f:data": {"f:c": {}}})


def test_go_smiths_fields_become_the_apply_entrys() -> None:
    mine = entry("smith", "Apply", {"f:data": {"f:a": {}, "f:d": {}}})
    moved = upgraded([GO_SMITH, mine, STATUS, OTHER], manager="smith")
    assert moved is not None
    assert [(e["manager"], e["operation"]) for e in moved] == [
        ("smith", "Apply"),
        ("smith", "Update"),  # a subresource's entry stays
        ("kubectl-edit", "Update"),  # another writer's stays
    ]
    assert moved[0]["fieldsV1"] == {
        "f:data": {"f:a": {}, "f:b": {}, "f:d": {}},
        "f:metadata": {"f:labels": {"f:x": {}}},
    }
    assert moved[1] == STATUS


def test_without_an_apply_entry_one_is_made_from_the_update() -> None:
    moved = upgraded([GO_SMITH], manager="smith")
    assert moved == [{**GO_SMITH, "operation": "Apply"}]


def test_nothing_to_move_is_none() -> None:
    assert upgraded([entry("smith", "Apply", {}), STATUS, OTHER], manager="smith") is None
    assert upgraded(None, manager="smith") is None
