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
from cryptography.exceptions import InvalidSignature
from smith_cli.main import cli
from smith_wire.certs import LOCAL_HOSTS, Authority
from smith_wire.rpc import channel, start_server
from smith_wire.trust import (
    ACCEPTED_SECONDS,
    REFUSED_SECONDS,
    CallerCheck,
    ClientTrust,
    ServerTrust,
    TokenCache,
    Verdict,
    audience,
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


PLANNER = audience("planner")
LATER = 4_000_000_000  # an expiry in 2096
CONTROLLERS = jwt(aud=[PLANNER], exp=LATER, sub="controller")
TENANTS = jwt(aud=[PLANNER], exp=LATER, sub="tenant")
FORGED = jwt(aud=[PLANNER], exp=LATER, sub="forged")


def files(tmp_path: Path, token: str = "") -> tuple[Path, ClientTrust]:
    ca = Authority.new()
    ca.issue("smith-planner", LOCAL_HOSTS).write(tmp_path / "planner")
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "planner").write_text(token)
    return tmp_path / "planner", ClientTrust(ca=tmp_path / "planner" / "ca.crt", tokens=tmp_path / "tokens")


async def plan(tmp_path: Path, users: Users, token: str, *, calls: int = 1) -> list[grpc.StatusCode]:
    tls, client = files(tmp_path, token)
    trust = ServerTrust(
        tls / "tls.crt",
        tls / "tls.key",
        callers=frozenset({CONTROLLER}),
        review=users.review,
        audience=PLANNER,
    )
    planner = CountingPlanner("p", Counter())
    server, port = await start_server([serving(planner)], trust=trust, service="smith-planner")
    codes = []
    try:
        async with channel(f"127.0.0.1:{port}", client, "planner") as ch:
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
    users = Users({CONTROLLERS: CONTROLLER})
    assert await plan(tmp_path, users, CONTROLLERS, calls=20) == [grpc.StatusCode.OK] * 20
    assert users.reviews[CONTROLLERS] == 1


@pytest.mark.parametrize(
    ("token", "expected", "reviewed"),
    [
        ("", grpc.StatusCode.UNAUTHENTICATED, False),  # no token at all
        ("not-a-jwt", grpc.StatusCode.UNAUTHENTICATED, False),
        (FORGED, grpc.StatusCode.UNAUTHENTICATED, True),  # the API server does not accept it
        (TENANTS, grpc.StatusCode.PERMISSION_DENIED, True),  # someone, but not the controller
        # the controller's token for another server (as that server could replay it), or expired
        (jwt(aud=[audience("plugin-app")], exp=LATER), grpc.StatusCode.UNAUTHENTICATED, False),
        (jwt(aud=[PLANNER], exp=1), grpc.StatusCode.UNAUTHENTICATED, False),
    ],
    ids=["none", "garbage", "forged", "tenant", "another-audience", "expired"],
)
async def test_a_call_without_the_controllers_token_for_this_server_is_refused(
    tmp_path: Path, token: str, expected: grpc.StatusCode, reviewed: bool
) -> None:
    """Refused before any servicer runs; what its own claims rule out costs the API server nothing."""
    users = Users({TENANTS: "system:serviceaccount:team-a:deployer", CONTROLLERS: CONTROLLER})
    assert await plan(tmp_path, users, token) == [expected]
    assert bool(users.reviews) == reviewed


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


def test_smith_certs_rotates_the_ca_so_that_every_certificate_served_is_always_trusted(
    tmp_path: Path,
) -> None:
    """`--new-ca`: everyone trusts the next CA, certificates still from the current one; a plain run:
    the next CA signs, the previous still trusted; `--drop-old`: the new CA alone."""

    def run(*flags: str) -> tuple[list[x509.Certificate], x509.Certificate]:
        done = CliRunner().invoke(cli, ["certs", "--ca-dir", str(tmp_path / "ca"), *flags])
        assert done.exit_code == 0, done.output
        planner = next(
            s for s in yaml.safe_load_all(done.output) if s["metadata"]["name"] == "smith-planner-tls"
        )
        trusted = x509.load_pem_x509_certificates(base64.b64decode(planner["data"]["ca.crt"]))
        return trusted, x509.load_pem_x509_certificate(base64.b64decode(planner["data"]["tls.crt"]))

    def signer(cert: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate:
        (found,) = [ca for ca in cas if _signed_by(cert, ca)]
        return found

    (first,), served = run()
    assert signer(served, [first]) == first
    assert run()[0] == [first]  # renewed: the same CA
    trusted, served = run("--new-ca")
    assert len(trusted) == 2
    assert first in trusted
    assert signer(served, trusted) == first  # not yet the new one
    second = next(ca for ca in trusted if ca != first)
    trusted, served = run()
    assert set(trusted) == {first, second}
    assert signer(served, trusted) == second
    assert run("--drop-old")[0] == [second]


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


async def test_a_caller_cancelled_while_its_token_is_reviewed_does_not_fail_the_others() -> None:
    """Calls with one new token wait for one review; one of them giving up (its deadline) leaves the
    review, and the others' answers, alone."""
    users = Users({CONTROLLERS: CONTROLLER})
    check = CallerCheck(callers=frozenset({CONTROLLER}), review=users.review, service="s", audience=PLANNER)
    first = asyncio.create_task(check.identify(CONTROLLERS))
    second = asyncio.create_task(check.identify(CONTROLLERS))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == CONTROLLER
    assert users.reviews[CONTROLLERS] == 1
    assert await check.identify(CONTROLLERS) == CONTROLLER  # cached: no second review
    assert users.reviews[CONTROLLERS] == 1
