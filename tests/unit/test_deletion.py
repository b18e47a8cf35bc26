"""Go durations as Smith's deletionDelay annotation takes them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smith_engine.deletion import kinds_made, parse_duration
from smith_engine.model import GroupKind


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30s", 30),
        ("10m", 600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("2h45m10s", 9910),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "10 m", "-5m", "1d", "m10"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_teardown_waits_for_the_kinds_smith_made_not_for_kinds_it_never_could() -> None:
    bundle = {
        "status": {
            "resourceStatuses": [
                {
                    "name": "a",
                    "object": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a", "uid": "u1"},
                },
                {
                    "name": "b",
                    "object": {"apiVersion": "v1", "kind": "PodTemplate", "name": "b"},
                },  # never made
            ],
            "objectsToDelete": [
                {"group": "batch", "version": "v1", "kind": "Job", "name": "old", "uid": "u2"}
            ],
        }
    }
    assert kinds_made(bundle) == {GroupKind("apps", "Deployment"), GroupKind("batch", "Job")}
