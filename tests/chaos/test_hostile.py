"""Hostile and huge input through the real API to the running system: random Bundles from a hypothesis
strategy — valid ones (unicode values, names at their length limits, references passing values and
Secret data along) and broken ones (a cycle, an unknown or duplicate name, a bad marker or path, a
value of the wrong type, a name too long) — each answered precisely: a valid one converges, an invalid
one gets its error and creates nothing, a refused object is a terminal error on its resource only. No
service logs a traceback, and no Secret value shows in any log line, Event or status. Then large
shapes: one Bundle of many resources, a long chain, many Bundles in one namespace."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import FULL, Json, chain, converged, smith
from live import bundle, condition, nested, post, resource_condition
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import Services, cpu_seconds
from smith_engine.limits import MAX_DEPTH
from smith_engine.model import BUNDLE_NAME_LABEL
from smith_kube import ApiError, KubeClient, KubeConfig
from support import config_map, eventually, metric, resource

SECRET = f"s3cr3t-{secrets.token_hex(8)}"  # appears in Secrets only; must appear nowhere else
DNS_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
HUGE = "0123456789abcdef" * 60_000  # 960,000 bytes: the Bundle holding it nears the 1.5 MiB request limit


@dataclass
class Case:
    """A Bundle and what Smith must answer."""

    spec: list[Json]
    expect: str  # "ready", "invalid" (nothing created), "refused:<resource>" (a terminal error there),
    # or "blocked:<resource>" (its reference never resolves: Blocked, and said why)
    why: str = ""
    deep: int = 0  # levels of nesting put in place of DEEP (posted as text: no client writes it)


names = st.text(DNS_CHARS, min_size=1, max_size=12).map(lambda s: "r" + s)
values = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # any unicode but surrogates


@st.composite
def valid(draw: st.DrawFn) -> Case:
    """A DAG of ConfigMaps and a Secret: each may depend on earlier ones and pass a value along."""
    count = draw(st.integers(1, 6))
    picked = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    spec: list[Json] = []
    for i, name in enumerate(picked):
        data = draw(st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), values, max_size=3))
        if i == 0 and draw(st.integers(0, 9)) == 0:  # now and then, a value near a ConfigMap's 1 MiB limit
            data["huge"] = HUGE
        long_name = draw(st.booleans())
        object_name = (name + "-" + "x" * 253)[:253] if long_name else name  # at the length limit
        deps: list[str] = draw(st.lists(st.sampled_from(picked[:i]), unique=True)) if i else []
        passes_a_value: bool = draw(st.booleans())
        refs: list[Json] = []
        if deps and passes_a_value:
            refs = [{"name": "v", "resource": deps[0], "path": "metadata.name"}]
            data["from"] = "!{v}"
        obj = config_map(object_name, data)
        if i == 0 and draw(st.booleans()):
            obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": object_name}}
            obj["stringData"] = {"password": SECRET}
        spec.append(
            resource(name, obj, depends_on=[d for d in deps if not refs or d != deps[0]], references=refs)
        )
    return Case(spec, "ready")


@st.composite
def broken(draw: st.DrawFn) -> Case:
    """A valid Bundle with one thing wrong."""
    case = draw(valid())
    spec, first = case.spec, case.spec[0]["name"]
    fault = draw(
        st.sampled_from(["cycle", "unknown", "duplicate", "marker", "path", "type", "long", "regex", "deep"])
    )
    if fault == "cycle":
        spec[0].setdefault("dependsOn", []).append(spec[-1]["name"])
        if len(spec) == 1:
            return Case(spec, "invalid", "a self-dependency")
        spec[-1]["dependsOn"] = sorted({*spec[-1].get("dependsOn", []), first})
        return Case(spec, "invalid", "a cycle")
    if fault == "unknown":
        spec[-1].setdefault("dependsOn", []).append("nowhere")
        return Case(spec, "invalid", "an unknown dependency")
    if fault == "duplicate":
        twin = json.loads(json.dumps(spec[0]))
        twin["spec"]["object"].get("data", {}).pop("huge", None)  # two would not fit in one request
        return Case([*spec, twin], "invalid", "a duplicate name")
    if fault == "marker":
        spec[-1]["spec"]["object"].setdefault("data", {})["m"] = "!{undeclared}"
        return Case(spec, f"refused:{spec[-1]['name']}", "an undeclared marker (its resource's error)")
    if fault == "path":
        spec[-1]["references"] = [
            {"name": "p", "resource": first, "path": draw(st.sampled_from(["[[", "a..[", "{$"]))}
        ]
        return Case(spec, f"refused:{spec[-1]['name']}", "a malformed path (its resource's error)")
    if fault == "regex":  # RE2 runs any pattern in linear time, or refuses it
        pattern, expect = draw(st.sampled_from(REGEXES))
        path = f'metadata[?(@.name =~ "{pattern}")].name'
        spec[-1].setdefault("references", []).append({"name": "p", "resource": first, "path": path})
        spec[-1]["spec"]["object"].setdefault("data", {})["m"] = "!{p}"
        if len(spec) == 1:
            expect = "invalid"  # a reference to itself, whatever its pattern
        return Case(spec, expect.replace("<resource>", spec[-1]["name"]), f"a regex filter {pattern}")
    if fault == "deep":
        spec[-1]["spec"]["object"]["data"] = {"deep": "DEEP"}
        return Case(
            spec,
            "invalid",
            "deep nesting",
            deep=draw(st.sampled_from([MAX_DEPTH, 300, 1_100, 9_000, 20_000])),
        )
    if fault == "type":
        spec[-1]["spec"]["object"] = {**config_map(spec[-1]["name"]), "data": {"a": draw(st.integers())}}
        return Case(spec, f"refused:{spec[-1]['name']}", "a number where the API wants a string")
    spec[-1]["spec"]["object"]["metadata"]["name"] = "y" * 254
    return Case(spec, "invalid", "an object name too long")


REGEXES = [  # patterns built to backtrack (RE2 answers at once: nothing matches) and what RE2 refuses
    ("^r(a+)+_$", "blocked:<resource>"),
    ("^(r|ra|rab)*(a|b)*(x+x+)+_$", "blocked:<resource>"),
    ("(r)\\\\1", "refused:<resource>"),  # a path RE2 refuses: its resource's error
    ("^(?=r)", "refused:<resource>"),
]


@pytest.fixture(scope="module")
def running(
    plane: ControlPlane, kube: KubeClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """Smith's services for the whole module (the CRDs installed by `kube`): the processes, their logs
    and their metrics ports."""
    logs, metrics = tmp_path_factory.mktemp("hostile") / "logs", dict[str, int]()
    with smith(plane.kubeconfig, logs, metrics=metrics) as services:
        yield services, logs, metrics


Running = tuple[Services, Path, dict[str, int]]
ANSWERS: Counter[str] = Counter()  # the answers the hostile Bundles got, by kind


@settings(max_examples=100 if FULL else 12, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.one_of(valid(), broken()))
def test_every_bundle_gets_a_precise_answer(plane: ControlPlane, running: Running, case: Case) -> None:
    asyncio.run(answered(plane, case))


async def answered(plane: ControlPlane, case: Case) -> None:
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
        namespace = f"h-{secrets.token_hex(4)}"
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        try:
            if case.deep:
                await post(kube, bundle("hostile", namespace, *case.spec), DEEP=nested(case.deep))
            else:
                await kube.create(bundle("hostile", namespace, *case.spec))
        except ApiError as e:  # the Bundle CRD's own validation: a precise answer too
            if e.status == 400 and case.deep > 10_000:  # the API server reads JSON 10,000 levels deep
                ANSWERS["too deep for the API server"] += 1
                return
            if e.status != 422:
                raise
            ANSWERS["refused by the CRD"] += 1
            return
        found: Json = {}

        async def verdict() -> bool:
            nonlocal found
            found = await kube.get("smith.atlassian.com/v1", "Bundle", "hostile", namespace)
            status = found.get("status") or {}
            if status.get("observedGeneration") != found["metadata"]["generation"]:
                return False
            if case.expect.startswith("blocked:"):
                said = resource_condition(found, case.expect.partition(":")[2], "Blocked")
                return "is not set" in said.get("message", "")
            wanted = "Ready" if case.expect == "ready" else "Error"
            return bool(condition(found, wanted)["status"] == "True")

        await eventually(
            verdict, within=60, what=f"the answer to {case.why or 'a valid Bundle'}: {case.spec}"
        )
        made = await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL)
        if case.expect != "ready":
            error = condition(found, "Error")
        if case.expect == "invalid":
            assert (error["reason"], condition(found, "Ready")["reason"]) == (
                "TerminalError",
                "InvalidBundle",
            )
            assert error["message"], error
            assert not made["items"], "an invalid Bundle created objects"
        elif case.expect.startswith("refused:"):
            culprit = case.expect.partition(":")[2]
            assert error["reason"] == "TerminalError", error
            assert culprit in json.dumps(found["status"].get("resourceStatuses", found["status"])), found[
                "status"
            ]
        ANSWERS[case.expect.partition(":")[0]] += 1


def test_large_shapes_converge_and_planning_stays_near_linear(plane: ControlPlane, running: Running) -> None:
    services, _, metrics = running
    asyncio.run(large(plane, services, metrics))


async def large(plane: ControlPlane, services: Services, metrics: dict[str, int]) -> None:
    async def resources_planned() -> float:
        return await metric(metrics["smith_planner"], "smith_planner_resources_planned_total")

    async def serving() -> bool:
        try:
            return await resources_planned() >= 0
        except aiohttp.ClientError:  # not serving yet: the module's services may have just started
            return False

    await eventually(serving, what="the planner's metrics")

    wide, deep, many = (500, 200, 1000) if FULL else (150, 60, 150)
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
        took: dict[str, float] = {}
        shapes: list[tuple[str, Callable[[str], list[Json]]]] = [
            (f"one Bundle of {wide} resources", lambda ns: [wide_bundle(ns, wide)]),
            (f"a chain of {deep}", lambda ns: [chain("deep", ns, length=deep)]),
            (f"{many} Bundles in one namespace", lambda ns: [chain(f"m{i}", ns) for i in range(many)]),
        ]
        planner = {"planner": services["smith_planner"].pid}
        planning: dict[str, tuple[float, float]] = {}
        for label, make in shapes:
            namespace = f"l-{secrets.token_hex(4)}"
            await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            bundles = make(namespace)
            planned, cpu = await resources_planned(), cpu_seconds(planner)["planner"]
            began = time.perf_counter()
            await asyncio.gather(*(kube.create(b) for b in bundles))
            await converged(kube, namespace, [b["metadata"]["name"] for b in bundles], within=600)
            took[label] = time.perf_counter() - began
            spent, count = cpu_seconds(planner)["planner"] - cpu, await resources_planned() - planned
            planning[label] = (count, spent * 1e6 / max(count, 1))
        print("large shapes, create -> Ready:", ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))
        print(
            "large shapes, the planner: resources planned (each plan counts its whole Bundle) and CPU per "
            "resource planned (flat when a plan's cost is linear in its Bundle's size):",
            ", ".join(f"{k}: {n:.0f}, {us:.0f} us" for k, (n, us) in planning.items()),
        )


def test_objects_near_the_size_limits(plane: ControlPlane, running: Running) -> None:
    asyncio.run(near_the_limits(plane))


async def near_the_limits(plane: ControlPlane) -> None:
    """A ConfigMap of almost 1 MiB (the most its data may hold) in a Bundle near the API server's 1.5 MiB
    request limit converges, stored whole; one
    just over is the API server's terminal error on its resource alone; a Bundle over the API server's
    1.5 MiB request limit is refused by it, and Smith's services carry on."""
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
        namespace = f"z-{secrets.token_hex(4)}"
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        big = secrets.token_urlsafe(1_000_000)[:1_000_000]
        fits = bundle(  # 1.45 MB: two objects that come back with it to the planner, near 3 MB
            "fits",
            namespace,
            resource("big", config_map("big", {"a": big})),
            resource("half", config_map("half", {"a": big[:450_000]}), depends_on=["big"]),
        )
        over = bundle(
            "over",
            namespace,
            resource("big", config_map("too-big", {"a": big, "b": big[:100_000]})),
            resource("small", config_map("over-small")),
        )
        await kube.create(fits)
        await kube.create(over)
        with pytest.raises(ApiError) as refused:
            await kube.create(bundle("huge", namespace, resource("big", config_map("huge", {"a": big * 2}))))
        assert refused.value.status in (413, 422, 500), refused.value
        ANSWERS["over the request limit, refused by the API server"] += 1
        await converged(kube, namespace, ["fits"])
        stored = await kube.get("v1", "ConfigMap", "big", namespace)
        assert stored["data"]["a"] == big

        async def answered() -> bool:
            found = await kube.get("smith.atlassian.com/v1", "Bundle", "over", namespace)
            return bool(condition(found, "Error").get("reason") == "TerminalError")

        await eventually(answered, within=60, what="the terminal error on the ConfigMap over 1 MiB")
        found = await kube.get("smith.atlassian.com/v1", "Bundle", "over", namespace)
        statuses = {r["name"]: r for r in found["status"]["resourceStatuses"]}
        assert "too long" in json.dumps(statuses["big"]).lower(), statuses["big"]
        await kube.get("v1", "ConfigMap", "over-small", namespace)  # the rest of that Bundle went on
        ANSWERS["refused"] += 1
        ANSWERS["ready"] += 1


def wide_bundle(namespace: str, width: int) -> Json:
    return bundle("wide", namespace, *(resource(f"w{i}") for i in range(width)))


def test_no_secret_value_in_any_log_event_or_status(plane: ControlPlane, running: Running) -> None:
    """Last in this module: everything above put SECRET in Secrets (and only there)."""
    _, logs, _ = running
    assert ANSWERS, "no Bundle was tried before this check"
    for log in logs.glob("*.log"):
        assert SECRET not in log.read_text(errors="replace"), f"{log.name} shows a Secret's value"
    asyncio.run(nowhere_in_the_api(plane))


async def nowhere_in_the_api(plane: ControlPlane) -> None:
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
        for api_version, kind in (("v1", "Event"), ("smith.atlassian.com/v1", "Bundle")):
            for item in (await kube.list(api_version, kind))["items"]:
                shown = json.dumps({k: v for k, v in item.items() if k != "spec"})
                assert SECRET not in shown, f"{kind} {item['metadata']['name']} shows a Secret's value"
    print("hostile Bundles answered:", dict(ANSWERS))
