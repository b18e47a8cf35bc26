"""Certificates for a throw-away control plane: a CA, the API server's serving certificate, an admin
client certificate (group system:masters) and the service-account signing key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from smith_wire.certs import Authority


@dataclass(frozen=True, slots=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def generate(directory: Path, *, days: int = 7) -> Pki:
    """Write a fresh PKI into `directory` (valid for `days`) and return where each file is."""
    ca = Authority.new(name="smith-local-ca", days=days)
    hosts = ["localhost", "kubernetes", "kubernetes.default.svc", "127.0.0.1", "10.0.0.1"]
    serving = ca.sign(_name("kube-apiserver"), usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=hosts, days=days)
    admin = ca.sign(_name("smith-admin", "system:masters"), usage=ExtendedKeyUsageOID.CLIENT_AUTH, days=days)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    d = directory
    return Pki(
        ca_cert=_write(d / "ca.crt", ca.bundle),
        ca_key=_write(d / "ca.key", ca.key_pem()),
        serving_cert=_write(d / "apiserver.crt", serving[0]),
        serving_key=_write(d / "apiserver.key", serving[1]),
        admin_cert=_write(d / "admin.crt", admin[0]),
        admin_key=_write(d / "admin.key", admin[1]),
        sa_key=_write(d / "sa.key", _pem_key(sa_key)),
        sa_pub=_write(d / "sa.pub", sa_pub),
    )
