"""The client: discovery, CRUD, server-side apply and watch over aiohttp.

Every failure of a request is a KubeError: an ApiError when the API server answered with an error
status (404 NotFoundError, 409 ConflictError, 410 GoneError), a TransportError when no answer came
(refused, reset, timed out; DeadlineError: not sent). Callers never handle aiohttp's exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Self
from urllib.parse import quote

import aiohttp
from prometheus_client import Counter

from smith_engine.codec import dumps, loads, yaml_safe
from smith_engine.redaction import without_values
from smith_kube.config import KubeConfig
from smith_kube.ratelimit import TokenBucket

# The user every request made in this context acts as (the `Impersonate-User` header), or None: the
# client's own identity. A context variable, so concurrent work for different users never mixes: tasks
# started inside `impersonating` carry it, others do not.
ACTING_AS: contextvars.ContextVar[str | None] = contextvars.ContextVar("acting_as", default=None)


@contextlib.contextmanager
def impersonating(user: str | None) -> Iterator[None]:
    """Make every request in this context (and tasks started in it) as `user`: the API server checks
    that this client may impersonate it, then authorizes the request as that user alone."""
    token = ACTING_AS.set(user)
    try:
        yield
    finally:
        ACTING_AS.reset(token)


JSONObject = dict[str, Any]
# What aiohttp and the socket layer raise when no answer came; wrapped in TransportError.
_NO_ANSWER: Final = (aiohttp.ClientError, OSError, TimeoutError)
APPLY_PATCH: Final = "application/apply-patch+yaml"
MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"


class KubeError(Exception):
    """A request to the API server failed: answered with an error (ApiError) or not at all
    (TransportError)."""


class TransportError(KubeError):
    """No answer came (connection refused or reset, a timeout, a stream cut): worth trying again."""


class ApiError(KubeError):
    """The API server answered with an error status."""

    def __init__(
        self, status: int, body: Mapping[str, Any] | None = None, *, method: str = "", path: str = ""
    ):
        self.status = status
        self.body: Mapping[str, Any] = body or {}
        self.reason = str(self.body.get("reason", ""))
        raw = str(self.body.get("message", "")) or f"HTTP {status}"
        # A server-side apply whose object does not fit the kind's schema fails with a 500 that no
        # retry can fix, worded with Go value dumps: say it plainly, and as the object's fault.
        typed = _TYPED_PATCH.match(raw)
        self.invalid_object = typed is not None
        self.message = without_values(  # never a value it echoes: it may be a Secret's
            _GO_VALUE.sub(lambda m: _kind_of_go_value(m.group(1)), typed.group(1)) if typed else raw
        )
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}".strip())

    @property
    def retriable(self) -> bool:
        return not self.invalid_object and (self.status in (408, 429) or self.status >= 500)


_TYPED_PATCH: Final = re.compile(r"failed to create typed patch object \([^)]*\): \.?(.*)\Z", re.DOTALL)
_GO_VALUE: Final = re.compile(r"&value\.valueUnstructured\{Value:(.*?)\}(?=$|[,;\n])")


def _kind_of_go_value(text: str) -> str:
    """What kind of JSON value a Go dump (`map[string]interface {}{...}`, `5`, `true`) shows."""
    if text.startswith("map["):
        return "object"
    if text.startswith("[]"):
        return "list"
    if text in ("true", "false"):
        return "boolean"
    if text == "<nil>":
        return "null"
    if re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
        return "number"
    return "string"


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    """409: a stale resourceVersion, or (reason AlreadyExists) a create of an existing name."""


class GoneError(ApiError):
    """410: a watch's resourceVersion is too old; list again."""


class DeadlineError(TransportError):
    """The caller's deadline came before the request could be sent: it was not sent."""


class UnservedKindError(LookupError):
    """The API server does not serve this apiVersion/kind; `served` lists its group's served versions."""

    def __init__(self, api_version: str, kind: str, served: tuple[str, ...]):
        self.api_version, self.kind, self.served = api_version, kind, served
        group = api_version.rpartition("/")[0] or "core"
        known = ", ".join(served) if served else "none"
        super().__init__(
            f"the API server does not serve {kind} in {api_version} "
            f"(versions of group {group} it serves: {known})"
        )


_ERRORS: Final[Mapping[int, type[ApiError]]] = {404: NotFoundError, 409: ConflictError, 410: GoneError}


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace)}")
        parts.append(self.plural)
        if name:
            parts.append(quote(name))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    object: JSONObject


THROTTLED = Counter(
    "smith_kube_api_throttled",
    "Requests the API server turned away (429, or 5xx with Retry-After) and that were sent again",
    ["verb", "code"],
)
THROTTLED_ATTEMPTS: Final = 10
RETRY_AFTER_MAX: Final = 30.0  # seconds: a longer wait asked for is cut to this
REQUEST_CONNECTIONS: Final = 64  # at once to the API server, besides one per watch
LARGE_BODY: Final = 1 << 20  # bytes: aiohttp's own threshold for a warning on a bytes body


def retry_after(status: int, header: str | None) -> float | None:
    """Seconds to wait before sending a request again that the server turned away unprocessed (None:
    not such an answer). 429 without a usable `Retry-After` waits 1 s; a date is read as 1 s too."""
    if status != 429 and (status < 500 or header is None):
        return None
    try:
        seconds = float(header) if header is not None else 1.0
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


API_ERRORS = Counter(
    "smith_kube_api_errors", "Kubernetes API requests that failed, by verb and HTTP code", ["verb", "code"]
)


def _raise_for(status: int, body: bytes, method: str, path: str) -> None:
    if status >= 400:
        API_ERRORS.labels(verb=method, code=str(status)).inc()
        raise _ERRORS.get(status, ApiError)(status, _decode(body), method=method, path=path)


@contextlib.contextmanager
def _answered(method: str, path: str) -> Iterator[None]:
    """A request that got no answer at all (connection refused, timeout, a stream cut) raises
    TransportError, counted as code `none`."""
    try:
        yield
    except _NO_ANSWER as e:
        API_ERRORS.labels(verb=method, code="none").inc()
        raise TransportError(f"{method} {path}: no answer: {type(e).__name__}: {e}".rstrip(": ")) from e


def _bounded(options: dict[str, Any], deadline: float, what: str) -> dict[str, Any]:
    """`options` of one attempt of a request that must be done by `deadline`: the client waits no
    longer than the time left, and tells the API server to give up then too (its `timeout` parameter:
    a request still waiting in the server, e.g. for its turn, is then refused, not carried out late)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineError(f"{what}: not sent: the caller's deadline passed")
    limit: aiohttp.ClientTimeout | None = options.get("timeout")
    total = left if limit is None or limit.total is None else min(limit.total, left)
    params = {**(options.get("params") or {}), "timeout": f"{max(1, int(left * 1000))}ms"}
    return {**options, "params": params, "timeout": aiohttp.ClientTimeout(total=total)}


class KubeClient:
    """Connections to one API server: a pool of REQUEST_CONNECTIONS for requests, and one connection
    per watch, apart (HTTP/1.1 holds a connection for each watch: watches sharing the requests' pool
    would leave requests waiting, all of them once there are as many watches as connections). Use as
    an async context manager, or call `close()`. With `rate`, every request (a watch's too) waits for
    a token first."""

    def __init__(self, config: KubeConfig, *, timeout: float = 30.0, rate: TokenBucket | None = None) -> None:
        self.config = config
        self.rate = rate
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._watches: aiohttp.ClientSession | None = None
        self._ssl = config.ssl_context()
        self._resources: dict[tuple[str, str], ResourceInfo] = {}
        self._preferred: dict[str, str] = {}
        self._discovery_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for session in (self._session, self._watches):
            if session is not None:
                await session.close()
        self._session = self._watches = None

    def _http(self, *, watch: bool = False) -> aiohttp.ClientSession:
        if watch:
            self._watches = self._watches or self._new_session(limit=0)  # 0: no limit
            return self._watches
        self._session = self._session or self._new_session(limit=REQUEST_CONNECTIONS)
        return self._session

    def _new_session(self, *, limit: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=self.config.server,
            headers={"Accept": "application/json"},
            connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=limit),
        )

    @contextlib.asynccontextmanager
    async def _send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        *,
        watch: bool = False,
        deadline: float | None = None,
        **options: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request with the current credentials. A 401 reads the credentials again (a rotated token
        file, an expired or revoked token, a new client certificate) and sends the request once more. A
        request the server turned away unprocessed — 429 Too Many Requests (priority and fairness, a
        proxy), or a 5xx with `Retry-After` — is sent again after the time it asks, up to
        THROTTLED_ATTEMPTS times, as client-go does. With `deadline` (monotonic), no attempt is sent
        after it (DeadlineError), and each is bounded by it on both ends (see `request`)."""
        renewed, throttled = False, 0
        while True:
            if self.rate is not None:
                await self.rate.wait()
            if deadline is not None:
                options = _bounded(options, deadline, f"{method} {path}")
            await self.config.fresh()
            auth = self.config.authorization()
            sent = {**(headers or {}), **({"Authorization": auth} if auth else {})}
            if (user := ACTING_AS.get()) is not None:
                sent["Impersonate-User"] = user
            body = {"data": _streamed(options["data"])} if "data" in options else {}
            session = self._http(watch=watch)
            async with session.request(method, path, headers=sent, **options | body) as response:
                wait = retry_after(response.status, response.headers.get("Retry-After"))
                unauthorized = response.status == 401 and not renewed
                if not unauthorized and (wait is None or throttled >= THROTTLED_ATTEMPTS):
                    yield response
                    return
            if unauthorized:
                renewed = True
                await self._renew_credentials()
            else:
                throttled += 1
                THROTTLED.labels(verb=method, code=str(response.status)).inc()
                await asyncio.sleep(wait or 0)

    async def _renew_credentials(self) -> None:
        tls = self.config.tls()
        await self.config.reload()
        if self.config.tls() != tls:
            self._ssl = self.config.ssl_context()
            await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: float | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSONObject:
        """One request, its answer decoded. With `deadline` (monotonic time), the request is sent only
        before it and must be answered by it: the API server is told the time left (`timeout`), so a
        write it could not begin in time is not made. `headers` are sent besides the client's own."""
        data = None if body is None else dumps(body)
        if data is not None and content_type == APPLY_PATCH:
            data = yaml_safe(data)  # read as YAML by the API server
        headers = {**(headers or {}), **({"Content-Type": content_type} if data is not None else {})}
        limit = self._timeout if request_timeout is None else aiohttp.ClientTimeout(total=request_timeout)
        with _answered(method, path):
            async with self._send(
                method, path, params=params, data=data, headers=headers, timeout=limit, deadline=deadline
            ) as response:
                body = await response.read()
                _raise_for(response.status, body, method, path)
                return _decode(body)

    async def request_text(self, method: str, path: str) -> str:
        """A non-JSON answer as text (e.g. the API server's own /metrics)."""
        with _answered(method, path):
            async with self._send(method, path, headers={"Accept": "text/plain"}) as response:
                body = await response.read()
                _raise_for(response.status, body, method, path)
                return body.decode()

    # --- discovery --------------------------------------------------------------------------------

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """How the server serves `kind` in `api_version`; asks discovery again once on a miss (new CRDs)."""
        key = (api_version, kind)
        if (found := self._resources.get(key)) is not None:
            return found
        async with self._discovery_lock:
            await self._discover(api_version)
        if (found := self._resources.get(key)) is not None:
            return found
        raise UnservedKindError(api_version, kind, await self.served_versions(api_version.rpartition("/")[0]))

    def forget(self, api_version: str | None = None) -> None:
        """Drop cached discovery (all of it, or one group/version), e.g. after a CRD changed."""
        if api_version is None:
            self._resources.clear()
            self._preferred.clear()
        else:
            for key in [k for k in self._resources if k[0] == api_version]:
                del self._resources[key]

    async def _discover(self, api_version: str) -> None:
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            listing = await self.request("GET", path)
        except NotFoundError:
            return
        for r in listing.get("resources", []):
            if "/" not in r["name"]:
                info = ResourceInfo(api_version, r["kind"], r["name"], bool(r["namespaced"]))
                self._resources[(api_version, r["kind"])] = info

    async def preferred_version(self, group: str) -> str:
        """The apiVersion the server prefers for `group` (`v1` for the core group)."""
        if not group:
            return "v1"
        if (found := self._preferred.get(group)) is not None:
            return found
        try:
            info = await self.request("GET", f"/apis/{group}")
        except NotFoundError:
            raise UnservedKindError(f"{group}/?", "any kind", ()) from None
        self._preferred[group] = version = str(info["preferredVersion"]["groupVersion"])
        return version

    async def served_versions(self, group: str) -> tuple[str, ...]:
        if not group:
            return ("v1",)
        try:
            found = await self.request("GET", f"/apis/{group}")
        except NotFoundError:
            return ()
        return tuple(v["groupVersion"] for v in found.get("versions", []))

    async def _path(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str | None = None,
        sub: str | None = None,
    ) -> str:
        return (await self.resource(api_version, kind)).path(namespace, name, sub)

    # --- objects ----------------------------------------------------------------------------------

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> JSONObject:
        return await self.request("GET", await self._path(api_version, kind, namespace, name))

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_from: str | None = None,
    ) -> JSONObject:
        """A list; with `limit`, one page of it (its `metadata.continue` asks for the next, given back
        as `continue_from`: every page is of the same snapshot)."""
        params = _selectors(label_selector, field_selector)
        if limit is not None:
            params["limit"] = str(limit)
        if continue_from:
            params["continue"] = continue_from
        return await self.request(
            "GET", await self._path(api_version, kind, namespace), params=params or None
        )

    async def create(
        self, obj: Mapping[str, Any], *, namespace: str | None = None, deadline: float | None = None
    ) -> JSONObject:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        path = await self._path(obj["apiVersion"], obj["kind"], ns)
        return await self.request("POST", path, body=obj, deadline=deadline)

    async def replace(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> JSONObject:
        """PUT: fails with ConflictError when `obj`'s resourceVersion is stale."""
        meta = obj["metadata"]
        path = await self._path(
            obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource
        )
        return await self.request("PUT", path, body=obj)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
        deadline: float | None = None,
    ) -> JSONObject:
        path = await self._path(api_version, kind, namespace, name, subresource)
        return await self.request("PATCH", path, body=patch, content_type=content_type, deadline=deadline)

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = True,
        subresource: str | None = None,
        dry_run: bool = False,
        deadline: float | None = None,
    ) -> JSONObject:
        """Server-side apply: the server merges `obj` into what it holds, owning the fields `obj` names.
        With `dry_run`, nothing is stored: the answer is the object as the apply would leave it."""
        meta = obj["metadata"]
        path = await self._path(
            obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource
        )
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        if dry_run:
            params["dryRun"] = "All"
        return await self.request(
            "PATCH", path, params=params, body=obj, content_type=APPLY_PATCH, deadline=deadline
        )

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        *,
        namespace: str | None = None,
        propagation: str = "Background",
        uid: str | None = None,
        resource_version: str | None = None,
        deadline: float | None = None,
    ) -> JSONObject:
        """Delete; with `uid`, only that incarnation of the object, with `resource_version` only that
        version of it (preconditions: ConflictError otherwise)."""
        body: JSONObject = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        if kept := {k: v for k, v in preconditions.items() if v}:
            body["preconditions"] = kept
        path = await self._path(api_version, kind, namespace, name)
        return await self.request("DELETE", path, body=body, deadline=deadline)

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` until the server closes the stream. Raises GoneError when
        `resource_version` is too old; an ERROR event becomes the matching ApiError."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            **_selectors(label_selector, field_selector),
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        path = await self._path(api_version, kind, namespace)
        endless = aiohttp.ClientTimeout(total=None, sock_connect=10)
        with _answered("WATCH", path):
            async with self._send("GET", path, params=params, timeout=endless, watch=True) as response:
                if response.status >= 400:
                    _raise_for(response.status, await response.read(), "WATCH", path)
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _event(loads(line), path)


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _event(raw: Mapping[str, Any], path: str) -> WatchEvent:
    if raw.get("type") == "ERROR":
        status = raw.get("object") or {}
        code = int(status.get("code", 500))
        API_ERRORS.labels(verb="WATCH", code=str(code)).inc()
        raise _ERRORS.get(code, ApiError)(code, status, method="WATCH", path=path)
    return WatchEvent(type=raw["type"], object=raw["object"])


def _decode(body: bytes) -> JSONObject:
    if not body:
        return {}
    try:
        decoded = loads(body)
    except ValueError:  # not JSON (json.JSONDecodeError is a ValueError)
        return {"message": body.decode(errors="replace").strip()}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


def _streamed(data: Any) -> Any:
    """A body over 1 MiB as a stream, read by aiohttp in chunks (it sends such bytes only with a warning:
    they may hold the event loop); a fresh one for each attempt."""
    return io.BytesIO(data) if isinstance(data, bytes) and len(data) > LARGE_BODY else data
