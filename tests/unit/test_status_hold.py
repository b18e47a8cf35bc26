"""Which passes may have their report held within the status window: only those that leave the Bundle
in progress with nothing to tell at once."""

from __future__ import annotations

import pytest
from smith_controller.reconciler import only_progress

from smith.v1 import common_pb2, planner_pb2

READY, IN_PROGRESS, BLOCKED, ERROR = (
    common_pb2.VERDICT_STATE_READY,
    common_pb2.VERDICT_STATE_IN_PROGRESS,
    common_pb2.VERDICT_STATE_BLOCKED,
    common_pb2.VERDICT_STATE_ERROR,
)


def plan(*states: common_pb2.VerdictState.ValueType, pending: bool = False) -> planner_pb2.PlanResponse:
    answer = planner_pb2.PlanResponse(
        verdicts=[common_pb2.Verdict(resource_name=f"r{i}", state=s) for i, s in enumerate(states)]
    )
    if pending:
        answer.pending.add()
    return answer


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
    states: tuple[common_pb2.VerdictState.ValueType, ...], held: bool
) -> None:
    assert only_progress(plan(*states), [common_pb2.ActionResult(ok=True)]) is held


def test_a_failed_action_or_a_pending_deletion_is_told_at_once() -> None:
    assert not only_progress(plan(IN_PROGRESS), [common_pb2.ActionResult(ok=False, error_message="no")])
    assert not only_progress(plan(IN_PROGRESS, pending=True), [])
