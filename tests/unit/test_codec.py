"""Fast JSON in and out loses nothing: what orjson refuses or would read inexactly goes through the
standard library."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from smith_engine.codec import DEEPEST, dumps, loads, yaml_safe

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_what_is_written_reads_back_equal(value: Any) -> None:
    assert json.loads(dumps(value)) == value
    assert json.loads(dumps(value, sort_keys=True)) == value


@given(JSON_VALUES | st.floats(allow_nan=False, allow_infinity=False))
def test_what_is_read_is_what_the_standard_library_reads(value: Any) -> None:
    data = json.dumps(value).encode()
    assert loads(data) == json.loads(data)
    assert type(loads(data)) is type(json.loads(data))


@pytest.mark.parametrize(
    "data",
    [
        b'{"size":18446744073709551617}',  # beyond 64 bits: orjson would read a float
        b'{"small":-9223372036854775809}',
        b'{"big":[1234567890123456789012345678901234567890]}',
    ],
)
def test_integers_beyond_64_bits_are_read_with_every_digit(data: bytes) -> None:
    assert loads(data) == json.loads(data)
    assert all(isinstance(v, int) for v in json.loads(data).values() if not isinstance(v, list))
    assert dumps(loads(data)) == data


def test_what_orjson_refuses_to_read_the_standard_library_reads() -> None:
    assert loads(b'{"k":"\\ud800"}') == {"k": "\ud800"}  # a lone surrogate


def test_what_is_not_json_is_a_value_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(b"<html>bad gateway</html>")


@given(st.dictionaries(st.text(), st.integers(), max_size=6))
def test_sorted_output_is_canonical(value: dict[str, int]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert dumps(value, sort_keys=True) == dumps(reordered, sort_keys=True)
    assert (
        dumps(value, sort_keys=True)
        == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_integers_beyond_64_bits_keep_every_digit() -> None:
    huge = {"spec": {"size": 2**64 + 1, "small": -(2**63) - 1}}
    assert dumps(huge) == b'{"spec":{"size":18446744073709551617,"small":-9223372036854775809}}'


def test_unicode_is_written_as_utf8() -> None:
    assert dumps({"name": "café ✓"}) == '{"name":"café ✓"}'.encode()


def test_what_is_written_holds_no_more_memory_than_its_size() -> None:
    value = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v" * 600}}
    tracemalloc.start()
    try:
        kept = [dumps(value) for _ in range(100)]
        held = tracemalloc.get_traced_memory()[0] / len(kept)
    finally:
        tracemalloc.stop()
    assert held < 2 * len(kept[0])


def test_json_for_a_server_side_apply_reads_the_same_as_yaml() -> None:
    """The API server reads an apply's body as YAML: the characters YAML refuses or reads as line
    breaks are escaped, everything else is left as it is."""
    value = {"k": "a\x06\x7f\x85\x99 \u2028 \u2029 \ufeff é \U0009fb9e 🙂", "plain": "ascii"}
    safe = yaml_safe(dumps(value))
    assert json.loads(safe) == value
    assert yaml.safe_load(safe.decode()) == value
    assert b"\\u007f" in safe
    assert "é".encode() in safe
    plain = dumps({"k": "é 🙂"})
    assert yaml_safe(plain) is plain


def nested_json(depth: int, leaf: str = '"leaf"') -> bytes:
    return ('{"a":' * depth + leaf + "}" * depth).encode()


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, (dict, list)):
        depth += 1
        if not value:
            break
        value = value["a"] if isinstance(value, dict) else value[0]
    return depth


@pytest.mark.parametrize("depth", [1_100, 20_000])
def test_json_deeper_than_python_reaches_is_read_with_its_depths_left_out(depth: int) -> None:
    """A Bundle nested thousands of levels deep (the API server takes 10,000) once raised a
    RecursionError that stopped the controller's watch of every Bundle."""
    listing = b'{"items":[{"name":"fine"},' + nested_json(depth) + b',{"name":"also fine"}]}'
    read = loads(listing)
    assert read["items"][0] == {"name": "fine"}
    assert read["items"][2] == {"name": "also fine"}
    assert depth_of(read["items"][1]) == DEEPEST - 2  # the list and its map are levels 1 and 2
    assert loads(b"[" * depth + b"]" * depth) is not None


def test_brackets_inside_strings_are_text_when_depths_are_left_out() -> None:
    text = nested_json(2_000, r'"]}\"[{"')
    read = loads(b'{"s":"]]}}{{","v":' + text + b"}")
    assert read["s"] == "]]}}{{"
    assert depth_of(read["v"]) == DEEPEST - 1


def test_a_value_read_deeper_than_the_standard_library_writes_is_written_with_its_depths_left_out() -> None:
    value = loads(nested_json(1_010))  # orjson reads 1,024 levels; the standard library writes ~1,000
    assert depth_of(loads(dumps(value))) == DEEPEST  # the last one left empty
