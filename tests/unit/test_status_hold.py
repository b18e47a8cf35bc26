"""Which passes may have their report held within the status window: only those that leave the Bundle
in progress with nothing to tell at once."""

from __future__ import annotations

import pytest

from smith_engine.deletion import PendingDeletion
from smith_engine.model import ObjectRef
from smith_engine.planner import Reason, Verdict, VerdictState
from smith_engine.status import ActionResult, may_wait

READY, IN_PROGRESS, BLOCKED, ERROR = (
    VerdictState.READY,
    VerdictState.IN_PROGRESS,
    VerdictState.BLOCKED,
    VerdictState.ERROR,
)
REF = ObjectRef("v1", "ConfigMap", "ns", "c")


def verdicts(*states: VerdictState) -> list[Verdict]:
    return [Verdict(resource=f"r{i}", state=s, reason=Reason.APPLYING) for i, s in enumerate(states)]


@pytest.mark.parametrize(
    ("states", "held"),
    [
        ((READY, IN_PROGRESS, BLOCKED), True),  # progress: may wait for the next report
        ((IN_PROGRESS,), True),
        ((READY, READY), False),  # the Bundle turned READY: told at once
        ((READY, ERROR, BLOCKED), False),  # an error: told at once
    ],
)
def test_only_a_pass_that_leaves_the_bundle_in_progress_may_be_held(
    states: tuple[VerdictState, ...], held: bool
) -> None:
    assert may_wait(verdicts(*states), [ActionResult(REF, "r0")]) is held


def test_a_failed_action_an_object_in_the_way_or_a_pending_deletion_is_told_at_once() -> None:
    assert not may_wait(verdicts(IN_PROGRESS), [ActionResult(REF, "r0", ok=False, error="no")])
    assert not may_wait(verdicts(IN_PROGRESS), [ActionResult(REF, "r0", ok=False, in_the_way=True)])
    assert not may_wait(verdicts(IN_PROGRESS), [], [PendingDeletion(REF)])
