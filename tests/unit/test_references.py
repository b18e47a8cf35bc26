"""References: markers, paths (dotted and JSONPath), typed substitution, bindsecret decoding."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from smith_engine.model import Modifier, Reference
from smith_engine.references import (
    MarkerSyntaxError,
    PathSyntaxError,
    Unresolved,
    markers_in,
    parse_path,
    resolve,
    substitute,
)

DB: dict[str, Any] = {
    "metadata": {"name": "db", "annotations": {"example.com/a.b": "dotted"}},
    "spec": {"disk": "100GiB", "port": 5432},
    "status": {"host": "db.internal", "ports": [{"port": 5432}, {"port": 5433}], "ready": True},
}


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("status.host", ("status", "host")),
        ("{$.status.host}", ("status", "host")),
        ("$.status.host", ("status", "host")),
        ("{.status.host}", ("status", "host")),
        ("spec", ("spec",)),
        ("status.ports[1].port", ("status", "ports", 1, "port")),
        ("metadata.annotations['example.com/a.b']", ("metadata", "annotations", "example.com/a.b")),
        ('data["tls.crt"]', ("data", "tls.crt")),
    ],
)
def test_paths_parse_in_both_syntaxes(path: str, segments: tuple[Any, ...]) -> None:
    assert parse_path(path) == segments


@pytest.mark.parametrize("path", ["", "{}", "a[", "a['b"])
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status.host", "db.internal"),
        ("{$.spec.port}", 5432),
        ("spec", {"disk": "100GiB", "port": 5432}),
        ("status.ports[1].port", 5433),
        ("status.ready", True),
        ("metadata.annotations['example.com/a.b']", "dotted"),
    ],
)
def test_resolve_reads_the_value_at_the_path(path: str, value: Any) -> None:
    assert resolve(Reference("r", "db", path), target=DB) == value


@pytest.mark.parametrize("path", ["status.missing", "status.ports[5].port", "status.host.deeper"])
def test_a_path_not_there_yet_is_unresolved_not_a_crash(path: str) -> None:
    found = resolve(Reference("r", "db", path), target=DB)
    assert isinstance(found, Unresolved)
    assert "is not set" in found.reason


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


def test_markers_are_found_anywhere_in_strings() -> None:
    obj = {"a": ["x-!{one}", {"b": "!{two}!{three}"}], "c": 5}
    assert markers_in(obj) == {"one", "two", "three"}


def test_malformed_marker_is_a_syntax_error() -> None:
    with pytest.raises(MarkerSyntaxError):
        markers_in({"a": "!{oops"})


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
