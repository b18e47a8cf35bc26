"""`smith certs`: Smith's CA and a serving certificate per service, as the Secrets its Deployments mount
(`smith-<service>-tls`: tls.crt, tls.key, ca.crt), for a cluster without cert-manager. The CA's key is
kept where the operator says (`--ca-dir`), never in the cluster: whoever holds it could serve as Smith."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from smith_wire.certs import Authority, Issued, service_hosts

SERVICES = (
    "planner",
    "status",
    "executor-core",
    "executor-dynamic",
    "executor-servicecatalog",
    "plugin-app",
    "controller",
)


def authority(ca_dir: Path, *, new: bool) -> Authority:
    """The CA kept in `ca_dir`; a new one when there is none or `new` (then the bundle still trusts the
    previous CA, so servers not yet given new certificates keep being trusted during the rollover)."""
    if (ca_dir / "ca.key").exists() and not new:
        return Authority.load(ca_dir)
    previous = (ca_dir / "ca.crt").read_bytes() if (ca_dir / "ca.crt").exists() else b""
    made = Authority.new(trusted_too=_first_certificate(previous))
    made.save(ca_dir)
    return made


def _first_certificate(bundle: bytes) -> bytes:
    """The first certificate of a PEM bundle (the CA that was current), b"" for none."""
    end = b"-----END CERTIFICATE-----"
    return bundle[: bundle.index(end) + len(end)] + b"\n" if end in bundle else b""


def secret(name: str, namespace: str, issued: Issued) -> dict[str, Any]:
    data = {"tls.crt": issued.cert, "tls.key": issued.key, "ca.crt": issued.ca}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "smith"}},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def secrets(ca: Authority, namespace: str, *, days: int) -> list[dict[str, Any]]:
    return [
        secret(
            f"smith-{s}-tls",
            namespace,
            ca.issue(f"smith-{s}", service_hosts(f"smith-{s}", namespace), days=days),
        )
        for s in SERVICES
    ]
