"""Channels to several replicas of a service: calls spread round-robin over the addresses, and a call
that finds its replica gone is sent to another (real gRPC servers on loopback)."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from smith_wire.rpc import channel, run_loop, start_server
from smith_wire.trust import Insecure

from smith.v1 import planner_pb2, planner_pb2_grpc
from support import CountingPlanner, serving


async def test_calls_are_spread_over_replicas_and_go_on_when_one_is_gone() -> None:
    calls: Counter[str] = Counter()
    servers = {}
    for name in ("a", "b"):
        servicer = CountingPlanner(name, calls)
        servers[name] = await start_server([serving(servicer)], trust=Insecure())
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in servers.values())
    ch = channel(target, Insecure())
    try:
        stub = planner_pb2_grpc.PlannerStub(ch)
        for _ in range(20):
            assert (await stub.Plan(planner_pb2.PlanRequest(), timeout=5)).finished
        assert min(calls["a"], calls["b"]) >= 5, calls  # the first may go before both are connected
        await servers["a"][0].stop(grace=None)  # a replica dies
        for _ in range(20):
            assert (await stub.Plan(planner_pb2.PlanRequest(), timeout=5)).finished
        assert calls["b"] == 40 - calls["a"]  # none lost, none failed
    finally:
        await ch.close()
        for server, _ in servers.values():
            await server.stop(grace=None)


class GoingPlanner(planner_pb2_grpc.PlannerServicer):
    """A replica on its way out: it refuses every call as unavailable."""

    def __init__(self, calls: Counter[str]) -> None:
        self.calls = calls

    async def Plan(  # noqa: N802 - gRPC method name
        self, request: planner_pb2.PlanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> planner_pb2.PlanResponse:
        self.calls["going"] += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down")


async def test_a_call_refused_as_unavailable_is_sent_again_to_another_replica() -> None:
    calls: Counter[str] = Counter()
    servicers: list[planner_pb2_grpc.PlannerServicer] = [GoingPlanner(calls), CountingPlanner("fine", calls)]
    servers = [await start_server([serving(s)], trust=Insecure()) for s in servicers]
    ch = channel("ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in servers), Insecure())
    try:
        stub = planner_pb2_grpc.PlannerStub(ch)
        for _ in range(20):
            assert (await stub.Plan(planner_pb2.PlanRequest(), timeout=5)).finished
        assert calls["fine"] == 20
        assert calls["going"] > 0  # it was asked, and its refusals were retried
    finally:
        await ch.close()
        for server, _ in servers:
            await server.stop(grace=None)


def test_services_run_on_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planner server and a call to it, on the loop run_loop picks: uvloop by default, the standard
    library's with SMITH_EVENT_LOOP=asyncio."""
    loops: list[str] = []

    async def one_call() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__.split(".")[0])
        server, port = await start_server([serving(CountingPlanner("a", Counter()))], trust=Insecure())
        try:
            async with channel(f"127.0.0.1:{port}", Insecure()) as ch:
                answer = await planner_pb2_grpc.PlannerStub(ch).Plan(planner_pb2.PlanRequest(), timeout=5)
            assert answer.finished
        finally:
            await server.stop(grace=None)

    monkeypatch.delenv("SMITH_EVENT_LOOP", raising=False)
    run_loop(one_call())
    monkeypatch.setenv("SMITH_EVENT_LOOP", "asyncio")
    run_loop(one_call())
    assert loops == ["uvloop", "asyncio"]
