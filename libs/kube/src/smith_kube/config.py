"""kubeconfig files: the server, how to trust it and how to authenticate to it."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class KubeConfig:
    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    insecure: bool = False
    namespace: str = "default"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, context: str | None = None) -> KubeConfig:
        """Read `path` (default: $KUBECONFIG, then ~/.kube/config) at `context` (default: current-context)."""
        if path is None:
            path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config"
        source = Path(path)
        doc: Mapping[str, Any] = yaml.safe_load(source.read_text()) or {}
        name = context or doc.get("current-context")
        ctx = _named(doc, "contexts", name, "context")
        cluster = _named(doc, "clusters", ctx.get("cluster"), "cluster")
        user = _named(doc, "users", ctx.get("user"), "user") if ctx.get("user") else {}
        base = source.parent
        return cls(
            server=str(cluster["server"]).rstrip("/"),
            ca_pem=_blob(cluster, "certificate-authority", base),
            cert_pem=_blob(user, "client-certificate", base),
            key_pem=_blob(user, "client-key", base),
            token=user.get("token"),
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
            namespace=str(ctx.get("namespace") or "default"),
        )

    @classmethod
    def in_cluster(cls) -> KubeConfig:
        """The Pod's service account (token, CA and namespace mounted by the kubelet)."""
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return cls(
            server=f"https://{host}:{port}",
            ca_pem=(SERVICE_ACCOUNT / "ca.crt").read_bytes(),
            token=(SERVICE_ACCOUNT / "token").read_text().strip(),
            namespace=(SERVICE_ACCOUNT / "namespace").read_text().strip(),
        )

    @classmethod
    def auto(cls, *, context: str | None = None) -> KubeConfig:
        """$KUBECONFIG or ~/.kube/config when there is one, else the in-cluster service account."""
        explicit = os.environ.get("KUBECONFIG")
        if (
            explicit
            or (Path.home() / ".kube" / "config").exists()
            or "KUBERNETES_SERVICE_HOST" not in os.environ
        ):
            return cls.load(context=context)
        return cls.in_cluster()

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https://"):
            return None
        context = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_pem and self.key_pem:
            # ssl loads client certificates only from files; keep them no longer than it takes.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert.write_bytes(self.cert_pem)
                key.write_bytes(self.key_pem)
                context.load_cert_chain(cert, key)
        return context

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _named(doc: Mapping[str, Any], section: str, name: Any, field: str) -> Mapping[str, Any]:
    for entry in doc.get(section) or []:
        if entry.get("name") == name:
            found: Mapping[str, Any] = entry.get(field) or {}
            return found
    raise KubeConfigError(f"kubeconfig has no {field} named {name!r} in {section}")


def _blob(section: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    if data := section.get(f"{key}-data"):
        return base64.b64decode(data)
    if file := section.get(key):
        return (base / str(file)).read_bytes()
    return None
