"""One pass of a Bundle's reconcile, its rules: the next wave, what the executors' answers settle, what a
later report must tell, whether the pass must be retried and which objects in the way to watch. The
controller does the I/O and keeps the clocks and fences; it decides none of this. (Whether a report may
wait within the status window is status.may_wait; whether an apply planned ahead was mispredicted is
ahead.mispredicted.)"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from smith_engine.ahead import Settled, mispredicted, settled_verdicts
from smith_engine.model import JSONObject, ObjectRef
from smith_engine.planner import Action, Apply, Verdict, VerdictState
from smith_engine.status import ActionResult

Identity = tuple[str, str]


def identity(action: Action) -> Identity:
    """An action's target within one pass: a resource is applied, an object deleted, at most once."""
    if isinstance(action, Apply):
        return ("apply", action.resource)
    return ("delete", str(action.object))


def next_wave(
    planned: Sequence[Action], done: Collection[Identity], ahead_made: dict[str, str]
) -> list[Action]:
    """What of a plan this pass has not done yet: each action once, but an apply planned ahead whose
    object the real answers changed (`ahead_made`: the desired hash of what was made ahead, by resource;
    the entry is used up) goes again, once."""
    return [a for a in planned if identity(a) not in done or mispredicted(a, ahead_made)]


def goes_on(answered: Sequence[ActionResult], wave: Sequence[Action]) -> bool:
    """Whether the planner is asked again within the pass: some apply's answer is an object already
    READY (its dependents may go at once), and the wave deleted nothing (a deletion is seen by its watch)."""
    came_ready = any(r.ok and r.readiness is not None and r.readiness.ready for r in answered)
    return came_ready and not any(not isinstance(a, Apply) for a in wave)


def settled(settled: Settled | None, ready_answers: Mapping[str, JSONObject]) -> tuple[Verdict, ...] | None:
    """The verdicts after the last wave planned ahead, as the planner predicted them, when every one of
    its applies was answered READY (`ready_answers`, by resource) and as predicted; None otherwise (the
    planner is asked)."""
    return None if settled is None else settled_verdicts(settled, ready_answers)


def told_later(results: Sequence[ActionResult]) -> tuple[ActionResult, ...]:
    """What a later report tells of these actions: that they were done (their Events), not the readiness
    their objects had then (the later pass's own verdicts say how they are now). Failures are not kept:
    the later pass meets them again."""
    return tuple(replace(r, readiness=None) for r in results if r.ok)


def blockers(actions: Sequence[Action], results: Sequence[ActionResult]) -> tuple[ObjectRef, ...]:
    """Objects a create found in the way (existing, and not Smith's to take): they carry no Smith label,
    so only a watch of their own says when they change or go. (Not any other failure of a create: a
    kind no executor serves, an object the server refuses — nothing there to watch.)"""
    creates = {a.resource: a for a in actions if isinstance(a, Apply) and a.expect_absent}
    return tuple(
        ObjectRef.of(creates[r.resource].object) for r in results if r.in_the_way and r.resource in creates
    )


def must_retry(results: Sequence[ActionResult], verdicts: Sequence[Verdict]) -> bool:
    """Whether the pass is retried after a back-off: an action or a resource failed in a way that may
    heal (a terminal error waits for the Bundle to change)."""
    return any(not r.ok and not r.terminal for r in results) or any(
        v.state is VerdictState.ERROR and not v.terminal for v in verdicts
    )


def converged(
    verdicts: Sequence[Verdict], pending: Sequence[object], results: Sequence[ActionResult]
) -> bool:
    """Whether the pass left the Bundle with nothing that can change by itself: every resource READY
    (a READY verdict never changes with time alone, unlike one in progress: see readiness), no object
    waiting to be deleted (a soft delete falls due), no action that failed. Until something it reads
    changes, another pass would do nothing and report the same: a resync may skip it."""
    return all(v.state is VerdictState.READY for v in verdicts) and not pending and all(r.ok for r in results)
