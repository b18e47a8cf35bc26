"""The `smith` command line with its real output, for fixed input files."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pydot
import pytest
from click.testing import CliRunner
from rich.console import Console
from smith_cli.follow import Snapshot
from smith_cli.graph import dot, mermaid, render
from smith_cli.main import cli
from smith_cli.status import ChangeLog, resource_lines, summary, view

from smith_engine.validation import load_bundle
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


REFUSED_ONE = """\
apiVersion: smith.atlassian.com/v1
kind: Bundle
metadata: {name: partly}
spec:
  resources:
  - name: a
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {k: v}}
  - name: b
    references: [{name: x, resource: a, path: "data[", example: v}]
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: b}, data: {k: "!{x}"}}
  - name: c
    dependsOn: [a]
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {run: "echo !{HOME}"}}
"""


def test_a_resource_refused_alone_is_an_error_of_validate_and_shown_by_plan(tmp_path: Path) -> None:
    """The Bundle is whole (its graph known): `plan` shows the rest converging and the refusal; both
    commands exit 1, and neither reads the refused resource's bad path."""
    path = write(tmp_path, "partly.yaml", REFUSED_ONE)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"✗ {path}: bundle 'partly': resource 'b': reference 'x' has invalid path 'data['"
    )
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[1:3] == ["  wave 1: a", "  wave 2: c"]
    assert "  error b: reference 'x' has invalid path 'data['" in result.stdout


def test_migrate_on_files_says_what_needs_a_change(tmp_path: Path) -> None:
    scripted = REFUSED_ONE.replace('data: {run: "echo !{HOME}"}', 'data: {run: "echo !{y} \\\\!{y}"}')
    scripted = scripted.replace("dependsOn: [a]\n", "references: [{name: y, resource: a, path: data.k}]\n")
    path, fine = write(tmp_path, "partly.yaml", scripted), write(tmp_path, "chain.yaml", CHAIN)
    result = CliRunner().invoke(cli, ["migrate", str(fine), str(path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"✓ {fine}: nothing changes"
    assert lines[1] == f"✗ {path}"
    assert lines[2].startswith("  ✗ refused here: resource 'b': reference 'x' has invalid path")
    assert "resource 'c': data.run says !{y} inside longer text" in lines[3]
    assert lines[4].startswith("  · resource 'c': data.run says \\!{y}: Go Smith kept the backslash")
    assert lines[-1] == "cutover is not safe: 1 of 2 Bundles need a change first"


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


MERMAID = """\
graph LR
  config["config<br/>ConfigMap web-config (Ready)"]
  deploy["deploy<br/>Deployment web (InProgress)"]
  db["db<br/>plugin postgres: postgres web-db (Error)"]
  config --> deploy
  classDef Error fill:#f4a6a6
  classDef InProgress fill:#ffe8a3
  classDef Ready fill:#b7e4c7
  class config Ready
  class deploy InProgress
  class db Error
"""


def test_graph_nodes_take_the_colour_of_their_live_state() -> None:
    """What `smith graph NAME` draws for a Bundle in the cluster: each node coloured by its state; the dot
    parses (pydot) with the colours on the nodes, and Graphviz draws it as SVG when it is installed."""
    web = load_bundle(STORED)
    states = {line.name: line.state for line in resource_lines(STORED)}
    assert mermaid(web, states) == MERMAID
    graphs = pydot.graph_from_dot_data(dot(web, states))
    assert graphs is not None
    (graph,) = graphs
    fills = {n.get_name().strip('"'): n.get("fillcolor") for n in graph.get_nodes() if n.get("fillcolor")}
    assert fills == {"config": '"#b7e4c7"', "deploy": '"#ffe8a3"', "db": '"#f4a6a6"'}
    assert [(e.get_source(), e.get_destination()) for e in graph.get_edges()] == [('"config"', '"deploy"')]
    if shutil.which("dot"):
        svg = render(dot(web, states), "svg").decode()
        assert svg.lstrip().startswith("<?xml")
        assert "<svg" in svg
        assert "#b7e4c7" in svg


def test_svg_without_graphviz_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    result = CliRunner().invoke(cli, ["graph", str(write(tmp_path, "chain.yaml", CHAIN)), "--format", "svg"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: drawing svg needs Graphviz's `dot` (apt-get install graphviz); mermaid and dot need nothing\n"
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


STORED = {
    "apiVersion": "smith.atlassian.com/v1",
    "kind": "Bundle",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "resources": [
            {
                "name": "config",
                "spec": {
                    "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}}
                },
            },
            {
                "name": "deploy",
                "dependsOn": ["config"],
                "spec": {
                    "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
                },
            },
            {
                "name": "db",
                "spec": {"plugin": {"name": "postgres", "objectName": "web-db", "spec": {"size": 1}}},
            },
        ]
    },
    "status": {
        "readyResources": "1/3",
        "conditions": [
            {"type": "InProgress", "status": "False", "reason": "Converging"},
            {
                "type": "Ready",
                "status": "False",
                "reason": "NotReady",
                "message": "not ready: deploy, db",
                "lastTransitionTime": "2026-11-26T10:00:00Z",
            },
            {
                "type": "Error",
                "status": "True",
                "reason": "TerminalError",
                "message": "resource 'db': no plugin 'postgres'",
                "lastTransitionTime": "2026-11-26T10:01:00Z",
            },
        ],
        "resourceStatuses": [
            {
                "name": "config",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Ready",
                        "lastTransitionTime": "2026-11-26T09:00:00Z",
                    }
                ],
            },
            {
                "name": "deploy",
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {
                        "type": "InProgress",
                        "status": "True",
                        "reason": "WaitingForReadiness",
                        "message": "1 of 2 replicas available",
                        "lastTransitionTime": "2026-11-26T10:01:30Z",
                    },
                ],
            },
            {
                "name": "db",
                "conditions": [
                    {
                        "type": "Error",
                        "status": "True",
                        "reason": "TerminalError",
                        "message": "no plugin 'postgres'",
                        "lastTransitionTime": "2026-11-26T10:01:00Z",
                    }
                ],
            },
        ],
    },
}


def test_status_draws_a_tree_of_state_reason_message_and_age() -> None:
    console = Console(record=True, width=100, color_system=None)
    now = datetime(2026, 11, 26, 10, 2, 0, tzinfo=UTC)
    console.print(view(Snapshot({"web": STORED}), None, now))
    assert console.export_text() == (
        "✗ web  1/3  Error TerminalError  1m\n"
        "  resource 'db': no plugin 'postgres'\n"
        "├── ✓ config  ConfigMap web-config  Ready Ready  1h\n"
        "├── … deploy  Deployment web  InProgress WaitingForReadiness  30s  after config\n"
        "│     1 of 2 replicas available\n"
        "└── ✗ db  plugin postgres → web-db  Error TerminalError  1m\n"
        "      no plugin 'postgres'\n"
    )
    console.print(view(Snapshot({"web": STORED}, trouble="connection refused"), ["web", "api"], now))
    assert console.export_text().splitlines()[-2:] == [
        "not there yet: api",
        "reconnecting… (connection refused)",
    ]


def test_a_bundle_in_one_line_for_logs() -> None:
    assert summary(STORED) == (
        "web            Error        1/3  config:Ready deploy:InProgress db:Error\n"
        "               error: resource 'db': no plugin 'postgres'"
    )


def test_a_log_gets_a_line_per_change_the_connection_and_all_ready() -> None:
    """What `make run` and `smith status --watch` print into a pipe, snapshot by snapshot."""
    ready = {
        **STORED,
        "status": {
            "readyResources": "3/3",
            "conditions": [{"type": "Ready", "status": "True", "reason": "AllResourcesReady"}],
            "resourceStatuses": [
                {"name": n, "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}
                for n in ("config", "deploy", "db")
            ],
        },
    }
    log = ChangeLog(["web"])
    assert log.lines(Snapshot({"web": STORED})) == [summary(STORED)]
    assert log.lines(Snapshot({"web": STORED})) == [], "nothing changed: nothing said"
    assert log.lines(Snapshot({"web": STORED}, trouble="connection refused")) == [
        "reconnecting… (connection refused)"
    ]
    assert log.lines(Snapshot({"web": ready})) == [
        "connected again",
        "web            Ready        3/3  config:Ready deploy:Ready db:Ready",
        "all 1 Bundles are Ready",
    ]
    assert log.lines(Snapshot({"web": ready})) == []


EXPRESSIONS = """\
apiVersion: smith.atlassian.com/v1
kind: Bundle
metadata: {name: cel}
spec:
  resources:
  - name: a
    readyWhen: ["${self.data.k == 'v'}"]
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {k: v}}
  - name: b
    includeWhen: ["${a.data.k == 'x'}"]
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: b}, data: {k: "${a.data.k}"}}
  - name: c
    spec: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {k: "${a.data.k + nope}"}}
"""


def test_validate_and_plan_name_a_bad_expression_with_its_resource_and_plan_says_what_is_left_out(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "cel.yaml", EXPRESSIONS)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"✗ {path}: bundle 'cel': resource 'c': object expression ${{a.data.k + nope}}: "
        "1:12: undeclared reference to 'nope' (in container '')\n"
    )
    planned = CliRunner().invoke(cli, ["plan", str(path)])
    assert "  wave 1: a" in planned.output
    assert "  b left out: includeWhen ${a.data.k == 'x'} is false" in planned.output


def test_graph_shows_conditions_and_the_dependencies_expressions_read(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", str(write(tmp_path, "cel.yaml", EXPRESSIONS))])
    assert result.stdout.splitlines()[1:] == [
        "  a[\"a<br/>ConfigMap a<br/>ready when self.data.k == 'v'\"]",
        "  b[\"b<br/>ConfigMap b<br/>if a.data.k == 'x'\"]",
        '  c["c<br/>ConfigMap c"]',
        "  a --> b",
        "  a --> c",
    ]
    dotted = CliRunner().invoke(
        cli, ["graph", str(write(tmp_path, "cel.yaml", EXPRESSIONS)), "--format", "dot"]
    )
    assert "[label=\"b\\nConfigMap b\\nif a.data.k == 'x'\"];" in dotted.stdout


def test_plan_and_graph_show_a_collection_as_its_objects_and_its_list() -> None:
    sample = str(SAMPLES / "expressions.yaml")
    planned = CliRunner().invoke(cli, ["plan", sample])
    assert "  wave 3: environments[expr-env-dev], environments[expr-env-prod]" in planned.output
    drawn = CliRunner().invoke(cli, ["graph", sample])
    assert "for each of settings.data.environments.split(',')" in drawn.stdout
