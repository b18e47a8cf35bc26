"""Hostile input costs its own Bundle, on the real plane: a Bundle nested 5,000 levels deep, a regex
filter built to backtrack, one RE2 cannot run, a plugin schema whose `$ref` points at a URL and a
file, a reference repeated until the object would pass 1.5 MiB, a Bundle reading more outside objects
than Smith watches for one, and one of 1,001 resources. Each gets a precise answer on its own Bundle,
while 20 ordinary Bundles applied at the same moment all turn Ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiohttp import web

from live import bundle, condition, get_bundle, nested, post, resource_condition, until_condition
from smith_engine.limits import MAX_DEPTH, MAX_OBJECT_BYTES, MAX_OUTSIDE, MAX_RESOURCES
from smith_engine.model import API_VERSION
from smith_engine.plugins import plugin_object
from smith_kube import KubeClient
from support import config_map, eventually, resource

Json = dict[str, Any]
EXECUTORS_NAMESPACE = "smith-system"


def ordinary(index: int, namespace: str) -> Json:
    """A small chain as teams write them: a ConfigMap whose value the next one reads."""
    first = config_map(f"settings-{index}", {"LOG_LEVEL": "info", "PORT": "8080"})
    refs = [{"name": "port", "resource": "settings", "path": "data.PORT"}]
    second = config_map(f"derived-{index}", {"url": "http://app:!{port}/"})
    return bundle(
        f"ordinary-{index}",
        namespace,
        resource("settings", first),
        resource("derived", second, references=refs),
    )


def role_with_rule_names(name: str, resource_name: str) -> Json:
    rule = {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get"],
        "resourceNames": [resource_name],
    }
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name},
        "rules": [rule],
    }


def filtering(name: str, namespace: str, resource_name: str, pattern: str) -> Json:
    """A Role naming `resource_name`, and a ConfigMap reading its verb through a filter on `pattern`."""
    path = f'rules[?(@.resourceNames[0] =~ "{pattern}")].verbs[0]'
    return bundle(
        name,
        namespace,
        resource("role", role_with_rule_names(f"{name}-reader", resource_name)),
        resource(
            "cm",
            config_map(name, {"verb": "!{verb}"}),
            references=[{"name": "verb", "resource": "role", "path": path}],
        ),
    )


def reading(name: str, sources: int) -> Json:
    container = {
        "name": "app",
        "image": "nginx:1.27",
        "envFrom": [{"configMapRef": {"name": f"team-config-{i}"}} for i in range(sources)],
        "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


@pytest_asyncio.fixture
async def schema_host() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP server a schema's `$ref` may point at: it records every request it gets."""
    asked: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"type": "object"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", asked
    finally:
        await runner.cleanup()


async def all_ready(kube: KubeClient, namespace: str, names: list[str]) -> None:
    await asyncio.gather(*(until_condition(kube, namespace, n, "Ready", within=60) for n in names))


async def test_hostile_bundles_get_precise_answers_while_twenty_ordinary_ones_converge(
    kube: KubeClient, namespace: str, smith: Any, schema_host: tuple[str, list[str]]
) -> None:
    url, asked = schema_host
    began = time.perf_counter()
    await asyncio.gather(*(kube.create(ordinary(i, namespace)) for i in range(20)))
    await all_ready(kube, namespace, [f"ordinary-{i}" for i in range(20)])
    alone = time.perf_counter() - began

    plugin = plugin_object(
        name="fetcher",
        namespace=EXECUTORS_NAMESPACE,
        endpoint="127.0.0.1:1",
        api_version="v1",
        kind="ConfigMap",
        schema={"allOf": [{"$ref": f"{url}/schema.json"}, {"$ref": "file:///etc/hostname"}]},
    )
    await kube.create(plugin)
    try:
        await hostile_and_ordinary(kube, namespace, asked, alone)
    finally:
        await kube.delete(API_VERSION, "Plugin", "fetcher", namespace=EXECUTORS_NAMESPACE)
        await gone(kube, namespace)


async def gone(kube: KubeClient, namespace: str) -> None:
    """Delete every Bundle of the test (the session's system would go on resyncing them) and wait."""
    for item in (await kube.list(API_VERSION, "Bundle", namespace))["items"]:
        await kube.delete(API_VERSION, "Bundle", item["metadata"]["name"], namespace=namespace)

    async def none_left() -> bool:
        return not (await kube.list(API_VERSION, "Bundle", namespace))["items"]

    await eventually(none_left, within=120, what="the test's Bundles deleted")


async def hostile_and_ordinary(kube: KubeClient, namespace: str, asked: list[str], alone: float) -> None:
    deep = bundle("deep", namespace, resource("cm", config_map("deep", {"x": "PLACEHOLDER"})))
    hostile = [
        filtering("backtracking", namespace, "a" * 60 + "!", "^(a+)+$"),
        filtering("not-re2", namespace, "aa", "(a)\\\\1"),
        bundle(
            "fetching",
            namespace,
            {"name": "made", "spec": {"plugin": {"name": "fetcher", "objectName": "made", "spec": {"a": 1}}}},
        ),
        bundle(
            "expanding",
            namespace,
            resource("big", config_map("big", {"value": "x" * 100_000})),
            resource(
                "bomb",
                config_map("bomb", {"copies": "!{v}" * 20}),
                references=[{"name": "v", "resource": "big", "path": "data.value"}],
            ),
            resource("neighbour", config_map("neighbour")),
        ),
        bundle("reading", namespace, resource("app", reading("reader", MAX_OUTSIDE + 1))),
        bundle(
            "wide", namespace, *(resource(f"r{i}", config_map(f"wide-{i}")) for i in range(MAX_RESOURCES + 1))
        ),
    ]
    began = time.perf_counter()
    await asyncio.gather(
        post(kube, deep, PLACEHOLDER=nested(5000)),
        *(kube.create(b) for b in hostile),
        *(kube.create(ordinary(i, namespace)) for i in range(20, 40)),
    )
    await all_ready(kube, namespace, [f"ordinary-{i}" for i in range(20, 40)])
    print(
        f"20 ordinary Bundles: {alone:.2f} s alone, {time.perf_counter() - began:.2f} s beside 7 hostile ones"
    )

    async def invalid(name: str, *says: str) -> None:
        found = await until_condition(kube, namespace, name, "Error")
        error = condition(found, "Error")
        assert (error["reason"], condition(found, "Ready")["reason"]) == ("TerminalError", "InvalidBundle"), (
            error
        )
        for text in says:
            assert text in error["message"], error

    await invalid("deep", f"nested more than {MAX_DEPTH} levels deep", "spec.resources[0].spec.object.data.x")

    async def refused(name: str, culprit: str, *says: str) -> None:
        """An error of the one resource (as Go Smith): the rest of its Bundle goes on."""
        found = await until_condition(kube, namespace, name, "Error")
        error = resource_condition(found, culprit, "Error")
        assert error["reason"] == "TerminalError", error
        for text in says:
            assert text in error["message"], error

    await refused("not-re2", "cm", "is not an RE2 regular expression")
    await refused("fetching", "made", "Smith resolves no reference outside the schema itself")
    await invalid("reading", f"reads {MAX_OUTSIDE + 1} objects it does not hold")
    await invalid("wide", f"has {MAX_RESOURCES + 1} resources")
    assert asked == [], "a schema's $ref was fetched"

    async def blocked() -> bool:
        found = await get_bundle(kube, namespace, "backtracking")
        return "is not set" in resource_condition(found, "cm", "Blocked").get("message", "")

    await eventually(blocked, within=30, what="the backtracking filter answered: nothing matches")
    expanded = await until_condition(kube, namespace, "expanding", "Error")
    bomb = resource_condition(expanded, "bomb", "Error")
    assert f"more than {MAX_OBJECT_BYTES:,} bytes" in bomb["message"], bomb
    assert (await kube.get("v1", "ConfigMap", "neighbour", namespace))["metadata"]["name"] == "neighbour"
