"""What the Tiltfile declares, as Tilt itself reads it (`tilt alpha tiltfile-result`: the Tiltfile executed
by Tilt, nothing run): the things `tilt ci` cannot catch — a service with no resource, a library whose
change would not restart the services using it, the samples applied by themselves under `tilt up`.
(`tests/e2e/test_tilt.py` runs it.) Skipped only when Tilt cannot be built on this machine."""

from __future__ import annotations

import json
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smith_controlplane import tilt as tilt_tool
from support import ROOT

pytestmark = pytest.mark.tilt

MANUAL = 2  # Tilt's TriggerModeManual: neither started at `tilt up` nor on changes


@dataclass(frozen=True)
class Resource:
    name: str
    serve: str  # the command it keeps running ("" for a one-shot command)
    command: str  # the one-shot command ("" for a served process)
    env: dict[str, str]
    deps: set[str]  # watched paths, relative to the checkout
    needs: list[str]
    probe: dict[str, Any]
    trigger_mode: int
    labels: set[str]

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> Resource:
        target = manifest["DeployTarget"]
        serve = (target.get("ServeCmd") or {}).get("Argv") or []
        once = (target.get("UpdateCmdSpec") or {}).get("args") or []
        env = dict(e.split("=", 1) for e in (target.get("ServeCmd") or {}).get("Env") or [])
        return cls(
            name=manifest["Name"],
            serve=serve[-1] if serve else "",
            command=once[-1] if once else "",
            env=env,
            deps={str(Path(d).relative_to(ROOT)) for d in target.get("Deps") or []},
            needs=manifest.get("ResourceDependencies") or [],
            probe=(target.get("ReadinessProbe") or {}).get("httpGet") or {},
            trigger_mode=manifest["TriggerMode"],
            labels=set(manifest.get("Labels") or {}),
        )


@pytest.fixture(scope="module")
def tilt() -> dict[str, Resource]:
    try:
        binary = tilt_tool.binary()
    except tilt_tool.TiltNotBuiltError as e:
        pytest.skip(f"Tilt cannot be built on this machine: {e}")
    done = subprocess.run(
        [str(binary), "alpha", "tiltfile-result", "--file", str(ROOT / "Tiltfile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["Error"] is None, result["Error"]
    return {m["Name"]: Resource.of(m) for m in result["Manifests"]}


# Tilt runs the seven services, each restarted alone (the all-in-one process is `make run ARGS=--all-in-one`)
SERVICES = {p.parent.name: p for p in ROOT.glob("services/*/pyproject.toml") if p.parent.name != "all"}
MEMBERS = {
    tomllib.loads(p.read_text())["project"]["name"]: p.parent
    for p in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
}


def workspace_dependencies(member: Path) -> set[Path]:
    """The workspace libraries `member` uses, directly or through another one."""
    found: set[Path] = set()
    todo = [member]
    while todo:
        project = tomllib.loads((todo.pop() / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            name = requirement.split(">")[0].split("=")[0].split("[")[0].strip()
            if name in MEMBERS and MEMBERS[name] not in found:
                found.add(MEMBERS[name])
                todo.append(MEMBERS[name])
    return found


def test_every_service_runs_as_a_local_process_of_its_own_module(tilt: dict[str, Resource]) -> None:
    for name, pyproject in SERVICES.items():
        assert name in tilt, f"no Tilt resource for services/{name}"
        package = tomllib.loads(pyproject.read_text())["project"]["name"]
        assert tilt[name].serve.endswith(f"python -m {package.replace('-', '_')}")


def test_a_service_restarts_when_its_code_or_a_library_it_uses_changes(tilt: dict[str, Resource]) -> None:
    for name, pyproject in SERVICES.items():
        deps = tilt[name].deps
        assert f"services/{name}/src" in deps
        used = {f"{lib.relative_to(ROOT)}/src" for lib in workspace_dependencies(pyproject.parent)}
        assert used, name
        assert used <= deps, f"{name} misses {used - deps}"
        assert all((ROOT / d).exists() for d in deps)


def test_the_order_is_crds_then_trust_then_services_then_controller(tilt: dict[str, Resource]) -> None:
    assert "crds" in tilt["trust"].needs
    for name in SERVICES:
        assert {"crds", "trust"} <= set(tilt[name].needs)
    services = set(SERVICES) - {"controller"}
    assert set(tilt["controller"].needs) == {"crds", "trust", *services}


def test_every_service_runs_with_its_own_certificate_and_the_controller_with_its_token(
    tilt: dict[str, Resource],
) -> None:
    """As `smith_controlplane trust` lays the files out: one TLS folder per server, the controller's CA
    bundle and token; no service runs in the insecure development mode."""
    folders = {name: tilt[name].env["SMITH_TLS_DIR"] for name in SERVICES}
    assert len(set(folders.values())) == len(SERVICES)
    for name in SERVICES:
        env = tilt[name].env
        assert "SMITH_INSECURE_DEVELOPMENT" not in env
        assert env["SMITH_TOKEN_DIR"].endswith("/controller/tokens")
        assert env["SMITH_TLS_CA"].endswith("/controller/ca.crt")
    assert folders["controller"].endswith("/smith_controller")


def test_ports_are_unique_and_the_controller_finds_the_planner_and_status(tilt: dict[str, Resource]) -> None:
    addresses = [
        tilt[n].env[k] for n in SERVICES for k in ("SMITH_LISTEN", "SMITH_METRICS") if k in tilt[n].env
    ]
    assert len(addresses) == len(set(addresses))
    controller = tilt["controller"].env
    assert controller["SMITH_PLANNER"] == tilt["planner"].env["SMITH_LISTEN"]
    assert controller["SMITH_STATUS"] == tilt["status"].env["SMITH_LISTEN"]


def test_each_service_is_ready_when_its_readiness_endpoint_says_so(tilt: dict[str, Resource]) -> None:
    for name in SERVICES:
        resource = tilt[name]
        assert resource.probe["path"] == "/readyz"
        assert resource.env["SMITH_METRICS"].endswith(f":{resource.probe['port']}")
        assert resource.labels


def test_under_tilt_up_the_samples_and_the_stand_ins_wait_to_be_asked(tilt: dict[str, Resource]) -> None:
    samples, fakes = tilt["samples"], tilt["fakes"]
    assert samples.trigger_mode == MANUAL
    assert samples.needs == ["controller"]
    assert "deploy/samples" in samples.command
    assert fakes.trigger_mode == MANUAL
    assert fakes.serve.endswith("python tests/fakes.py")
