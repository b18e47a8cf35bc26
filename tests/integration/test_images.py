"""One Dockerfile for every service's image (`--build-arg SERVICE=<service>`): each image installs only
its own service's package (and the libraries it needs) and runs it as a non-root user. Without a
container engine here, the test runs the Dockerfile's own install command for each service into an
empty virtual environment, runs the entry point the image runs, and imports the service from it: a
service whose package misses a dependency, or needs another service, fails here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from support import ROOT

DOCKERFILE = ROOT / "Dockerfile"
SERVICES = sorted(p.parent for p in ROOT.glob("services/*/pyproject.toml"))


def instructions() -> list[tuple[str, str]]:
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def package(service: Path) -> str:
    name: str = tomllib.loads((service / "pyproject.toml").read_text())["project"]["name"]
    return name


def for_service(arg: str, service: Path) -> str:
    return arg.replace("${SERVICE}", service.name)


def test_the_image_runs_the_service_it_was_built_for_as_a_non_root_user() -> None:
    steps = instructions()
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    user = [arg for op, arg in final if op == "USER"]
    assert user, "the final stage sets a USER"
    assert user[-1].split(":")[0] not in ("0", "root")
    assert [arg for op, arg in final if op == "CMD"] == ['["smith-service"]']
    installs = [arg for op, arg in steps if op == "RUN" and "uv sync" in arg]
    assert installs == ["uv sync --frozen --no-dev --no-editable --package smith-${SERVICE}"]


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_the_image_install_holds_the_service_and_nothing_of_the_others(service: Path, tmp_path: Path) -> None:
    steps = [(op, for_service(arg, service)) for op, arg in instructions()]
    (install,) = [arg for op, arg in steps if op == "RUN" and "uv sync" in arg]
    uv = os.environ.get("UV", "uv")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, *shlex.split(install)[1:], "--quiet"], cwd=ROOT, env=env, check=True, timeout=300)
    (link,) = [arg for op, arg in steps if op == "RUN" and "smith-service" in arg]
    entry = shlex.split(link)[-2]  # the script `smith-service` points at
    assert (venv / "bin" / entry).is_file(), f"the image's entry point {entry} is installed"
    python = venv / "bin" / "python"
    module = package(service).replace("-", "_")
    subprocess.run([python, "-c", f"import {module}.__main__"], check=True, timeout=120, cwd=tmp_path)
    installed = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(' '.join(d.name for d in m.distributions()))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    others = {package(s) for s in SERVICES} - {package(service)}
    if service.name == "all":  # the all-in-one image: every service, in one process
        assert others <= set(installed), "the all-in-one image holds every service"
    else:
        assert not others & set(installed), "an image holds only its own service (and not smith-all)"
    assert not re.search(r"\b(pytest|mypy|ruff)\b", " ".join(installed)), "no development tools in an image"
    assert "kubernetes" not in installed, "a service reads its Pod's service account without it (39 MiB)"
