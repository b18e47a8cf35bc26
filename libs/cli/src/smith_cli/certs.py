"""`smith certs`: Smith's CA and a serving certificate per service, as the Secrets its Deployments mount
(`smith-<service>-tls`: tls.crt, tls.key, ca.crt), for a cluster without cert-manager. The CA's key is
kept where the operator says (`--ca-dir`), never in the cluster: whoever holds it could serve as Smith."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from smith_wire.certs import Authority, Issued, private, service_hosts

SERVICES = (
    "planner",
    "status",
    "executor-core",
    "executor-dynamic",
    "executor-servicecatalog",
    "plugin-app",
    "controller",
)


def authority(ca_dir: Path, *, new_ca: bool = False, drop_old: bool = False) -> Authority:
    """The CA that signs, and the bundle everyone trusts (`trust.crt`), kept in `ca_dir`. A CA rotation
    is three runs, so that no server ever presents a certificate its callers do not trust yet:
    `--new-ca` makes the next CA (`next.crt`) and has every Secret trust it, certificates still signed by
    the current one; the next plain run makes the next CA the one that signs (the previous still
    trusted); `--drop-old` then trusts the current CA only."""
    trust = ca_dir / "trust.crt"
    if not (ca_dir / "ca.key").exists():
        first = Authority.new()
        first.save(ca_dir)
        private(trust, first.pem())
        return first
    current = Authority.load(ca_dir)
    if new_ca:
        upcoming = Authority.load(ca_dir, "next") if (ca_dir / "next.key").exists() else Authority.new()
        upcoming.save(ca_dir, "next")
        private(trust, current.pem() + upcoming.pem())
    elif (ca_dir / "next.key").exists():
        upcoming = Authority.load(ca_dir, "next")
        upcoming.save(ca_dir)
        private(ca_dir / "previous.crt", current.pem())
        for name in ("next.crt", "next.key"):
            (ca_dir / name).unlink()
        private(trust, upcoming.pem() + current.pem())
        current = upcoming
    elif drop_old:
        private(trust, current.pem())
    return Authority(cert=current.cert, key=current.key, bundle=trust.read_bytes())


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
