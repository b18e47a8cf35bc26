"""Calls to a servicer in the same process (the all-in-one deployment): no port, no channel, no
serialisation. A servicer served locally is named by an endpoint `local:<name>` (what an executor or a
plugin registers, and what the controller is told for the planner and the status service); a stub for
it calls the servicer's method with the request object itself, under the call's deadline, and a call the
servicer aborts raises grpc.aio.AioRpcError with its code and details, as over the network. Whoever can
call has the process's own identity: no token to check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

import grpc

PREFIX: Final = "local:"
_served: dict[str, object] = {}


def serve(endpoint: str, servicer: object) -> None:
    """Serve `servicer` to this process at `endpoint` (`local:<name>`)."""
    if not endpoint.startswith(PREFIX):
        raise ValueError(f"a local endpoint starts with {PREFIX!r}: {endpoint!r}")
    _served[endpoint] = servicer


def withdraw(endpoint: str) -> None:
    _served.pop(endpoint, None)


def stub(endpoint: str) -> LocalStub | None:
    """A stub calling the servicer served at `endpoint` in this process; None when none is."""
    servicer = _served.get(endpoint)
    return None if servicer is None else LocalStub(endpoint, servicer)


class AbortedError(Exception):
    """A servicer's `context.abort`: ends its handler as gRPC's does."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class LocalContext:
    """What a servicer asks of its call's context: its deadline, and how to end it with an error."""

    def __init__(self, deadline: float | None) -> None:
        self._deadline = deadline

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(self._deadline - time.monotonic(), 0.0)

    async def abort(self, code: grpc.StatusCode, details: str = "", *_: object) -> NoReturn:
        raise AbortedError(code, details)


class LocalStub:
    """`stub.Method(request, timeout=...)` calls `servicer.Method(request, context)`."""

    def __init__(self, endpoint: str, servicer: object) -> None:
        self._endpoint, self._servicer = endpoint, servicer

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        handler = getattr(self._servicer, method)

        async def call(request: object, *, timeout: float | None = None, **_: object) -> Any:  # noqa: ASYNC109 - a stub's
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                async with asyncio.timeout(timeout):
                    return await handler(request, LocalContext(deadline))
            except AbortedError as e:
                raise _error(e.code, e.details) from None
            except grpc.aio.AioRpcError:
                raise
            except TimeoutError:
                raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            except Exception as e:  # as a server answers a handler that raised
                raise _error(grpc.StatusCode.UNKNOWN, f"{self._endpoint}.{method}: {e!r}") from e

        return call


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    empty = grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, empty, empty, details=details)
