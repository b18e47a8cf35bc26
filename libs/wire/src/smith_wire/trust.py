"""Trust between Smith's services: every gRPC server serves TLS and answers only the callers it expects.

Why ServiceAccount tokens and not client certificates: a caller's identity is its Kubernetes
ServiceAccount, proved by a projected token whose audience is the one server it calls,
`smith.atlassian.com/<target>` (`planner`, `status`, `executor-core`, `plugin-app`, ...: the kubelet
writes and rotates one per target; each is useless against the API server, and against any other
server, so a server cannot replay what it was sent) and checked by the API server itself
(TokenReview). Nothing that signs identities lives in the cluster where a service that may read
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

AUDIENCE: Final = "smith.atlassian.com"  # tokens are for AUDIENCE/<target>: see `audience`
TLS_DIR: Final = Path("/var/run/secrets/smith.atlassian.com/tls")  # tls.crt, tls.key, ca.crt
TOKEN_DIR: Final = Path("/var/run/secrets/smith.atlassian.com/tokens")  # a token file per target
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


def audience(target: str) -> str:
    """The audience of tokens for one server: `planner`, `status`, `executor-<name>`, `plugin-<name>`."""
    return f"{AUDIENCE}/{target}"


def target_of(service: str) -> str:
    """A server's target name from its service name (`smith-executor-core` -> `executor-core`)."""
    return service.removeprefix("smith-")


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


def claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified ({} when it is none): used only to turn away, without asking the API
    server, what could not pass anyway (another audience, expired), and to bound how long the API
    server's verdict on this very token is kept."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def token_expiry(token: str) -> float | None:
    try:
        return float(claims(token)["exp"])
    except (KeyError, TypeError, ValueError):
        return None


def unfit(token: str, audience: str, *, wall: float) -> str | None:
    """Why `token` cannot be accepted for `audience`, seen from its own claims; None: ask the API server."""
    found = claims(token)
    aud = found.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        return f"the token is not for audience {audience}"
    if (expiry := token_expiry(token)) is not None and expiry <= wall:
        return "the token has expired"
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
    """Refuses, before any servicer runs, a call without a token (UNAUTHENTICATED), with a token not for
    this server's `audience` or that the API server does not accept for it (UNAUTHENTICATED), or from a
    user not in `callers` (PERMISSION_DENIED). Health checks pass. Verdicts are cached (TokenCache);
    concurrent calls with one new token wait for one review, which no caller's cancellation stops."""

    def __init__(self, *, callers: frozenset[str], review: Review, service: str, audience: str) -> None:
        self.callers = callers
        self.review = review
        self.service = service
        self.audience = audience
        self.cache = TokenCache()
        self._reviewing: dict[str, asyncio.Task[str | None]] = {}

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
            return self._deny("unauthenticated", f"{method} needs a token of audience {self.audience}")
        if problem := unfit(token, self.audience, wall=time.time()):
            return self._deny("unauthenticated", problem)
        try:
            user = await self.identify(token)
        except Exception as e:  # the API server could not answer: try again later, nothing was done
            log.warning("%s: could not review a caller's token: %s", self.service, type(e).__name__)
            DENIED.labels(reason="review_failed").inc()
            return _refusal(grpc.StatusCode.UNAVAILABLE, "the caller's token could not be reviewed now")
        if user is None:
            return self._deny("unauthenticated", f"the token was not accepted for audience {self.audience}")
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
        if (verdict := self.cache.get(digest, time.monotonic())) is not None:
            return verdict.user
        if (review := self._reviewing.get(digest)) is None:
            review = self._reviewing[digest] = asyncio.create_task(self._review(token, digest))
        return await asyncio.shield(review)

    async def _review(self, token: str, digest: str) -> str | None:
        try:
            user = await self.review(token)
            now = time.monotonic()
            self.cache.put(digest, Verdict(user, kept_until(token, user, now=now, wall=time.time())))
            return user
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
    audience: str  # tokens for this server only (see `audience`)

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
        return CallerCheck(callers=self.callers, review=self.review, service=service, audience=self.audience)


# --- the caller's side ----------------------------------------------------------------------------


class _TokenPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, token: Path) -> None:
        self.token = WatchedFile(token)

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            data, _ = self.token.read()
        except OSError as e:
            log.warning(
                "no token for this call at %s (a projected token of its audience): %s", self.token.path, e
            )
            callback((), e)
            return
        callback((("authorization", f"Bearer {data.decode().strip()}"),), None)


@dataclass(frozen=True)
class ClientTrust:
    """What a caller needs: the CA bundle its servers' certificates chain to, and a folder of tokens, one
    file per target (`planner`, `executor-core`, ...), each of that target's audience."""

    ca: Path
    tokens: Path

    def credentials(self, target: str) -> grpc.ChannelCredentials:
        if not target:
            raise ValueError("a channel with ClientTrust names the server it calls (its token's audience)")
        return grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=self.ca.read_bytes()),
            grpc.metadata_call_credentials(_TokenPlugin(self.tokens / target), name=f"token for {target}"),
        )

    def version(self) -> tuple[int, int, int]:
        """Changes when the CA bundle does: channels made before must be made again."""
        return WatchedFile(self.ca).stamp()

    @classmethod
    def from_env(cls) -> ClientTrust:
        tls = Path(os.environ.get("SMITH_TLS_DIR", str(TLS_DIR)))
        return cls(
            ca=Path(os.environ.get("SMITH_TLS_CA", str(tls / "ca.crt"))),
            tokens=Path(os.environ.get("SMITH_TOKEN_DIR", str(TOKEN_DIR))),
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
