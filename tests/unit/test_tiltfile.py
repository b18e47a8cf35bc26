"""The Tiltfile, checked without Tilt: evaluated by a Starlark interpreter against recording stand-ins
for the Tilt builtins it uses, with Tilt's own parameter names (a misspelt argument fails)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark as sl

from support import ROOT


@dataclass
class Tilt:
    """Records every resource the Tiltfile declares."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def local_resource(
        self,
        name: str,
        cmd: str = "",
        deps: Any = None,
        trigger_mode: str = "auto",
        resource_deps: Any = (),
        ignore: Any = (),
        auto_init: bool = True,
        serve_cmd: str = "",
        cmd_bat: str = "",
        serve_cmd_bat: str = "",
        allow_parallel: bool = False,
        links: Any = (),
        tags: Any = (),
        env: Any = None,
        serve_env: Any = None,
        readiness_probe: Any = None,
        dir: str = "",
        serve_dir: str = "",
        labels: Any = (),
    ) -> None:
        assert name not in self.resources, f"resource {name} declared twice"
        self.resources[name] = {k: v for k, v in locals().items() if k != "self"}

    @staticmethod
    def probe(
        initial_delay_secs: int = 0,
        timeout_secs: int = 1,
        period_secs: int = 10,
        success_threshold: int = 1,
        failure_threshold: int = 3,
        exec: Any = None,
        http_get: Any = None,
        tcp_socket: Any = None,
    ) -> dict[str, Any]:
        return {"http_get": http_get, "exec": exec, "tcp_socket": tcp_socket, "period_secs": period_secs}

    @staticmethod
    def http_get_action(port: int, host: str = "", scheme: str = "http", path: str = "") -> dict[str, Any]:
        return {"port": port, "host": host, "scheme": scheme, "path": path}

    @staticmethod
    def link(url: str, name: str = "") -> dict[str, str]:
        return {"url": url, "name": name}


@pytest.fixture(scope="module")
def tilt() -> Tilt:
    recorded = Tilt()
    module = sl.Module()
    for builtin in ("local_resource", "probe", "http_get_action", "link"):
        module.add_callable(builtin, getattr(recorded, builtin))
    module["TRIGGER_MODE_MANUAL"] = "manual"
    module["TRIGGER_MODE_AUTO"] = "auto"
    dialect = sl.Dialect.extended()
    dialect.enable_top_level_stmt = True  # Tilt allows top-level for/if, as Starlark-Go's option does
    ast = sl.parse("Tiltfile", (ROOT / "Tiltfile").read_text(), dialect)
    sl.eval(module, ast, sl.Globals.standard())
    return recorded


SERVICES = {p.parent.name: p for p in ROOT.glob("services/*/pyproject.toml")}


def test_every_service_runs_as_a_local_process_of_its_own_module(tilt: Tilt) -> None:
    for name, pyproject in SERVICES.items():
        assert name in tilt.resources, f"no Tilt resource for services/{name}"
        package = tomllib.loads(pyproject.read_text())["project"]["name"]
        assert tilt.resources[name]["serve_cmd"].endswith(f"python -m {package.replace('-', '_')}")


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


def test_a_service_restarts_when_its_code_or_a_library_it_uses_changes(tilt: Tilt) -> None:
    for name, pyproject in SERVICES.items():
        deps = set(tilt.resources[name]["deps"])
        assert f"services/{name}/src" in deps
        used = {f"{lib.relative_to(ROOT)}/src" for lib in workspace_dependencies(pyproject.parent)}
        assert used, name
        assert used <= deps, f"{name} misses {used - deps}"
        assert all((ROOT / d).exists() for d in deps)


def test_every_dependency_exists_and_the_order_is_crds_then_services_then_controller(tilt: Tilt) -> None:
    for name, resource in tilt.resources.items():
        for dep in resource["resource_deps"]:
            assert dep in tilt.resources, f"{name} depends on unknown resource {dep}"
    for name in SERVICES:
        assert "crds" in tilt.resources[name]["resource_deps"]
    assert set(tilt.resources["controller"]["resource_deps"]) == set(tilt.resources) - {
        "controller",
        "samples",
    }
    for path in tilt.resources["crds"]["deps"]:
        assert (ROOT / path).is_dir()


def test_ports_are_unique_and_the_controller_finds_the_planner_and_status(tilt: Tilt) -> None:
    addresses = [
        env[key]
        for name in SERVICES
        for key in ("SMITH_LISTEN", "SMITH_METRICS")
        if key in (env := tilt.resources[name]["serve_env"])
    ]
    assert len(addresses) == len(set(addresses))
    controller = tilt.resources["controller"]["serve_env"]
    assert controller["SMITH_PLANNER"] == tilt.resources["planner"]["serve_env"]["SMITH_LISTEN"]
    assert controller["SMITH_STATUS"] == tilt.resources["status"]["serve_env"]["SMITH_LISTEN"]


def test_each_service_is_ready_when_its_readiness_endpoint_says_so(tilt: Tilt) -> None:
    for name in SERVICES:
        resource = tilt.resources[name]
        probe = resource["readiness_probe"]["http_get"]
        assert probe["path"] == "/readyz"
        assert resource["serve_env"]["SMITH_METRICS"].endswith(f":{probe['port']}")
        assert resource["labels"]


def test_the_samples_are_applied_on_demand_after_the_controller(tilt: Tilt) -> None:
    samples = tilt.resources["samples"]
    assert samples["trigger_mode"] == "manual"
    assert samples["auto_init"] is False
    assert samples["resource_deps"] == ["controller"]
    assert "deploy/samples" in samples["cmd"]
