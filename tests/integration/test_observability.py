"""What a platform team sees of Smith at work: Events on the Bundle, Prometheus metrics and probes,
and traces that never carry Secret data. Against the real control plane, with every service running."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from smith_status.events import EventRecorder
from smith_telemetry.logs import JsonFormatter, TraceIds
from smith_telemetry.metrics import serve_http

from live import RESYNC_SECONDS, Json, bundle, edit_bundle, until_condition
from smith.v1 import common_pb2
from smith_controlplane.plane import free_port
from smith_engine.events import COMBINED, REASON_ANNOTATION, RESOURCE_ANNOTATION, Notice
from smith_kube import KubeClient, NotFoundError
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


async def bundle_events(kube: KubeClient, namespace: str, name: str) -> list[Json]:
    listing = await kube.list("v1", "Event", namespace)
    return [
        e
        for e in listing["items"]
        if e["involvedObject"].get("kind") == "Bundle" and e["involvedObject"].get("name") == name
    ]


async def until_event(kube: KubeClient, namespace: str, name: str, reason: str, text: str) -> Json:
    found: list[Json] = []

    async def seen() -> bool:
        events = await bundle_events(kube, namespace, name)
        found[:] = [e for e in events if e["reason"] == reason and text in e["message"]]
        return bool(found)

    await eventually(seen, what=f"a {reason} event about {text}")
    return found[0]


async def test_created_updated_and_deleted_objects_are_events_on_the_bundle(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    created = await kube.create(bundle("told", namespace, resource("keep"), resource("drop")))
    await until_condition(kube, namespace, "told", "Ready")
    event = await until_event(kube, namespace, "told", "Created", "ConfigMap keep")
    assert event["type"] == "Normal"
    assert event["involvedObject"]["uid"] == created["metadata"]["uid"]
    assert event["source"]["component"] == "smith"

    def change(spec: Json) -> None:
        spec["resources"] = [resource("keep", config_map("keep", {"k": "new"}))]

    await edit_bundle(kube, namespace, "told", change)
    await until_event(kube, namespace, "told", "Updated", "ConfigMap keep")
    await until_event(kube, namespace, "told", "Deleted", "ConfigMap drop")
    events = await bundle_events(kube, namespace, "told")
    assert [e["reason"] for e in events].count("Created") == 2, "one event per object, not per reconcile"


async def test_an_invalid_bundle_gets_one_warning_event(kube: KubeClient, namespace: str, smith: Any) -> None:
    await kube.create(
        bundle("loop", namespace, resource("a", depends_on=["b"]), resource("b", depends_on=["a"]))
    )
    await until_condition(kube, namespace, "loop", "Error")
    warning = await until_event(kube, namespace, "loop", "BundleError", "cycle")
    assert warning["type"] == "Warning"
    assert warning["metadata"]["annotations"] == {REASON_ANNOTATION: "TerminalError"}  # as Go Smith
    assert len(await bundle_events(kube, namespace, "loop")) == 1


async def test_transitions_are_events_and_metrics_as_in_smith(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """BundleReady, ResourceReady, ResourceError (Warning), with Smith's annotations, once per transition;
    smith_bundle_transitions_total and smith_bundle_resource_transitions_total labelled as in Smith."""
    labels = {"namespace": namespace, "name": "moves"}
    await kube.create(bundle("moves", namespace, resource("cfg")))
    await until_condition(kube, namespace, "moves", "Ready")
    ready = await until_event(kube, namespace, "moves", "BundleReady", "")
    assert ready["metadata"]["annotations"] == {REASON_ANNOTATION: "AllResourcesReady"}
    cfg = await until_event(kube, namespace, "moves", "ResourceReady", "")
    assert cfg["metadata"]["annotations"] == {REASON_ANNOTATION: "Ready", RESOURCE_ANNOTATION: "cfg"}
    ready_type = {**labels, "type": "Ready", "reason": "AllResourcesReady"}
    assert sample("smith_bundle_transitions_total", **ready_type) == 1
    cfg_ready = {**labels, "resource": "cfg", "type": "Ready", "reason": "Ready"}
    assert sample("smith_bundle_resource_transitions_total", **cfg_ready) == 1

    bad = config_map("cfg", {"n": 1})  # not a string: the server refuses it, for good
    await edit_bundle(kube, namespace, "moves", lambda s: s.update(resources=[resource("cfg", bad)]))
    error = await until_event(kube, namespace, "moves", "ResourceError", "cfg")
    assert error["type"] == "Warning"
    assert error["metadata"]["annotations"] == {
        REASON_ANNOTATION: "TerminalError",
        RESOURCE_ANNOTATION: "cfg",
    }
    error_type = {**labels, "type": "Error", "reason": "TerminalError"}

    async def counted() -> bool:
        return sample("smith_bundle_transitions_total", **error_type) == 1

    await eventually(counted, what="the Bundle's Error transition to be counted")
    await asyncio.sleep(2 * RESYNC_SECONDS)  # resyncs of the same failure tell nothing new
    events = await bundle_events(kube, namespace, "moves")
    assert [e["reason"] for e in events].count("ResourceError") == 1
    assert [e["reason"] for e in events].count("BundleReady") == 1
    assert sample("smith_bundle_transitions_total", **error_type) == 1


def sample(metric: str, /, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


async def test_reconciles_and_actions_are_counted_in_prometheus_metrics(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    created = sample("smith_actions_total", kind="ConfigMap", action="apply", outcome="Created")
    reconciles = sample("smith_reconcile_duration_seconds_count", result="ok")
    await kube.create(bundle("counted", namespace, resource("one"), resource("two", depends_on=["one"])))
    await until_condition(kube, namespace, "counted", "Ready")
    assert sample("smith_actions_total", kind="ConfigMap", action="apply", outcome="Created") >= created + 2

    async def counted() -> bool:  # the reconcile that wrote Ready is counted once it returns
        return sample("smith_reconcile_duration_seconds_count", result="ok") >= reconciles + 2

    await eventually(counted, within=5, what="both reconciles to be counted")
    assert REGISTRY.get_sample_value("smith_work_queue_depth") is not None
    assert sample("smith_executor_reachable", endpoint=smith.executor_endpoint) == 1.0


async def test_metrics_and_probes_are_served_over_http() -> None:
    ready = False
    runner, port = await serve_http("127.0.0.1:0", ready=lambda: ready)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get("/metrics") as response:
                text = await response.text()
                assert response.status == 200
                assert "smith_actions_total" in text
                assert "smith_kube_api_errors_total" in text
            async with http.get("/healthz") as response:
                assert response.status == 200
            async with http.get("/readyz") as response:
                assert response.status == 503
            ready = True
            async with http.get("/readyz") as response:
                assert response.status == 200
            async with http.get("/other") as response:
                assert response.status == 404
            async with http.post("/metrics") as response:
                assert response.status == 405
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00garbage\r\n\r\n")  # a malformed request costs nothing but its connection
        assert await reader.read() == b""
        writer.close()
        async with (
            aiohttp.ClientSession(f"http://127.0.0.1:{port}") as again,
            again.get("/healthz") as answer,
        ):
            assert answer.status == 200
    finally:
        await runner.cleanup()


async def test_traces_carry_bundle_resource_kind_action_and_verdict_but_never_secret_data(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    password = "hunter2-never-in-a-trace"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }
    user = config_map("user", {"password": "!{pw}"})
    await kube.create(
        bundle(
            "secretive",
            namespace,
            resource("creds", secret),
            resource(
                "user",
                user,
                depends_on=["creds"],
                references=[{"name": "pw", "resource": "creds", "path": "data.password"}],
            ),
        )
    )
    await until_condition(kube, namespace, "secretive", "Ready")
    spans = [s for s in smith.spans.get_finished_spans() if _about(s, f"{namespace}/secretive")]
    applies = [s for s in spans if s.name == "apply"]
    assert {(s.attributes or {}).get("smith.resource") for s in applies} >= {"creds", "user"}
    assert all(
        {"smith.bundle", "smith.kind", "smith.action", "smith.verdict"} <= set(s.attributes or {})
        for s in applies
    )
    everything = json.dumps([json.loads(s.to_json()) for s in smith.spans.get_finished_spans()])
    assert password not in everything
    assert base64.b64encode(password.encode()).decode() not in everything


def _about(span: Any, bundle_key: str) -> bool:
    return (span.attributes or {}).get("smith.bundle") == bundle_key


async def test_every_grpc_server_answers_the_standard_health_check(smith: Any) -> None:
    """Over TLS, with no token: probes need no identity."""
    server, port = await smith.serve("smith_planner", [])
    tls = grpc.ssl_channel_credentials(smith.trust.ca.read_bytes())
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", tls) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs type the sync API only
            answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(grace=None)


async def test_failed_api_requests_are_counted_by_verb_and_code(kube: KubeClient, namespace: str) -> None:
    before = sample("smith_kube_api_errors_total", verb="GET", code="404")
    with pytest.raises(NotFoundError):
        await kube.get("v1", "ConfigMap", "not-there", namespace)
    assert sample("smith_kube_api_errors_total", verb="GET", code="404") == before + 1


async def test_each_action_is_one_structured_log_line_with_its_trace(
    kube: KubeClient, namespace: str, smith: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smith.executor")
    caplog.handler.addFilter(TraceIds())
    await kube.create(bundle("logged", namespace, resource("line")))
    await until_condition(kube, namespace, "logged", "Ready")
    (record,) = [
        r
        for r in caplog.records
        if getattr(r, "fields", {}).get("bundle") == f"{namespace}/logged"
        and r.fields["outcome"] == "Created"  # type: ignore[attr-defined]
    ]
    assert record.fields == {  # type: ignore[attr-defined]
        "bundle": f"{namespace}/logged",
        "resource": "line",
        "action": "apply",
        "kind": "ConfigMap",
        "object": f"{namespace}/line",
        "outcome": "Created",
    }
    line = json.loads(JsonFormatter("smith-executor-core").format(record))
    assert len(line["trace_id"]) == 32


async def test_service_processes_serve_metrics_and_probes(
    kubeconfig: Path, namespace: str, smith: Any
) -> None:
    """The planner and a controller (limited to a namespace of its own, so it leaves the test system's
    Bundles alone) as processes, the way they run in a Pod: ready once serving, metrics on their port."""
    ports = {"smith_planner": free_port(), "smith_controller": free_port()}
    base = {**os.environ, "KUBECONFIG": str(kubeconfig), "SMITH_WATCH_NAMESPACE": namespace}
    env = {
        "smith_planner": {
            **base,
            **smith.trust.env("smith_planner"),
            "SMITH_LISTEN": "127.0.0.1:0",
            "SMITH_METRICS": f"127.0.0.1:{ports['smith_planner']}",
        },
        "smith_controller": {
            **base,
            **smith.trust.env("smith_controller"),
            "SMITH_PLANNER": f"127.0.0.1:{smith.planner_port}",
            "SMITH_STATUS": f"127.0.0.1:{smith.status_port}",
            "SMITH_METRICS": f"127.0.0.1:{ports['smith_controller']}",
        },
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=env[module], stderr=asyncio.subprocess.DEVNULL
        )
        for module in ports
    ]
    try:
        async with aiohttp.ClientSession() as http:
            for module, port in ports.items():

                async def ready(port: int = port) -> bool:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                            return response.status == 200
                    except aiohttp.ClientError:
                        return False

                await eventually(ready, what=f"{module} to be ready")
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert "process_resident_memory_bytes" in await response.text()
            async with http.get(f"http://127.0.0.1:{ports['smith_controller']}/metrics") as response:
                assert "smith_work_queue_depth 0.0" in await response.text()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            assert await asyncio.wait_for(process.wait(), 15) == 0, "a service stops cleanly on SIGTERM"


async def test_a_burst_of_events_waits_in_a_bounded_queue_and_what_overflows_is_counted(
    kube: KubeClient, namespace: str
) -> None:
    recorder = EventRecorder(kube, concurrency=2, backlog=5)
    ref = common_pb2.BundleRef(namespace=namespace, name="burst", uid="u")
    dropped = sample("smith_events_dropped_total", reason="BundleReady")
    recorder.post(ref, [Notice("BundleReady", f"n{i}") for i in range(8)])
    assert sample("smith_events_pending") == 5, "what fits waits, nothing is posted inline"
    await recorder.drain()
    assert sample("smith_events_pending") == 0
    assert sample("smith_events_dropped_total", reason="BundleReady") == dropped + 3
    posted = sorted(e["message"] for e in await bundle_events(kube, namespace, "burst"))
    assert posted == [f"n{i}" for i in range(5)]


async def test_events_told_again_raise_one_events_count_and_past_nine_similar_ones_are_combined(
    kube: KubeClient, namespace: str
) -> None:
    """As client-go tells them: the same Event again is its count raised; the 10th similar one on and
    after are one "(combined from similar events)" Event; raises still queued are one write."""
    recorder = EventRecorder(kube)
    ref = common_pb2.BundleRef(namespace=namespace, name="many", uid="u")
    writes = sample("smith_events_posted_total", type="Normal", reason="Created")
    named = {RESOURCE_ANNOTATION: "c"}
    recorder.post(ref, [Notice("Created", f"created ConfigMap c{i}", annotations=named) for i in range(30)])
    recorder.post(ref, [Notice("Created", "created ConfigMap c0")])
    await recorder.drain()
    events = {e["message"]: e for e in await bundle_events(kube, namespace, "many")}
    assert sorted(events) == sorted(
        [f"created ConfigMap c{i}" for i in range(9)] + [f"{COMBINED}created ConfigMap c29"]
    )
    assert events["created ConfigMap c0"]["count"] == 2
    combined = events[f"{COMBINED}created ConfigMap c29"]
    assert combined["count"] == 21
    assert "annotations" not in combined["metadata"], "it stands for several resources"
    assert events["created ConfigMap c0"]["metadata"]["annotations"] == named
    assert sample("smith_events_posted_total", type="Normal", reason="Created") == writes + 10

    recorder.post(ref, [Notice("Created", f"created ConfigMap d{i}") for i in range(4)])
    await recorder.drain()
    later = {e["metadata"]["name"]: e for e in await bundle_events(kube, namespace, "many")}
    assert len(later) == 10, "no new Event"
    assert later[combined["metadata"]["name"]]["count"] == 25
    assert later[combined["metadata"]["name"]]["message"] == f"{COMBINED}created ConfigMap d3"
