"""Where the cluster is, how to trust it and how to authenticate to it — read as kubectl reads it.

A Pod's service account (the way every service runs in a cluster) is read here, without the
`kubernetes` package: its token, CA and the API server's address from the environment. A kubeconfig
(merged $KUBECONFIG paths, contexts, client certificates, tokens, `tokenFile`, `exec` credential
plugins, auth providers) is loaded with the `kubernetes` package, imported only then (it costs a
process some 39 MiB and two seconds of start). This module keeps what our own transport needs: the
server, a TLS context and the current Authorization header. Credentials are looked at again when they
may have changed: an exec credential or a service account token past its refresh time, and after any
401 (`reload`: a token file rewritten, a token revoked).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CHECK_EVERY = 10.0  # seconds between looks at whether a credential needs refreshing


class KubeConfigError(ValueError):
    pass


@dataclass
class Settings:
    """A cluster and a user as the transport needs them (the attributes of the `kubernetes` package's
    Configuration, which a kubeconfig is loaded into)."""

    host: str
    ssl_ca_cert: str | None = None
    verify_ssl: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    api_key: dict[str, str] = field(default_factory=dict)
    refresh_api_key_hook: Callable[[Any], None] | None = None


Loader = Callable[[], Any]  # Settings, or the kubernetes package's Configuration


class KubeConfig:
    """One cluster and one user. `load`, `in_cluster` or `auto` make one; `reload` reads it all again."""

    def __init__(self, loader: Loader, namespace: str) -> None:
        self._loader = loader
        self.namespace = namespace
        self._settings = self._load()
        self._checked = time.monotonic()

    def _load(self) -> Any:
        try:
            settings = self._loader()
        except (OSError, KeyError, ValueError) as e:
            if isinstance(e, KubeConfigError):
                raise
            raise KubeConfigError(f"cannot read cluster credentials: {e}") from e
        if not settings.host:
            raise KubeConfigError("the kubeconfig names no server")
        return settings

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, context: str | None = None) -> KubeConfig:
        """Read `path` (default: every file of $KUBECONFIG, merged as kubectl does, then ~/.kube/config) at
        `context` (default: current-context)."""
        try:  # only for a kubeconfig: see the module
            from kubernetes.client import Configuration
            from kubernetes.config import ConfigException, kube_config
        except ImportError as e:
            raise KubeConfigError(
                "reading a kubeconfig needs the kubernetes package: install smith-kube[kubeconfig] "
                "(in a Pod, Smith reads its service account without it)"
            ) from e

        source = str(path) if path is not None else _sources()
        if not any(Path(p).is_file() for p in source.split(os.pathsep) if p):
            raise KubeConfigError(f"no kubeconfig at {source}")
        try:
            contexts, current = kube_config.list_kube_config_contexts(source)  # type: ignore[no-untyped-call]
        except ConfigException as e:
            raise KubeConfigError(str(e)) from e
        name = context or (current or {}).get("name")
        chosen = next((c for c in contexts or () if c.get("name") == name), None)
        if chosen is None:
            raise KubeConfigError(f"kubeconfig has no context named {name!r}")
        namespace = str((chosen.get("context") or {}).get("namespace") or "default")

        def loader() -> Any:
            settings = Configuration()
            try:
                kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=source, context=name, client_configuration=settings, persist_config=False
                )
            except ConfigException as e:
                raise KubeConfigError(f"cannot read cluster credentials: {e}") from e
            if settings.host == Configuration().host:  # the package's default: none was named
                raise KubeConfigError("the kubeconfig names no server")
            return settings

        return cls(loader, namespace)

    @classmethod
    def in_cluster(cls) -> KubeConfig:
        """The Pod's service account; its token is read again every CHECK_EVERY seconds (kubelets rotate
        it) and after a 401."""
        mounted = SERVICE_ACCOUNT
        return cls(lambda: _service_account(mounted), (mounted / "namespace").read_text().strip())

    @classmethod
    def auto(cls, *, context: str | None = None) -> KubeConfig:
        """$KUBECONFIG or ~/.kube/config when there is one, else the in-cluster service account."""
        if (
            os.environ.get("KUBECONFIG")
            or Path(_default_path()).exists()
            or "KUBERNETES_SERVICE_HOST" not in os.environ
        ):
            return cls.load(context=context)
        return cls.in_cluster()

    # --- what the transport uses -------------------------------------------------------------------

    @property
    def server(self) -> str:
        return str(self._settings.host).rstrip("/")

    @property
    def insecure(self) -> bool:
        return not self._settings.verify_ssl

    @property
    def ca_file(self) -> str | None:
        return self._settings.ssl_ca_cert or None

    @property
    def client_certificate(self) -> tuple[str, str] | None:
        """The client certificate and key files, when the user authenticates with one."""
        cert, key = self._settings.cert_file, self._settings.key_file
        return (cert, key) if cert and key else None

    def tls(self) -> tuple[str | None, tuple[str, str] | None, bool]:
        """What the TLS context is made of: when it changes, connections must be made anew."""
        return self.ca_file, self.client_certificate, self.insecure

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https://"):
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if (pair := self.client_certificate) is not None:
            context.load_cert_chain(*pair)
        return context

    def authorization(self) -> str | None:
        """The Authorization header value now (`Bearer …` or `Basic …`), or None (client certificate)."""
        value = self._settings.api_key.get("BearerToken") or self._settings.api_key.get("authorization")
        return str(value) if value else None

    def token(self) -> str | None:
        """The bearer token alone, for clients that add the scheme themselves."""
        value = self.authorization()
        scheme, _, token = (value or "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    async def fresh(self) -> None:
        """Refresh a credential due for it (an exec credential near its expiry, the service account's
        token each minute). Looks at most every CHECK_EVERY seconds; the plugin runs off the event loop."""
        hook = self._settings.refresh_api_key_hook
        if hook is None or time.monotonic() - self._checked < CHECK_EVERY:
            return
        self._checked = time.monotonic()
        await asyncio.to_thread(hook, self._settings)

    async def reload(self) -> None:
        """Read everything again (after a 401: the token file was rewritten, the credential revoked)."""
        self._settings = await asyncio.to_thread(self._load)
        self._checked = time.monotonic()


def _service_account(mounted: Path) -> Settings:
    """The API server as a Pod sees it ($KUBERNETES_SERVICE_HOST and _PORT), trusted with the mounted
    CA, authenticated with the mounted token (read again by `fresh`)."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeConfigError(
            "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
        )
    token, ca = mounted / "token", mounted / "ca.crt"
    if not ca.is_file():
        raise KubeConfigError(f"no service account CA at {ca}")

    def read_token(settings: Settings) -> None:
        settings.api_key["BearerToken"] = f"Bearer {token.read_text().strip()}"

    server = f"[{host}]" if ":" in host else host
    settings = Settings(host=f"https://{server}:{port}", ssl_ca_cert=str(ca), refresh_api_key_hook=read_token)
    read_token(settings)
    return settings


def _default_path() -> str:
    return str(Path.home() / ".kube" / "config")


def _sources() -> str:
    """Where kubectl reads its kubeconfig: every file of $KUBECONFIG, else ~/.kube/config."""
    return os.environ.get("KUBECONFIG") or _default_path()


PATH_FIELDS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def minified(context: str | None = None, source: str | None = None) -> dict[str, Any]:
    """`kubectl config view --minify`: one context with its cluster and user, from the merged kubeconfig
    files (the first file naming an entry wins, as in kubectl). Files the entries name become absolute
    paths; tokens, token files and exec plugins stay as they are, so whoever reads it refreshes them."""
    paths = [
        Path(p) for p in (source or os.environ.get("KUBECONFIG") or _default_path()).split(os.pathsep) if p
    ]
    docs = [(p.parent.resolve(), yaml.safe_load(p.read_text()) or {}) for p in paths if p.is_file()]
    if not docs:
        raise KubeConfigError(f"no kubeconfig at {os.pathsep.join(map(str, paths))}")
    name = context or next((d["current-context"] for _, d in docs if d.get("current-context")), None)

    def entry(section: str, wanted: Any) -> dict[str, Any]:
        for base, doc in docs:
            for item in doc.get(f"{section}s") or []:
                if item.get("name") == wanted:
                    body = dict(item.get(section) or {})
                    for key in PATH_FIELDS.get(section, ()):
                        if isinstance(body.get(key), str):
                            body[key] = str(base / body[key])
                    return {"name": wanted, section: body}
        raise KubeConfigError(f"kubeconfig has no {section} named {wanted!r}")

    chosen = entry("context", name)
    parts = chosen["context"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "contexts": [chosen],
        "clusters": [entry("cluster", parts.get("cluster"))],
        "users": [entry("user", parts["user"])] if parts.get("user") else [],
    }
