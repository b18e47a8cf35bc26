"""Trust between Smith's services: every gRPC server serves TLS and answers only the callers it expects.

Why ServiceAccount tokens and not client certificates: a caller's identity is its Kubernetes
ServiceAccount, proved by a projected token of audience `smith.atlassian.com` (the kubelet writes and
rotates it; it is useless against the API server and any other audience) and checked by the API server
itself (TokenReview). Nothing that signs identities lives in the cluster where a service that may read
Secrets (an executor) could mint the controller's; a tenant's own ServiceAccount token is authenticated
and then refused for what it is. TLS (Smith's own CA, see smith_wire.certs) keeps the calls private and
keeps the controller's token from going to any endpoint that is not a Smith server, whatever an
`Executor` registration names.

Everything rotates without a restart: the server's certificate is read again when its file changes (at
the next handshake), the caller's token when its file changes (at the next call), and a channel is made
again when the CA bundle it trusts changes (`ClientTrust.version`). `SMITH_INSECURE_DEVELOPMENT=1` turns
all of it off, for development only, and says so loudly."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc
from prometheus_client import Counter

AUDIENCE: Final = "smith.atlassian.com"
TLS_DIR: Final = Path("/var/run/secrets/smith.atlassian.com/tls")  # tls.crt, tls.key, ca.crt
TOKEN_FILE: Final = Path("/var/run/secrets/smith.atlassian.com/token/token")
INSECURE_FLAG: Final = "SMITH_INSECURE_DEVELOPMENT"
CONTROLLER_ACCOUNT: Final = "smith-controller"
OPEN_SERVICES: Final = ("/grpc.health.v1.Health/",)  # probes need no identity
# How long an answer of the API server about a token is believed: an accepted token until it expires
# (at most ACCEPTED_SECONDS, so a revoked one — its pod deleted — stops working soon after), a refused
# one briefly (a flood of bad tokens costs the API server one review per token per REFUSED_SECONDS).
ACCEPTED_SECONDS: Final = 600.0
REFUSED_SECONDS: Final = 10.0
CACHED_TOKENS: Final = 4096

DENIED = Counter("smith_grpc_denied", "gRPC calls refused before any work, by reason", ["reason"])
log = logging.getLogger("smith.trust")

Review = Callable[[str], Awaitable[str | None]]  # a token -> the user it authenticates (None: refused)


def insecure_requested() -> bool:
    return os.environ.get(INSECURE_FLAG, "") == "1"


def warn_insecure(service: str) -> None:
    log.error(
        "%s: SECURITY IS OFF (%s=1): gRPC in plain text, every caller accepted. For development only; "
        "never run a cluster like this",
        service,
        INSECURE_FLAG,
    )


def controller_user(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{CONTROLLER_ACCOUNT}"


class WatchedFile:
    """A file read again only when it changed (inode, size or mtime: a Secret volume swaps its files)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._data = b""

    def stamp(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return st.st_ino, st.st_size, st.st_mtime_ns

    def read(self) -> tuple[bytes, bool]:
        """The file's bytes, and whether they are new since the last read."""
        stamp = self.stamp()
        if stamp == self._seen:
            return self._data, False
        self._data, self._seen = self.path.read_bytes(), stamp
        return self._data, True


# --- the server's side ----------------------------------------------------------------------------


def token_expiry(token: str) -> float | None:
    """The `exp` claim (Unix seconds) of a JWT, unverified: used only to bound how long the API server's
    verdict on this very token is kept."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    user: str | None  # None: the token was refused
    until: float  # monotonic


@dataclass
class TokenCache:
    """The API server's verdicts on tokens, by the token's digest (never the token), least recently used
    dropped past `size`. Pure: the caller says what time it is."""

    size: int = CACHED_TOKENS
    _verdicts: OrderedDict[str, Verdict] = field(default_factory=OrderedDict)

    def get(self, digest: str, now: float) -> Verdict | None:
        verdict = self._verdicts.get(digest)
        if verdict is None or verdict.until <= now:
            self._verdicts.pop(digest, None)
            return None
        self._verdicts.move_to_end(digest)
        return verdict

    def put(self, digest: str, verdict: Verdict) -> None:
        self._verdicts[digest] = verdict
        self._verdicts.move_to_end(digest)
        while len(self._verdicts) > self.size:
            self._verdicts.popitem(last=False)


def kept_until(token: str, user: str | None, *, now: float, wall: float) -> float:
    """Until when (monotonic) a verdict on `token` holds: see ACCEPTED_SECONDS and REFUSED_SECONDS."""
    if user is None:
        return now + REFUSED_SECONDS
    expiry = token_expiry(token)
    left = ACCEPTED_SECONDS if expiry is None else min(ACCEPTED_SECONDS, expiry - wall)
    return now + max(0.0, left)


def _bearer(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip() or None
    return None


def _refusal(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler[bytes, bytes]:
    async def refuse(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await context.abort(code, message)
        raise AssertionError("abort returns only by raising")

    return grpc.unary_unary_rpc_method_handler(refuse)


class CallerCheck(grpc.aio.ServerInterceptor):
    """Refuses, before any servicer runs, a call without a token (UNAUTHENTICATED), with a token the API
    server does not accept for AUDIENCE (UNAUTHENTICATED), or from a user not in `callers`
    (PERMISSION_DENIED). Health checks pass. Verdicts are cached (TokenCache); concurrent calls with one
    new token wait for one review."""

    def __init__(self, *, callers: frozenset[str], review: Review, service: str) -> None:
        self.callers = callers
        self.review = review
        self.service = service
        self.cache = TokenCache()
        self._reviewing: dict[str, asyncio.Future[str | None]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = details.method
        if method.startswith(OPEN_SERVICES):
            return await continuation(details)
        token = _bearer(details.invocation_metadata)
        if token is None:
            return self._deny(
                "unauthenticated", f"{method} needs a ServiceAccount token of audience {AUDIENCE}"
            )
        try:
            user = await self.identify(token)
        except Exception as e:  # the API server could not answer: try again later, nothing was done
            log.warning("%s: could not review a caller's token: %s", self.service, type(e).__name__)
            DENIED.labels(reason="review_failed").inc()
            return _refusal(grpc.StatusCode.UNAVAILABLE, "the caller's token could not be reviewed now")
        if user is None:
            return self._deny("unauthenticated", f"the token was not accepted for audience {AUDIENCE}")
        if user not in self.callers:
            return self._deny("forbidden", f"{user} may not call {self.service} ({method})", user=user)
        return await continuation(details)

    def _deny(self, reason: str, message: str, *, user: str = "") -> grpc.RpcMethodHandler[bytes, bytes]:
        DENIED.labels(reason=reason).inc()
        log.warning("%s refused a call: %s", self.service, message, extra={"fields": {"caller": user}})
        code = grpc.StatusCode.PERMISSION_DENIED if reason == "forbidden" else grpc.StatusCode.UNAUTHENTICATED
        return _refusal(code, message)

    async def identify(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        if (verdict := self.cache.get(digest, now)) is not None:
            return verdict.user
        if (pending := self._reviewing.get(digest)) is not None:
            return await asyncio.shield(pending)
        future = self._reviewing[digest] = asyncio.get_running_loop().create_future()
        try:
            user = await self.review(token)
            self.cache.put(digest, Verdict(user, kept_until(token, user, now=now, wall=time.time())))
            future.set_result(user)
            return user
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._reviewing[digest]


@dataclass(frozen=True)
class ServerTrust:
    """What a server needs: its certificate and key (files, read again when they change), who may call
    it, and how tokens are reviewed."""

    cert: Path
    key: Path
    callers: frozenset[str]
    review: Review

    def credentials(self) -> grpc.ServerCredentials:
        pair = WatchedFile(self.cert), WatchedFile(self.key)

        def current(force: bool) -> grpc.ServerCertificateConfiguration | None:
            (cert, new_cert), (key, new_key) = pair[0].read(), pair[1].read()
            if not (force or new_cert or new_key):
                return None
            return grpc.ssl_server_certificate_configuration([(key, cert)])

        def fetch() -> grpc.ServerCertificateConfiguration | None:  # at each handshake
            try:
                return current(False)
            except (OSError, ValueError) as e:  # half-written: keep serving with the last one
                log.warning("could not read the new serving certificate: %s", e)
                return None

        first = current(True)
        assert first is not None
        # the fetcher may answer None (no change), whatever the stubs say
        return grpc.dynamic_ssl_server_credentials(first, fetch, require_client_authentication=False)  # type: ignore[arg-type]

    def interceptor(self, service: str) -> CallerCheck:
        return CallerCheck(callers=self.callers, review=self.review, service=service)


# --- the caller's side ----------------------------------------------------------------------------


class _TokenPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, token: Path) -> None:
        self.token = WatchedFile(token)

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            data, _ = self.token.read()
        except OSError as e:
            callback((), e)
            return
        callback((("authorization", f"Bearer {data.decode().strip()}"),), None)


@dataclass(frozen=True)
class ClientTrust:
    """What a caller needs: the CA bundle its servers' certificates chain to, and its token file."""

    ca: Path
    token: Path

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=self.ca.read_bytes()),
            grpc.metadata_call_credentials(_TokenPlugin(self.token), name="smith-serviceaccount-token"),
        )

    def version(self) -> tuple[int, int, int]:
        """Changes when the CA bundle does: channels made before must be made again."""
        return WatchedFile(self.ca).stamp()

    @classmethod
    def from_env(cls) -> ClientTrust:
        tls = Path(os.environ.get("SMITH_TLS_DIR", str(TLS_DIR)))
        return cls(
            ca=Path(os.environ.get("SMITH_TLS_CA", str(tls / "ca.crt"))),
            token=Path(os.environ.get("SMITH_TOKEN_FILE", str(TOKEN_FILE))),
        )


@dataclass(frozen=True)
class Insecure:
    """No TLS, no identity: SMITH_INSECURE_DEVELOPMENT=1 only (and unit tests of gRPC plumbing)."""


def client_trust_from_env() -> ClientTrust | Insecure:
    return Insecure() if insecure_requested() else ClientTrust.from_env()


def callers_from_env(namespace: str) -> frozenset[str]:
    """$SMITH_CALLERS (users, comma-separated), by default the controller's ServiceAccount."""
    named = os.environ.get("SMITH_CALLERS", "")
    return frozenset(c.strip() for c in named.split(",") if c.strip()) or frozenset(
        {controller_user(namespace)}
    )
