"""The `smith` command line with its real output, for fixed input files."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from smith_cli.main import cli

from support import SAMPLES

CHAIN = """\
apiVersion: smith.atlassian.com/v1
kind: Bundle
metadata: {name: chain}
spec:
  resources:
  - name: a
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {k: v}}
  - name: b
    dependsOn: [a]
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: b}, data: {k: v}}
"""

BROKEN = """\
apiVersion: smith.atlassian.com/v1
kind: Bundle
metadata: {name: broken}
spec:
  resources:
  - name: a
    dependsOn: [b]
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
  - name: b
    dependsOn: [a]
    spec: {kind: ConfigMap, metadata: {name: b}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_says_ok_or_every_problem_with_file_bundle_and_resource(tmp_path: Path) -> None:
    good, bad = write(tmp_path, "chain.yaml", CHAIN), write(tmp_path, "broken.yaml", BROKEN)
    result = CliRunner().invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert result.stdout == f"✓ {good}: bundle 'chain', 2 resources\n"
    assert result.stderr == (
        f"✗ {bad}: bundle 'broken': resource 'b': the object has no apiVersion\n"
        f"✗ {bad}: bundle 'broken': dependency cycle: a -> b -> a\n"
    )


def test_validate_every_sample_passes() -> None:
    result = CliRunner().invoke(cli, ["validate", str(SAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("✓") == len(list(SAMPLES.glob("*.yaml")))


def test_plan_prints_the_waves(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(write(tmp_path, "chain.yaml", CHAIN))])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == ["  wave 1: a", "  wave 2: b"]


def test_unreadable_files_are_one_line_each_and_a_failure(tmp_path: Path) -> None:
    notyaml = write(tmp_path, "x.yaml", "a: [unclosed")
    pod = write(tmp_path, "pod.yaml", "apiVersion: v1\nkind: Pod\n")
    result = CliRunner().invoke(cli, ["validate", str(notyaml), str(pod)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"✗ {pod}: not a Bundle (kind: Pod)")
    assert lines[1].startswith(f"✗ {notyaml}: cannot read it:")


def test_graph_as_mermaid_and_dot(tmp_path: Path) -> None:
    chain = str(write(tmp_path, "chain.yaml", CHAIN))
    result = CliRunner().invoke(cli, ["graph", chain])
    assert (result.exit_code, result.stdout) == (
        0,
        'graph LR\n  a["a<br/>ConfigMap a"]\n  b["b<br/>ConfigMap b"]\n  a --> b\n',
    )
    result = CliRunner().invoke(cli, ["graph", chain, "--format", "dot"])
    assert result.stdout == (
        'digraph "chain" {\n  rankdir=LR;\n  node [shape=box];\n'
        '  "a" [label="a\\nConfigMap a"];\n  "b" [label="b\\nConfigMap b"];\n'
        '  { rank=same; "a"; }\n  { rank=same; "b"; }\n  "a" -> "b";\n}\n'
    )


def test_graph_of_an_invalid_bundle_is_one_line_and_a_failure(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", str(write(tmp_path, "broken.yaml", BROKEN))])
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "dependency cycle: a -> b -> a" in result.stderr


def test_wait_without_a_kubeconfig_or_a_cluster_is_one_line(tmp_path: Path) -> None:
    missing = CliRunner(env={"KUBECONFIG": str(tmp_path / "nothere")}).invoke(cli, ["wait", "web"])
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: no usable kubeconfig: ")
    assert len(missing.stderr.splitlines()) == 1
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k}}]\nusers: []\n"
    )
    down = CliRunner(env={"KUBECONFIG": str(config)}).invoke(cli, ["wait", "web", "--timeout", "1.5"])
    assert down.exit_code == 1
    assert down.stderr.startswith(
        "Error: timed out after 1.5s waiting for bundle 'web' to be ready (cannot reach the cluster at "
        "http://127.0.0.1:9: "
    )
    assert len(down.stderr.splitlines()) == 1
