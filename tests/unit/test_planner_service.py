"""The planner service keeps recently planned Bundles parsed: a pass asks about the same Bundle once per
wave. What it answers never depends on what it kept."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import smith_planner.servicer as planner_service
from smith_wire.convert import action_from_proto

from smith.v1 import planner_pb2
from smith_engine import validation
from smith_engine.codec import dumps
from smith_engine.planner import Apply
from support import bundle_object, config_map, resource


class AbortedError(Exception):
    pass


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AbortedError(code, details)


def request(value: str, *, dependency: str = "") -> planner_pb2.PlanRequest:
    first = resource("a", config_map("a", {"value": value}), depends_on=[dependency] if dependency else ())
    return planner_pb2.PlanRequest(bundle_json=dumps(bundle_object(first)))


async def plan(servicer: planner_service.PlannerServicer, req: planner_pb2.PlanRequest) -> list[Any]:
    answer = await servicer.Plan(req, Context())  # type: ignore[arg-type]
    return [a.object["data"] for a in map(action_from_proto, answer.actions) if isinstance(a, Apply)]


async def test_the_same_bundle_is_parsed_once_and_an_edit_is_planned_from_its_new_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses: list[object] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        parses.append(args[0])
        return validation.load_bundle(*args, **kwargs)

    monkeypatch.setattr(planner_service, "load_bundle", counted)
    servicer = planner_service.PlannerServicer()
    assert await plan(servicer, request("one")) == [{"value": "one"}]
    assert await plan(servicer, request("one")) == [{"value": "one"}]
    assert len(parses) == 1
    assert await plan(servicer, request("two")) == [{"value": "two"}]
    assert await plan(servicer, request("one")) == [{"value": "one"}]
    assert len(parses) == 2


async def test_an_invalid_bundle_is_refused_every_time() -> None:
    servicer = planner_service.PlannerServicer()
    for _ in range(2):
        with pytest.raises(AbortedError, match="nowhere"):
            await plan(servicer, request("one", dependency="nowhere"))
