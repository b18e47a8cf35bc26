"""A plugin service: Describe and Process over gRPC (`proto/smith/v1/plugin.proto`), and its life:
serve, publish its `Plugin` resource, heartbeat, withdraw. A plugin is a function from its spec (and
what Smith gives it) to an object; it raises PluginError to say why it could not make one."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from smith_wire.convert import call_from_proto, dump, plugin_to_proto
from smith_wire.rpc import Register, run_service

from smith.v1 import plugin_pb2, plugin_pb2_grpc
from smith_engine.model import JSONObject
from smith_engine.plugins import PLUGIN_KIND, DependencyInput, PluginInfo, plugin_object
from smith_executor import registration
from smith_kube import KubeClient, KubeConfig, TokenBucket


class PluginError(Exception):
    """The plugin could not make the object: `str()` says why; `retriable` whether trying again helps."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


Dependency = DependencyInput  # what a plugin gets of each dependency (see smith_engine.plugins)


@dataclass(frozen=True)
class Request:
    """What Smith gives a plugin (as Smith's plugins got it): the Bundle's namespace and the call."""

    namespace: str
    resource: str
    spec: JSONObject
    actual: JSONObject | None
    dependencies: Mapping[str, Dependency]


Make = Callable[[Request], JSONObject]


def request_of(msg: plugin_pb2.ProcessRequest) -> Request:
    call = call_from_proto(msg)
    dependencies = {d.resource: d for d in call.dependencies}
    return Request(msg.bundle.namespace, call.resource, call.spec, call.actual, dependencies)


@dataclass(frozen=True)
class Plugin:
    name: str
    api_version: str
    kind: str
    schema: Mapping[str, Any]
    make: Make

    @property
    def info(self) -> PluginInfo:
        return PluginInfo(self.name, "", self.api_version, self.kind, self.schema)


class PluginServicer(plugin_pb2_grpc.PluginServicer):
    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin

    async def Describe(  # noqa: N802 - gRPC method name
        self, request: plugin_pb2.DescribeRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> plugin_pb2.DescribeResponse:
        return plugin_to_proto(self.plugin.info)

    async def Process(  # noqa: N802 - gRPC method name
        self, request: plugin_pb2.ProcessRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> plugin_pb2.ProcessResponse:
        try:
            made = self.plugin.make(request_of(request))
        except PluginError as e:
            return plugin_pb2.ProcessResponse(error_message=str(e), retriable=e.retriable)
        return plugin_pb2.ProcessResponse(object_json=dump(made))

    def registration(self) -> Register:
        return lambda server: plugin_pb2_grpc.add_PluginServicer_to_server(self, server)


def registration_object(plugin: Plugin, *, endpoint: str) -> dict[str, Any]:
    return plugin_object(
        name=plugin.name,
        namespace=registration.smith_namespace(),
        endpoint=endpoint,
        api_version=plugin.api_version,
        kind=plugin.kind,
        schema=plugin.schema,
    )


async def register_plugin(kube: KubeClient, plugin: Plugin, endpoint: str) -> asyncio.Task[None]:
    """Publish `plugin`'s Plugin resource, served at `endpoint`; the task that keeps its heartbeat."""
    await registration.publish_object(kube, registration_object(plugin, endpoint=endpoint))
    return asyncio.create_task(registration.keep_alive(kube, name=plugin.name, kind=PLUGIN_KIND))


def run_plugin(plugin: Plugin, *, default_address: str) -> None:
    """Serve `plugin` and keep its Plugin resource current until the process is told to stop."""
    kube = KubeClient(KubeConfig.auto(), rate=TokenBucket.from_env())
    tasks: list[asyncio.Task[None]] = []

    async def started(port: int) -> None:
        endpoint = os.environ.get("SMITH_ADVERTISE", f"127.0.0.1:{port}")
        tasks.append(await register_plugin(kube, plugin, endpoint))

    async def stopping() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await registration.withdraw(kube, name=plugin.name, kind=PLUGIN_KIND)
        await kube.close()

    run_service(
        f"smith-plugin-{plugin.name}",
        [PluginServicer(plugin).registration()],
        default_address=default_address,
        started=started,
        stopping=stopping,
    )
