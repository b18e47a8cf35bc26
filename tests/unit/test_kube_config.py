"""kubeconfig reading as kubectl does it: merged $KUBECONFIG files, contexts and their namespaces, and the
one-context copy `make run` hands its services (exec plugins and token files kept live)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from smith_kube.config import KubeConfig, KubeConfigError, minified


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def clusters_file(path: Path) -> Path:
    return write(
        path,
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "dev",
            "clusters": [
                {
                    "name": "dev",
                    "cluster": {"server": "https://dev.example:6443", "certificate-authority": "ca.crt"},
                },
                {
                    "name": "prod",
                    "cluster": {"server": "https://prod.example", "insecure-skip-tls-verify": True},
                },
            ],
            "contexts": [
                {"name": "dev", "context": {"cluster": "dev", "user": "token-user"}},
                {"name": "prod", "context": {"cluster": "prod", "user": "eks", "namespace": "payments"}},
            ],
            "users": [{"name": "token-user", "user": {"tokenFile": "secrets/token"}}],
        },
    )


def users_file(path: Path) -> Path:
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws", "args": ["eks"]}}
    return write(path, {"apiVersion": "v1", "kind": "Config", "users": [{"name": "eks", "user": exec_user}]})


@pytest.fixture
def merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$KUBECONFIG naming two files: clusters and contexts in a/config, the exec user in b/config."""
    first = clusters_file(tmp_path / "a" / "config")
    second = users_file(tmp_path / "b" / "config")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))


@pytest.mark.usefixtures("merged")
def test_merged_files_give_the_chosen_context_its_namespace_and_server() -> None:
    config = KubeConfig.load(context="prod")
    assert (config.server, config.namespace, config.insecure) == ("https://prod.example", "payments", True)


@pytest.mark.usefixtures("merged")
def test_minify_keeps_one_context_with_absolute_paths_and_live_credentials(tmp_path: Path) -> None:
    dev = minified()
    assert dev["current-context"] == "dev"
    assert dev["clusters"] == [
        {
            "name": "dev",
            "cluster": {
                "server": "https://dev.example:6443",
                "certificate-authority": str(tmp_path / "a" / "ca.crt"),
            },
        }
    ]
    assert dev["users"] == [
        {"name": "token-user", "user": {"tokenFile": str(tmp_path / "a" / "secrets" / "token")}}
    ]

    prod = minified("prod")
    assert [c["name"] for c in prod["contexts"]] == ["prod"]
    assert prod["users"][0]["user"]["exec"]["command"] == "aws"


def test_a_missing_context_or_file_is_one_clear_error(tmp_path: Path) -> None:
    path = clusters_file(tmp_path / "config")
    with pytest.raises(KubeConfigError, match="no context named 'staging'"):
        KubeConfig.load(path, context="staging")
    with pytest.raises(KubeConfigError, match="no kubeconfig at"):
        KubeConfig.load(tmp_path / "absent")
    with pytest.raises(KubeConfigError, match="no context named 'staging'"):
        minified("staging", str(path))
