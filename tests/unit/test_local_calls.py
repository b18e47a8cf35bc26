"""In-process calls (smith_wire.local), as the all-in-one process makes them: the servicer gets the
request object itself, a deadline it can read, and what it aborts with reaches the caller as the
AioRpcError a network call raises."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from smith_wire import local

from smith.v1 import planner_pb2


class Servicer:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def Plan(self, request: Any, context: Any) -> str:  # noqa: N802 - gRPC method name
        self.seen.append((request, context.time_remaining()))
        if request.bundle_json == b"abort":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not that one")
        if request.bundle_json == b"slow":
            await asyncio.sleep(10)
        if request.bundle_json == b"bug":
            raise KeyError("metadata")
        return "planned"


@pytest.fixture
def servicer() -> Any:
    served = Servicer()
    local.serve("local:planner-test", served)
    yield served
    local.withdraw("local:planner-test")


async def test_a_call_hands_the_request_itself_with_its_deadline(servicer: Servicer) -> None:
    stub = local.stub("local:planner-test")
    assert stub is not None
    request = planner_pb2.PlanRequest(bundle_json=b"{}")
    assert await stub.Plan(request, timeout=5) == "planned"
    ((seen, left),) = servicer.seen
    assert seen is request, "not serialised"
    assert left is not None
    assert 4 < left <= 5


async def test_an_abort_a_deadline_and_a_bug_are_errors_with_their_codes(servicer: Servicer) -> None:
    stub = local.stub("local:planner-test")
    assert stub is not None
    for body, code, details in (
        (b"abort", grpc.StatusCode.FAILED_PRECONDITION, "not that one"),
        (b"slow", grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        (b"bug", grpc.StatusCode.UNKNOWN, "local:planner-test.Plan: KeyError('metadata')"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Plan(planner_pb2.PlanRequest(bundle_json=body), timeout=0.2)
        assert (raised.value.code(), raised.value.details()) == (code, details)


def test_only_what_is_served_here_is_called_in_process() -> None:
    assert local.stub("local:nothing") is None
    assert local.stub("127.0.0.1:7401") is None
    with pytest.raises(ValueError, match="local:"):
        local.serve("127.0.0.1:7401", Servicer())
