"""The controller's cache keeps thousands of objects: equal keys and short strings are stored once."""

from __future__ import annotations

import json

from smith_controller.cache import compact


def test_compact_objects_are_equal_and_share_their_keys_and_short_strings() -> None:
    def read(name: str) -> dict[str, object]:
        text = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"smith.atlassian.com/BundleName": "shop"}},
                "data": {"long": "x" * 100},
                "list": [{"owner": "0c7b5cf5-0000-4000-8000-000000000001"}],
            }
        )
        return json.loads(text)  # type: ignore[no-any-return]

    first, second = read("a"), read("b")
    one, two = compact(first), compact(second)
    assert one == first
    assert two == second
    assert next(k for k in one["metadata"] if k == "labels") is next(
        k for k in two["metadata"] if k == "labels"
    )
    assert (
        one["metadata"]["labels"]["smith.atlassian.com/BundleName"]
        is two["metadata"]["labels"]["smith.atlassian.com/BundleName"]
    )
    assert one["list"][0]["owner"] is two["list"][0]["owner"]
    assert one["data"]["long"] is not two["data"]["long"], "long strings are left alone"
