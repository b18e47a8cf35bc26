"""Routing: which executor serves a kind, from the Executor resources."""

from __future__ import annotations

from typing import Any

from smith_engine.model import GroupKind
from smith_engine.routing import ExecutorInfo, RoutingTable

INSTANCE = GroupKind("servicecatalog.k8s.io", "ServiceInstance")


def executor(
    name: str, endpoint: str, *kinds: GroupKind, fallback: bool = False, beat: str = "", created: str = ""
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {
            "endpoint": endpoint,
            "kinds": [{"group": k.group, "kind": k.kind} for k in kinds],
            "fallback": fallback,
        },
        "status": {"heartbeatTime": beat},
    }


def table(*objs: dict[str, Any]) -> RoutingTable:
    routing = RoutingTable()
    for obj in objs:
        routing.update(ExecutorInfo.of(obj))
    return routing


def test_a_specific_executor_wins_over_a_fallback_whatever_the_heartbeats() -> None:
    routing = table(
        executor("servicecatalog", "sc:1", INSTANCE, beat="2026-12-01T00:00:00Z"),
        executor("dynamic", "dyn:1", INSTANCE, fallback=True, beat="2026-12-01T00:04:59Z"),
    )
    assert routing.endpoint(INSTANCE) == "sc:1"


def test_the_fallback_serves_what_no_one_else_does() -> None:
    widget = GroupKind("x.io", "Widget")
    assert table(executor("dynamic", "dyn:1", widget, fallback=True)).endpoint(widget) == "dyn:1"


def test_a_kind_claimed_again_stays_with_the_executor_registered_first() -> None:
    """A later registration (an executor's own, or anyone's who may create Executors) cannot take a kind
    over, however fresh its heartbeat: it is refused, and says which executor serves the kind."""
    routing = table(
        executor("b", "b:1", INSTANCE, beat="2026-12-01T00:04:59Z", created="2026-02-01T00:00:00Z"),
        executor("a", "a:1", INSTANCE, beat="2026-12-01T00:00:00Z", created="2026-01-01T00:00:00Z"),
    )
    assert routing.endpoint(INSTANCE) == "a:1"
    assert routing.refused("b") == {INSTANCE: "a"}
    assert routing.refused("a") == {}


def test_a_fallback_claims_nothing_from_anyone() -> None:
    routing = table(
        executor("servicecatalog", "sc:1", INSTANCE, created="2026-02-01T00:00:00Z"),
        executor("dynamic", "dyn:1", INSTANCE, fallback=True, created="2026-01-01T00:00:00Z"),
    )
    assert routing.endpoint(INSTANCE) == "sc:1"
    assert routing.refused("dynamic") == {}
    assert routing.refused("servicecatalog") == {}


def test_a_kind_no_one_serves_has_no_endpoint() -> None:
    assert table().endpoint(INSTANCE) is None


def test_only_a_change_of_routing_counts_as_a_change() -> None:
    routing = table(executor("a", "a:1", INSTANCE, beat="1"))
    assert not routing.update(ExecutorInfo.of(executor("a", "a:1", INSTANCE, beat="2")))
    assert routing.update(ExecutorInfo.of(executor("a", "a:2", INSTANCE, beat="3")))
    assert routing.remove("a")
    assert routing.endpoint(INSTANCE) is None


def test_a_registration_whose_heartbeats_stopped_keeps_no_kind() -> None:
    """Registered first, but crashed long ago (nothing withdrew it): the live claimant serves the kind."""
    routing = table(
        executor("old", "old:1", INSTANCE, beat="2026-01-01T00:00:00Z", created="2025-01-01T00:00:00Z"),
        executor("new", "new:1", INSTANCE, beat="2026-01-01T01:00:00Z", created="2026-01-01T00:30:00Z"),
    )
    assert routing.endpoint(INSTANCE) == "new:1"
    assert routing.refused("new") == {}
