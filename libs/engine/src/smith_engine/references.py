"""References: `!{name}` markers in an object, paths into a dependency, and substitution.

A string that is exactly one marker takes the referenced value with its type (a map stays a map, a
number a number); markers inside a longer string are replaced by the value's text. A path that is
not in the dependency yet is "not resolved yet", never a crash: the dependency may still fill it in.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from smith_engine.model import JSON, JSONObject, Modifier, Reference

MARKER_NAME = r"[A-Za-z0-9_.\-]+"
_MARKER: Final = re.compile(r"!\{(" + MARKER_NAME + r")\}")
_WHOLE_MARKER: Final = re.compile(r"!\{(" + MARKER_NAME + r")\}\Z")

PathSegment = str | int


class PathSyntaxError(ValueError):
    """A reference path that cannot be parsed."""


class MarkerSyntaxError(ValueError):
    """A string with `!{` that does not open a well-formed marker."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Why a reference has no value yet."""

    reason: str


# --- markers --------------------------------------------------------------------------------------


def _strings(value: JSON) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def markers_in(value: JSON) -> frozenset[str]:
    """Names of every marker in the strings of `value` (map keys are not searched).

    Raises MarkerSyntaxError for a `!{` that does not open `!{name}`.
    """
    names: set[str] = set()
    for text in _strings(value):
        start = text.find("!{")
        while start != -1:
            match = _MARKER.match(text, start)
            if match is None:
                raise MarkerSyntaxError(text)
            names.add(match.group(1))
            start = text.find("!{", match.end())
    return frozenset(names)


def _as_text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def substitute(value: JSON, values: Mapping[str, JSON]) -> JSON:
    """`value` with every marker replaced by `values[name]`; every marker's name must be in `values`."""
    if isinstance(value, str):
        if whole := _WHOLE_MARKER.match(value):
            return values[whole.group(1)]
        return _MARKER.sub(lambda m: _as_text(values[m.group(1)]), value)
    if isinstance(value, Mapping):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    return value


# --- paths ----------------------------------------------------------------------------------------

_SEGMENT: Final = re.compile(
    r"""\.?(?P<field>[^.\[\]'"]+)       # a field name, after an optional dot
      | \[(?P<index>-?\d+)\]              # [0]
      | \['(?P<single>[^']*)'\]           # ['a.b/c']
      | \["(?P<double>[^"]*)"\]           # ["a.b/c"]
    """,
    re.VERBOSE,
)


def parse_path(path: str) -> tuple[PathSegment, ...]:
    """Parse a dotted path (`status.host`, `spec.ports[0]`) or a JSONPath (`{$.status.host}`, `$.spec`)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise PathSyntaxError("the path is empty")
    segments: list[PathSegment] = []
    pos = 0
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None or match.end() == pos:
            raise PathSyntaxError(f"unexpected {text[pos:]!r}")
        if (index := match.group("index")) is not None:
            segments.append(int(index))
        else:
            segments.append(
                next(
                    g
                    for g in (match.group("field"), match.group("single"), match.group("double"))
                    if g is not None
                )
            )
        pos = match.end()
    return tuple(segments)


def lookup(obj: JSON, segments: tuple[PathSegment, ...]) -> JSON | Unresolved:
    """The value at `segments` in `obj`, or Unresolved saying the path is not set."""
    current: Any = obj
    for segment in segments:
        if isinstance(current, list) and isinstance(segment, int) and -len(current) <= segment < len(current):
            current = current[segment]
            continue
        if isinstance(current, Mapping) and isinstance(segment, str) and segment in current:
            current = current[segment]
            continue
        return Unresolved(f"{_render(segments)} is not set")
    return current


def _render(segments: tuple[PathSegment, ...]) -> str:
    out = ""
    for s in segments:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


# --- resolution -----------------------------------------------------------------------------------


def binding_secret_name(binding: JSONObject) -> str:
    """The Secret a Service Catalog ServiceBinding writes its credentials to."""
    spec = binding.get("spec") or {}
    return str(spec.get("secretName") or binding.get("metadata", {}).get("name", ""))


def resolve(
    reference: Reference, *, target: JSONObject, secret: JSONObject | None = None
) -> JSON | Unresolved:
    """The value `reference` takes from its dependency `target` (`bindsecret`: the binding's `secret`)."""
    segments = parse_path(reference.path)
    if reference.modifier is Modifier.BIND_SECRET:
        if secret is None:
            return Unresolved(f"the Secret {binding_secret_name(target)!r} of the binding does not exist yet")
        value = lookup(secret, segments)
        if isinstance(value, Unresolved) or not isinstance(value, str):
            return value if isinstance(value, Unresolved) else Unresolved(f"{reference.path} is not a string")
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return Unresolved(f"{reference.path} of the binding's Secret is not base64-encoded UTF-8 text")
    return lookup(target, segments)
