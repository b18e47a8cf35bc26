"""References: markers, paths (dotted and JSONPath), typed substitution, bindsecret decoding."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from smith_engine.model import JSON, Modifier, Reference
from smith_engine.references import (
    Ambiguous,
    MarkerSyntaxError,
    PathSyntaxError,
    Unresolved,
    compile_path,
    lookup,
    markers_in,
    output_name,
    outputs_in,
    resolve,
    substitute,
)

DB: dict[str, Any] = {
    "metadata": {"name": "db", "annotations": {"example.com/a.b": "dotted"}},
    "spec": {
        "disk": "100GiB",
        "port": 5432,
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 80}],
    },
    "status": {"host": "db.internal", "ports": [{"port": 5432}, {"port": 5433}], "ready": True},
}


@pytest.mark.parametrize(
    "path",
    ["status.host", "{$.status.host}", "$.status.host", "{.status.host}", ".status.host", " status.host "],
)
def test_every_spelling_of_a_path_reads_the_same_field(path: str) -> None:
    assert lookup(DB, path) == "db.internal"


@pytest.mark.parametrize("path", ["", "{}", "a[", "a['b", "spec.ports[?(@.protocol==]"])
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(PathSyntaxError):
        compile_path(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status.host", "db.internal"),
        ("{$.spec.port}", 5432),
        ("spec.disk", "100GiB"),
        ("status.ports[1].port", 5433),
        ("status.ready", True),
        ("metadata.annotations['example.com/a.b']", "dotted"),
        ('metadata.annotations["example.com/a.b"]', "dotted"),
        ("status.ports[?(@.port==5433)].port", 5433),
        ('spec.ports[?(@.protocol=="TCP")].port', 80),  # Smith's README
        ("status.ports[-1].port", 5433),
        ("$..disk", "100GiB"),
        ("status.ports[0:1].port", 5432),
    ],
)
def test_resolve_reads_the_value_at_the_path(path: str, value: Any) -> None:
    assert resolve(Reference("r", "db", path), target=DB) == value


@pytest.mark.parametrize("path", ["status.missing", "status.ports[5].port", "status.host.deeper"])
def test_a_path_not_there_yet_is_unresolved_not_a_crash(path: str) -> None:
    found = resolve(Reference("r", "db", path), target=DB)
    assert isinstance(found, Unresolved)
    assert "is not set" in found.reason


@pytest.mark.parametrize("path", ["spec.ports[*].port", "$..port", "status.ports[?(@.port>1)].port"])
def test_a_path_selecting_several_values_is_ambiguous(path: str) -> None:
    found = resolve(Reference("r", "db", path), target=DB)
    assert isinstance(found, Ambiguous)
    assert "exactly one" in found.reason


def test_a_resolved_map_is_a_copy_not_the_observed_object() -> None:
    found = lookup(DB, "spec")
    assert isinstance(found, dict)
    found["disk"] = "changed"
    assert DB["spec"]["disk"] == "100GiB"


def test_output_markers_of_smiths_first_form_are_found_and_substituted() -> None:
    obj = {
        "labels": "{{podpreset1#spec.selector.matchLabels}}",
        "port": '{{service1#spec.ports[?(@.protocol=="TCP")].port}}',
        "text": "secret {{binding1#spec.secretName}}!",
        "template": "{{ .Values.x }} and {{#each}} stay",
    }
    assert outputs_in(obj) == {  # a whole string only, as Go Smith: in longer text it is literal
        ("podpreset1", "spec.selector.matchLabels"),
        ("service1", 'spec.ports[?(@.protocol=="TCP")].port'),
    }
    values = {
        output_name("podpreset1", "spec.selector.matchLabels"): {"role": "app"},
        output_name("service1", 'spec.ports[?(@.protocol=="TCP")].port'): 80,
    }
    assert substitute(obj, values) == {
        "labels": {"role": "app"},
        "port": 80,
        "text": "secret {{binding1#spec.secretName}}!",
        "template": "{{ .Values.x }} and {{#each}} stay",
    }


def test_whole_marker_keeps_the_value_type() -> None:
    values = {"m": {"a": 1}, "n": 3, "l": [1, "x"], "b": False}
    obj = {"map": "!{m}", "num": "!{n}", "list": ["!{l}"], "bool": "!{b}"}
    assert substitute(obj, values) == {"map": {"a": 1}, "num": 3, "list": [[1, "x"]], "bool": False}


def test_markers_inside_text_are_replaced_by_the_value_text() -> None:
    values = {"host": "db", "port": 5432, "on": True, "m": {"b": 1, "a": 2}}
    text = "postgres://!{host}:!{port}/?tls=!{on}&opts=!{m}"
    assert substitute({"x": text}, values) == {"x": 'postgres://db:5432/?tls=true&opts={"a":2,"b":1}'}


def test_substitute_leaves_keys_and_non_strings_alone() -> None:
    obj = {"!{k}": 1, "n": None, "f": 1.5}
    assert substitute(obj, {"k": "v"}) == obj


def test_whole_markers_and_declared_markers_in_text_are_found() -> None:
    obj = {"a": ["x-!{one}", {"b": "!{two}!{three}"}], "c": 5, "d": "!{four}", "e": "not \\!{one}"}
    assert markers_in(obj, declared={"one", "two", "three"}) == {"one", "two", "three", "four"}
    assert markers_in(obj) == {"four"}, "in longer text, only a declared name is a marker"


def test_text_in_longer_strings_is_literal_unless_a_declared_marker() -> None:
    script = "#!/bin/sh\nexport HOST=!{host}; echo !{HOME} \\!{host} !{oops"
    assert substitute({"run": script}, {"host": "db.internal"}) == {
        "run": "#!/bin/sh\nexport HOST=db.internal; echo !{HOME} !{host} !{oops"
    }


@pytest.mark.parametrize("text", ["!{}", "!{a b}", "!{a/b}"])
def test_a_whole_string_meant_as_a_marker_must_be_one(text: str) -> None:
    with pytest.raises(MarkerSyntaxError):
        markers_in({"a": text})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BINDING = {
    "apiVersion": "servicecatalog.k8s.io/v1beta1",
    "kind": "ServiceBinding",
    "metadata": {"name": "bind"},
}
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "bind"},
    "data": {"password": b64("s3cret")},
}


def test_bindsecret_reads_the_binding_secret_decoded() -> None:
    ref = Reference("pw", "binding", "data.password", modifier=Modifier.BIND_SECRET)
    assert resolve(ref, target=BINDING, secret=SECRET) == "s3cret"


def test_bindsecret_before_the_secret_exists_is_unresolved() -> None:
    ref = Reference("pw", "binding", "data.password", modifier=Modifier.BIND_SECRET)
    found = resolve(ref, target=BINDING, secret=None)
    assert isinstance(found, Unresolved)
    assert "'bind'" in found.reason


def test_bindsecret_with_undecodable_value_is_unresolved() -> None:
    ref = Reference("pw", "binding", "data.password", modifier=Modifier.BIND_SECRET)
    found = resolve(ref, target=BINDING, secret={**SECRET, "data": {"password": "***"}})
    assert isinstance(found, Unresolved)


def test_a_regex_filter_runs_as_re2_in_linear_time() -> None:
    """A pattern built to make a backtracking matcher take time doubling per character answers at once
    (RE2, as Kubernetes' JSONPath); a pattern RE2 does not take (a backreference) is a syntax error."""
    hostile = {"items": [{"name": "a" * 5000 + "!"}, {"name": "web-1"}]}
    assert lookup(hostile, '{.items[?(@.name =~ "^(a+)+$")].name}') == Unresolved(
        '{.items[?(@.name =~ "^(a+)+$")].name} is not set'
    )
    assert lookup(hostile, '{.items[?(@.name =~ "^web-[0-9]+$")].name}') == "web-1"
    with pytest.raises(PathSyntaxError, match="not an RE2 regular expression"):
        compile_path('{.items[?(@.name =~ "(a)\\\\1")].name}')


def test_a_path_selecting_several_values_tells_where_they_are_not_what() -> None:
    secret = {"data": {"password": "aHVudGVyMg==", "token": "c2VjcmV0"}}
    found = lookup(secret, "data.*")
    assert isinstance(found, Ambiguous)
    assert (
        found.reason == "data.* selects 2 values (data.password, data.token); a reference needs exactly one"
    )
    assert "aHVudGVyMg==" not in found.reason
    assert "c2VjcmV0" not in found.reason
    many = lookup({"spec": {"ports": [{"port": p} for p in range(8)]}}, "spec.ports[*].port")
    assert isinstance(many, Ambiguous)
    assert "(spec.ports[0].port, spec.ports[1].port, spec.ports[2].port, spec.ports[3].port, " in many.reason
    assert "spec.ports[4].port and 3 more)" in many.reason


ANNOTATED = {
    "metadata": {
        "annotations": {"example.com/owner": "team-a", "a.b/c.d": "x", "café/owner": "team-b"},
        "labels": {"app.kubernetes.io/name": "web"},
    },
    "spec": {"items": [{"name": "a/b", "v": 1}, {"labels": {"app.kubernetes.io/name": "web"}, "v": 2}]},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (r"metadata.annotations.example\.com/owner", "team-a"),  # as client-go reads it
        (r"{.metadata.annotations.example\.com/owner}", "team-a"),
        (r"{$.metadata.labels.app\.kubernetes\.io/name}", "web"),
        (r"metadata.annotations.a\.b/c\.d", "x"),
        ("metadata.annotations['example.com/owner']", "team-a"),  # as before
        ('spec.items[?(@.name=="a/b")].v', 1),  # a `/` in a filter is left alone
        (r"{..example\.com/owner}", "team-a"),  # recursive descent kept
        ("metadata.annotations.'example.com/owner'", "team-a"),  # a quoted name after a dot, as before
        (r'spec.items[?(@.labels.app\.kubernetes\.io/name=="web")].v', 2),  # escapes inside a filter
        (r"metadata.annotations.café/owner", "team-b"),  # not ASCII
    ],
)
def test_escaped_dots_and_slashes_in_a_field_name_are_read_as_client_go_reads_them(
    path: str, value: JSON
) -> None:
    assert lookup(ANNOTATED, path) == value


def test_where_a_value_is_written_reads_back_to_it() -> None:
    found = lookup(ANNOTATED, "metadata..*")
    assert isinstance(found, Ambiguous)
    assert r"metadata.annotations.example\.com/owner" in found.reason
    assert lookup(ANNOTATED, r"metadata.annotations.example\.com/owner") == "team-a"
