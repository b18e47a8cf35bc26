"""Smith's own certificate authority: a CA and a serving certificate per service, for TLS between the
services (smith_wire.trust). `smith certs` makes them for a cluster without cert-manager; `make run`, the
tests and Tilt make a throw-away set. The files are laid out as a `kubernetes.io/tls` Secret (and
cert-manager's) mounts them: tls.crt, tls.key, ca.crt."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("localhost", "127.0.0.1")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def service_hosts(service: str, namespace: str) -> list[str]:
    """The names a Service is reached by in-cluster: service, service.ns, service.ns.svc(.cluster.local)."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


@dataclass(frozen=True)
class Issued:
    """One service's files: its certificate and key, and the CA bundle to trust."""

    cert: bytes
    key: bytes
    ca: bytes

    def write(self, directory: Path) -> Path:
        """Write tls.crt, tls.key and ca.crt into `directory` (each replaced whole: a reader never sees
        half a file)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in (("tls.crt", self.cert), ("tls.key", self.key), ("ca.crt", self.ca)):
            private(directory / name, data)
        return directory


@dataclass(frozen=True)
class Authority:
    """A CA that issues serving certificates. `bundle` is what clients trust: this CA's certificate, and
    during a rotation the previous CA's too."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    bundle: bytes

    @classmethod
    def new(cls, *, name: str = "smith-ca", days: int = 365, trusted_too: bytes = b"") -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        start, end = _validity(days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert=cert, key=key, bundle=_pem(cert) + trusted_too)

    @classmethod
    def load(cls, directory: Path, name: str = "ca") -> Authority:
        """The CA kept in `directory` as `<name>.crt` and `<name>.key` (see `save`); it trusts itself."""
        cert = x509.load_pem_x509_certificate((directory / f"{name}.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), "Smith's CA key is an EC key"
        return cls(cert=cert, key=key, bundle=_pem(cert))

    def save(self, directory: Path, name: str = "ca") -> None:
        """Keep this CA's certificate and key in `directory` (`<name>.crt`, `<name>.key`)."""
        directory.mkdir(parents=True, exist_ok=True)
        private(directory / f"{name}.crt", self.pem())
        private(directory / f"{name}.key", self.key_pem())

    def pem(self) -> bytes:
        """This CA's own certificate (not the bundle)."""
        return _pem(self.cert)

    def issue(self, name: str, hosts: Sequence[str], *, days: int = 90) -> Issued:
        """A serving certificate for `hosts` (DNS names or IP addresses), named `name`."""
        cert, key = self.sign(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            hosts=hosts,
            days=days,
        )
        return Issued(cert=cert, key=key, ca=self.bundle)

    def sign(
        self, subject: x509.Name, *, usage: x509.ObjectIdentifier, hosts: Sequence[str] = (), days: int = 90
    ) -> tuple[bytes, bytes]:
        """A certificate for `subject` and its new key (PEM), for `usage` (server or client auth)."""
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = _validity(days)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
            )
        return _pem(builder.sign(self.key, hashes.SHA256())), _pem_key(key)

    def key_pem(self) -> bytes:
        return _pem_key(self.key)


def private(path: Path, data: bytes) -> Path:
    """Write `path` readable by its owner only from its first byte, replaced whole (a reader never sees
    half a file)."""
    partial = path.with_name(f".{path.name}.new")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(data)
    partial.replace(path)
    return path


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
