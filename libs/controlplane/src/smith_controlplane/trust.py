"""Smith's service trust for local runs and tests, as a cluster has it: a throw-away CA with a serving
certificate per service, and the controller's ServiceAccount tokens, one per server, each of that
server's audience (from the TokenRequest API, as the kubelet's projected volume would hold them).
`rotate` replaces them all in place, the way cert-manager and the kubelet do, for the tests that prove
nothing restarts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smith_wire.certs import LOCAL_HOSTS, Authority
from smith_wire.trust import (
    AUDIENCE,
    CONTROLLER_ACCOUNT,
    ClientTrust,
    Review,
    ServerTrust,
    audience,
    controller_user,
    target_of,
)

from smith_kube import ConflictError, KubeClient, KubeConfig

NAMESPACE = "smith-system"
TOKEN_SECONDS = 24 * 3600


async def ensure_account(kube: KubeClient, namespace: str, name: str) -> None:
    for obj in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
    ):
        with contextlib.suppress(ConflictError):
            await kube.create(obj)


async def account_token(
    kube: KubeClient, namespace: str, name: str, *, audience: str = AUDIENCE, seconds: int = TOKEN_SECONDS
) -> str:
    """A token of ServiceAccount `namespace/name` for `audience` (the account is made if missing)."""
    await ensure_account(kube, namespace, name)
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": seconds},
    }
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
    answer = await kube.request("POST", path, body=request)
    return str(answer["status"]["token"])


@dataclass(frozen=True)
class LocalTrust:
    """Where the files are: `<directory>/<service>/` (tls.crt, tls.key, ca.crt) per server, and the
    controller's CA bundle and token."""

    directory: Path
    services: tuple[str, ...]
    namespace: str = NAMESPACE

    @property
    def ca(self) -> Path:
        return self.directory / "controller" / "ca.crt"

    @property
    def tokens(self) -> Path:
        return self.directory / "controller" / "tokens"

    @staticmethod
    def target(service: str) -> str:
        """A server's target name from its module: smith_executor_core -> executor-core."""
        return target_of(service.replace("_", "-"))

    def tls_dir(self, service: str) -> Path:
        return self.directory / service

    @classmethod
    async def make(
        cls, kube: KubeClient, directory: Path, services: Sequence[str], *, namespace: str = NAMESPACE
    ) -> LocalTrust:
        trust = cls(directory, tuple(services), namespace)
        await trust.rotate(kube, keep_old_ca=False)
        return trust

    async def rotate(self, kube: KubeClient, *, keep_old_ca: bool = True) -> None:
        """New CA, new serving certificates, a new token: each file replaced whole. With `keep_old_ca`,
        the bundle trusts the previous CA too (as a rotation does while old certificates still serve)."""
        old = self.ca.read_bytes() if keep_old_ca and self.ca.exists() else b""
        authority = Authority.new(name="smith-local-ca", days=7, trusted_too=old)
        for service in self.services:
            authority.issue(service, LOCAL_HOSTS, days=7).write(self.tls_dir(service))
        controller = authority.issue("smith-controller", LOCAL_HOSTS, days=7)
        controller.write(self.directory / "controller")
        self.tokens.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            if (target := self.target(service)) == "controller":
                continue  # it calls; it is not called
            token = await account_token(kube, self.namespace, CONTROLLER_ACCOUNT, audience=audience(target))
            partial = self.tokens / f".{target}.new"
            partial.write_text(token)
            partial.chmod(0o600)
            partial.replace(self.tokens / target)

    def client(self) -> ClientTrust:
        return ClientTrust(ca=self.ca, tokens=self.tokens)

    def server(self, service: str, review: Review) -> ServerTrust:
        tls = self.tls_dir(service)
        return ServerTrust(
            cert=tls / "tls.crt",
            key=tls / "tls.key",
            callers=frozenset({controller_user(self.namespace)}),
            review=review,
            audience=audience(self.target(service)),
        )

    def env(self, service: str) -> dict[str, str]:
        """The variables a service process reads its trust from (smith_wire.trust, smith_wire.rpc)."""
        return {
            "SMITH_TLS_DIR": str(self.tls_dir(service)),
            "SMITH_TLS_CA": str(self.ca),
            "SMITH_TOKEN_DIR": str(self.tokens),
        }


def make_local_trust(kubeconfig: Path, directory: Path, services: Sequence[str]) -> LocalTrust:
    """`LocalTrust.make` from synchronous code (in a thread of its own: the caller may be in a loop)."""

    async def make() -> LocalTrust:
        async with KubeClient(KubeConfig.load(kubeconfig)) as kube:
            return await LocalTrust.make(kube, directory, services)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()
