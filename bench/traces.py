"""Where a reconcile's time goes, from the spans the services printed to their logs."""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from pathlib import Path

from bench.shapes import Json


def read_spans(logs: Path) -> list[Json]:
    """The spans the services printed to their logs (console exporter: one indented JSON each)."""
    spans: list[Json] = []
    decoder = json.JSONDecoder()
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        pos = text.find('{\n    "name"')
        while pos != -1:
            try:
                span, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                end = pos + 1
            else:
                spans.append(span)
            pos = text.find('{\n    "name"', end)
    return spans


def seconds(span: Json) -> float:
    return (
        datetime.fromisoformat(span["end_time"]) - datetime.fromisoformat(span["start_time"])
    ).total_seconds()


def covered(group: list[Json]) -> float:
    """Wall-clock time covered by (possibly concurrent) spans."""
    total, end = 0.0, None
    for start, stop in sorted(
        (datetime.fromisoformat(s["start_time"]), datetime.fromisoformat(s["end_time"])) for s in group
    ):
        if end is None or start > end:
            total, end = total + (stop - start).total_seconds(), stop
        elif stop > end:
            total, end = total + (stop - end).total_seconds(), stop
    return total


def traced_share(logs: Path, names: list[str]) -> dict[str, float]:
    """Where a reconcile's time goes, for the reconciles whose root span is one of `names`: each gRPC
    call's client span is split into the server's own time and the hop (network, serialization,
    queueing); the executors' time into their API calls and the rest."""
    spans = read_spans(logs)
    roots = [s for s in spans if s["name"] in names]
    total = sum(seconds(s) for s in roots) or 1.0
    root_ids = {s["context"]["span_id"]: s["context"]["trace_id"] for s in roots}
    calls = [s for s in spans if s.get("parent_id") in root_ids]  # the controller's client spans
    served = {s["parent_id"]: s for s in spans if str(s.get("kind", "")).endswith("SERVER")}

    def server_time(service: str) -> float:
        return sum(
            seconds(served[c["context"]["span_id"]])
            for c in calls
            if c["name"].startswith(f"/smith.v1.{service}/") and c["context"]["span_id"] in served
        )

    hops = sum(
        seconds(c) - seconds(served[c["context"]["span_id"]])
        for c in calls
        if c["context"]["span_id"] in served
    )
    api = sum(
        covered([s for s in spans if s["name"] in ("apply", "delete") and s["context"]["trace_id"] == trace])
        for trace in set(root_ids.values())
    )
    in_calls = sum(
        covered([c for c in calls if c["context"]["trace_id"] == t]) for t in set(root_ids.values())
    )
    return {
        "reconciles": float(len(roots)),
        "median reconcile ms": statistics.median(seconds(s) for s in roots) * 1000 if roots else 0.0,
        "gRPC hops (network, serialization, queueing)": hops / total,
        "planning (planner)": server_time("Planner") / total,
        "API calls in the executors (wall-clock)": api / total,
        "the executors' other work (readiness, checks)": (server_time("Executor") - api) / total,
        "status report (status write; Events go in the background)": server_time("Status") / total,
        "the controller itself (outside any call)": (total - in_calls) / total,
    }
