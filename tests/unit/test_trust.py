"""Trust between the services without a cluster: a real TLS gRPC server with the caller check, tokens
"reviewed" by a table (the integration tests review them with the API server); the verdict cache; the
certificates `smith certs` prints."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from pathlib import Path

import grpc
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from smith_cli.main import cli
from smith_wire.certs import LOCAL_HOSTS, Authority
from smith_wire.rpc import channel, start_server
from smith_wire.trust import (
    ACCEPTED_SECONDS,
    REFUSED_SECONDS,
    ClientTrust,
    ServerTrust,
    TokenCache,
    Verdict,
    kept_until,
    token_expiry,
)

from smith.v1 import planner_pb2, planner_pb2_grpc
from support import CountingPlanner, serving

CONTROLLER = "system:serviceaccount:smith-system:smith-controller"


def jwt(**claims: object) -> str:
    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


class Users:
    """A stand-in for the API server's TokenReview: token -> user, counting the reviews."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.reviews: Counter[str] = Counter()

    async def review(self, token: str) -> str | None:
        self.reviews[token] += 1
        await asyncio.sleep(0.01)  # an answer takes a moment: calls meanwhile wait for it
        return self.users.get(token)


def files(tmp_path: Path, token: str = "") -> tuple[Path, ClientTrust]:
    ca = Authority.new()
    ca.issue("smith-planner", LOCAL_HOSTS).write(tmp_path / "planner")
    (tmp_path / "token").write_text(token)
    return tmp_path / "planner", ClientTrust(ca=tmp_path / "planner" / "ca.crt", token=tmp_path / "token")


async def plan(tmp_path: Path, users: Users, token: str, *, calls: int = 1) -> list[grpc.StatusCode]:
    tls, client = files(tmp_path, token)
    trust = ServerTrust(
        tls / "tls.crt", tls / "tls.key", callers=frozenset({CONTROLLER}), review=users.review
    )
    planner = CountingPlanner("p", Counter())
    server, port = await start_server([serving(planner)], trust=trust, service="smith-planner")
    codes = []
    try:
        async with channel(f"127.0.0.1:{port}", client) as ch:
            stub = planner_pb2_grpc.PlannerStub(ch)

            async def one() -> grpc.StatusCode:
                try:
                    await stub.Plan(planner_pb2.PlanRequest(), timeout=5)
                    return grpc.StatusCode.OK
                except grpc.aio.AioRpcError as e:
                    return e.code()

            codes = list(await asyncio.gather(*(one() for _ in range(calls))))
    finally:
        await server.stop(grace=None)
    assert planner.calls["p"] == codes.count(grpc.StatusCode.OK)  # a refused call reached no servicer
    return codes


async def test_the_controller_is_answered_and_its_token_reviewed_once_for_many_calls(tmp_path: Path) -> None:
    users = Users({"controller-token": CONTROLLER})
    assert await plan(tmp_path, users, "controller-token", calls=20) == [grpc.StatusCode.OK] * 20
    assert users.reviews["controller-token"] == 1


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", grpc.StatusCode.UNAUTHENTICATED),  # no token at all
        ("forged", grpc.StatusCode.UNAUTHENTICATED),  # the API server does not accept it
        ("tenant-token", grpc.StatusCode.PERMISSION_DENIED),  # someone, but not the controller
    ],
)
async def test_a_call_without_the_controllers_token_is_refused(
    tmp_path: Path, token: str, expected: grpc.StatusCode
) -> None:
    users = Users({"tenant-token": "system:serviceaccount:team-a:deployer"})
    assert await plan(tmp_path, users, token) == [expected]


def test_a_verdict_is_kept_until_the_token_expires_at_most_ten_minutes() -> None:
    now, wall = 1000.0, 1_700_000_000.0
    assert kept_until(jwt(exp=wall + 60), CONTROLLER, now=now, wall=wall) == now + 60
    assert kept_until(jwt(exp=wall + 86_400), CONTROLLER, now=now, wall=wall) == now + ACCEPTED_SECONDS
    assert kept_until("not-a-jwt", CONTROLLER, now=now, wall=wall) == now + ACCEPTED_SECONDS
    assert kept_until(jwt(exp=wall + 86_400), None, now=now, wall=wall) == now + REFUSED_SECONDS
    assert token_expiry(jwt(exp=12)) == 12
    assert token_expiry("a.!!!.c") is None


def test_the_cache_forgets_expired_and_least_recently_used_verdicts() -> None:
    cache = TokenCache(size=2)
    cache.put("a", Verdict(CONTROLLER, until=10))
    cache.put("b", Verdict(None, until=20))
    assert cache.get("a", now=5) == Verdict(CONTROLLER, 10)  # a is now the most recently used
    cache.put("c", Verdict(CONTROLLER, until=30))
    assert cache.get("b", now=5) is None  # dropped: the least recently used
    assert cache.get("a", now=11) is None  # expired


def test_smith_certs_prints_a_tls_secret_per_service_from_a_ca_kept_outside(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["certs", "--ca-dir", str(tmp_path / "ca")])
    assert first.exit_code == 0, first.output
    secrets = list(yaml.safe_load_all(first.output))
    assert {s["metadata"]["name"] for s in secrets} == {
        f"smith-{s}-tls"
        for s in ("planner", "status", "executor-core", "executor-dynamic", "executor-servicecatalog")
    } | {"smith-plugin-app-tls", "smith-controller-tls"}
    assert all(s["type"] == "kubernetes.io/tls" and "ca.key" not in s["data"] for s in secrets)
    planner = next(s for s in secrets if s["metadata"]["name"] == "smith-planner-tls")
    cert = x509.load_pem_x509_certificate(base64.b64decode(planner["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert "smith-planner.smith-system.svc" in names

    again = list(yaml.safe_load_all(runner.invoke(cli, ["certs", "--ca-dir", str(tmp_path / "ca")]).output))
    assert again[0]["data"]["ca.crt"] == secrets[0]["data"]["ca.crt"]  # the same CA issues anew
    rotated = runner.invoke(cli, ["certs", "--ca-dir", str(tmp_path / "ca"), "--new-ca"]).output
    bundle = base64.b64decode(next(yaml.safe_load_all(rotated))["data"]["ca.crt"])
    assert bundle.count(b"BEGIN CERTIFICATE") == 2  # the new CA, and the one before it
    assert base64.b64decode(secrets[0]["data"]["ca.crt"]) in bundle
