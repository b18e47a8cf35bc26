"""One pass's rules (smith_engine.passes): each action once, a misprediction made good once, the
planner asked again only when an answer came READY, and what a later report tells."""

from __future__ import annotations

from smith_engine.changes import desired_hash
from smith_engine.model import ObjectRef
from smith_engine.passes import blockers, converged, goes_on, identity, must_retry, next_wave, told_later
from smith_engine.planner import Apply, Delete, Reason, Verdict, VerdictState
from smith_engine.readiness import READY, in_progress
from smith_engine.status import ActionResult, Outcome
from support import config_map

A = Apply("a", config_map("a"), expect_absent=True)
B = Apply("b", config_map("b", {"k": "v"}))
GONE = Delete(ObjectRef("v1", "ConfigMap", "ns", "old"))


def result(name: str, **kw: object) -> ActionResult:
    return ActionResult(ObjectRef("v1", "ConfigMap", "ns", name), name, **kw)  # type: ignore[arg-type]


def test_each_action_goes_once_in_a_pass_but_a_mispredicted_apply_goes_again_once() -> None:
    done = {identity(A), identity(GONE)}
    assert next_wave([A, B, GONE], done, {}) == [B]
    changed = Apply("a", config_map("a", {"k": "changed"}))
    made_ahead = {"a": desired_hash(A.object)}
    assert next_wave([changed], done, made_ahead) == [changed]
    assert next_wave([changed], done, made_ahead) == [], "once"


def test_the_planner_is_asked_again_only_when_an_answer_came_ready_and_nothing_was_deleted() -> None:
    ready = result("a", outcome=Outcome.CREATED, readiness=READY)
    waiting = result("b", outcome=Outcome.UPDATED, readiness=in_progress("rolling out"))
    assert goes_on([ready, waiting], [A, B])
    assert not goes_on([waiting], [B])
    assert not goes_on([ready], [A, GONE])
    assert not goes_on([result("a", ok=False, readiness=READY)], [A])


def test_a_later_report_tells_what_was_done_not_how_it_was_then() -> None:
    done = result("a", outcome=Outcome.CREATED, readiness=in_progress("rolling out"))
    failed = result("b", ok=False, error="refused")
    assert told_later([done, failed]) == (result("a", outcome=Outcome.CREATED),)


def test_only_objects_a_create_found_in_the_way_are_watched() -> None:
    results = [result("a", ok=False, in_the_way=True), result("b", ok=False, in_the_way=True)]
    assert blockers([A, B], results) == (ObjectRef.of(A.object),)  # b was an update: nothing in its way


def test_a_pass_is_retried_for_what_may_heal_only() -> None:
    terminal = Verdict("a", VerdictState.ERROR, Reason.TERMINAL_ERROR)
    retriable = Verdict("a", VerdictState.ERROR, Reason.RETRIABLE_ERROR)
    assert not must_retry([result("a", ok=False, terminal=True)], [terminal])
    assert must_retry([result("a", ok=False)], [])
    assert must_retry([], [retriable])


def test_a_pass_converged_only_with_everything_ready_nothing_pending_and_nothing_failed() -> None:
    ready = [Verdict("a", VerdictState.READY, Reason.READY), Verdict("b", VerdictState.READY, Reason.READY)]
    waiting = Verdict("b", VerdictState.IN_PROGRESS, Reason.WAITING)
    assert converged(ready, [], [result("a", outcome=Outcome.UNCHANGED)])
    assert converged([], [], []), "an empty Bundle"
    assert not converged([ready[0], waiting], [], []), "in progress: its verdict may change with time alone"
    assert not converged([Verdict("a", VerdictState.ERROR, Reason.TERMINAL_ERROR)], [], [])
    assert not converged(ready, [ObjectRef("v1", "ConfigMap", "ns", "old")], []), "a soft delete falls due"
    assert not converged(ready, [], [result("a", ok=False, error="refused")])
