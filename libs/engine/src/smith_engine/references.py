r"""References: `!{name}` markers (and Smith's first form, `{{resource#path}}`) in an object, paths
into a dependency (Kubernetes JSONPath, through jsonpath-ng), and substitution.

A string that is exactly one marker takes the referenced value with its type (a map stays a map, a
number a number); that is all Go Smith substituted. Inside a longer string, `!{name}` is replaced by the
value's text only where `name` is a reference the resource declares (and `{{resource#path}}` where
`resource` is one of its dependencies, as Smith's first form did); all other text is literal (a shell
script's `!{HOME}`, a Go template's `{{ .x }}`), and `\!{name}` is the literal `!{name}` for the rare
text that needs it. A path that is not in the dependency yet is "not resolved yet", never a crash:
the dependency may still fill it in.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import re2  # type: ignore[import-untyped]  # google-re2 ships no stubs

from smith_engine import expressions
from smith_engine.limits import MAX_OBJECT_BYTES, MAX_PATH, Budget, ExpansionError, too_deep
from smith_engine.model import JSON, JSONObject, Modifier, Reference

MARKER_NAME = r"[A-Za-z0-9_.\-]+"
_IN_TEXT: Final = re.compile(r"(\\?)!\{(" + MARKER_NAME + r")\}")  # with its escape, if any
_WHOLE_MARKER: Final = re.compile(r"!\{(" + MARKER_NAME + r")\}\Z")
_MARKER_LIKE: Final = re.compile(r"!\{[^{}]*\}\Z")  # a whole string meant as one marker
# Smith's first form, `{{resource#path}}`: the value at `path` of a dependency's object.
_OUTPUT: Final = re.compile(r"\{\{([a-z0-9][-a-z0-9.]*)#([^{}]+?)\}\}")


class PathSyntaxError(ValueError):
    """A reference path that cannot be parsed."""


class MarkerSyntaxError(ValueError):
    """A string meant as one marker (`!{...}`, the whole string) that is not a well-formed one."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Why a reference has no value yet."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A path that selects several values where one is needed: a mistake in the path, not a wait."""

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


def markers_in(value: JSON, declared: Collection[str] = ()) -> frozenset[str]:
    """Names of the markers in the strings of `value` (map keys are not searched): every string that is
    exactly `!{name}`, and `!{name}` inside longer text where `name` is in `declared` (the rest of such
    text is literal, as is an escaped `\\!{name}`).

    Raises MarkerSyntaxError for a whole string meant as one marker that is not `!{name}` (`!{a b}`).
    """
    names: set[str] = set()
    for text in _strings(value):
        if "!{" not in text:
            continue
        if whole := _WHOLE_MARKER.match(text):
            names.add(whole.group(1))
        elif _MARKER_LIKE.match(text):
            raise MarkerSyntaxError(text)
        else:
            names.update(
                m.group(2) for m in _IN_TEXT.finditer(text) if not m.group(1) and m.group(2) in declared
            )
    return frozenset(names)


def escaped_markers(text: str) -> list[str]:
    """The names of the escaped markers (`\\!{name}`) in `text`, in order."""
    return [m.group(2) for m in _IN_TEXT.finditer(text) if m.group(1)]


def output_name(resource: str, path: str) -> str:
    """The name under which a `{{resource#path}}` marker's value travels (never a valid `!{}` name)."""
    return f"{resource}#{path}"


def outputs_in(value: JSON, dependencies: Collection[str] = ()) -> frozenset[tuple[str, str]]:
    """(resource, path) of every `{{resource#path}}` marker in the strings of `value`: a string that is
    exactly one, and one inside longer text whose resource is in `dependencies` (as Smith's first form
    substituted it); other `{{...}}` in longer text is literal (a Go template's, say)."""
    found: set[tuple[str, str]] = set()
    for text in _strings(value):
        if "{{" not in text:
            continue
        if whole := _OUTPUT.fullmatch(text):
            found.add((whole.group(1), whole.group(2).strip()))
        else:
            found.update(
                (m.group(1), m.group(2).strip()) for m in _OUTPUT.finditer(text) if m.group(1) in dependencies
            )
    return frozenset(found)


def _as_text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def substitute(
    value: JSON,
    values: Mapping[str, JSON],
    *,
    limit: int = MAX_OBJECT_BYTES,
    budget: Budget | None = None,
    expressions: Mapping[str, JSON] | None = None,
    known: Mapping[str, str] | None = None,
    own: Collection[str] = (),
) -> JSON:
    """`value` with every marker replaced by `values[name]`: every whole-string marker's name must be in
    `values` (a `{{resource#path}}` marker's under `output_name(resource, path)`); in longer text, only
    `!{name}` with `name` in `values` is a marker (`\\!{name}` the literal text `!{name}`). Each `${...}`
    whose source is in `expressions` is replaced by its value (`smith_engine.expressions`; an escaped
    `\\${...}` that reads one of `known` loses its backslash); what an expression gives is never read
    for markers. The values put in come to at most `limit` characters of text (a repeated marker counts
    each time), and what is left of `budget` (which they are taken from); more raises ExpansionError."""
    substitution = _Substitution(values, limit if budget is None else min(limit, budget.left))
    substitution.expressions, substitution.known, substitution.own = expressions or {}, known or {}, own
    try:
        done = substitution.into(value)
    except ExpansionError:
        if budget is not None and budget.left < limit:
            raise ExpansionError.bundle_larger() from None
        raise
    if substitution.nested and (deep := too_deep(done)) is not None:  # values of values of values...
        raise ExpansionError.deeper(deep)
    if budget is not None:
        budget.left -= substitution.spent
    return done


class _Substitution:
    def __init__(self, values: Mapping[str, JSON], limit: int) -> None:
        self.values, self.limit = values, limit
        self.expressions: Mapping[str, JSON] = {}
        self.known: Mapping[str, str] = {}
        self.own: Collection[str] = ()  # names an expression may read besides resources (`each`)
        self.sizes: dict[str, int] = {}
        self.spent = 0
        self.nested = False  # a map or list was put in

    def value(self, name: str, values: Mapping[str, JSON] | None = None) -> JSON:
        found = (self.values if values is None else values)[name]
        key = name if values is None else expressions.OPEN + name  # an expression's apart from markers'
        if (size := self.sizes.get(key)) is None:
            size = self.sizes[key] = len(_as_text(found))
        self.spent += size
        if self.spent > self.limit:
            raise ExpansionError.larger(self.limit)
        self.nested = self.nested or isinstance(found, (Mapping, list))
        return found

    def in_text(self, marker: re.Match[str]) -> str:
        escaped, name = marker.group(1), marker.group(2)
        if name not in self.values:
            return marker.group(0)  # not a reference of this resource: literal text
        return marker.group(0)[1:] if escaped else _as_text(self.value(name))

    def output_in_text(self, marker: re.Match[str]) -> str:
        name = output_name(marker.group(1), marker.group(2).strip())
        return _as_text(self.value(name)) if name in self.values else marker.group(0)

    def in_longer_text(self, text: str) -> str:
        text = _IN_TEXT.sub(self.in_text, text) if "!{" in text else text
        return _OUTPUT.sub(self.output_in_text, text) if "{{" in text else text

    def is_expression(self, found: expressions.Found) -> bool:
        if found.escaped:
            return expressions.is_expression(found.source, self.known, self.own)
        return found.source in self.expressions

    def with_expressions(self, text: str) -> JSON:
        """`text` with its expressions' values put in, and its markers in the text between them."""
        found = [f for f in expressions.scan(text, escaped=True) if self.is_expression(f)]
        if not found:
            return self.in_longer_text(text)
        if len(found) == 1 and not found[0].escaped and (found[0].start, found[0].end) == (0, len(text)):
            return self.value(found[0].source, self.expressions)
        parts, at = [], 0
        for f in found:
            parts.append(self.in_longer_text(text[at : f.start]))
            if f.escaped:
                parts.append(text[f.start + 1 : f.end])  # `${...}`, literal
            else:
                parts.append(_as_text(self.value(f.source, self.expressions)))
            at = f.end
        parts.append(self.in_longer_text(text[at:]))
        return "".join(parts)

    def into(self, value: JSON) -> JSON:
        if isinstance(value, str):
            if self.known and expressions.OPEN in value:
                return self.with_expressions(value)
            if whole := _WHOLE_MARKER.match(value):
                return self.value(whole.group(1))
            if whole := _OUTPUT.fullmatch(value):
                return self.value(output_name(whole.group(1), whole.group(2).strip()))
            return self.in_longer_text(value)
        if isinstance(value, Mapping):
            return {k: self.into(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.into(v) for v in value]
        return value


# --- paths ----------------------------------------------------------------------------------------


def _jsonpath_text(path: str) -> str:
    """Any of Smith's spellings of a path (`a.b`, `.a.b`, `{.a.b}`, `{$.a.b}`, `$.a.b`) as JSONPath."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text:
        raise PathSyntaxError("the path is empty")
    text = _escaped_fields(text)
    if text.startswith("$"):
        return text
    return "$" + text if text.startswith((".", "[")) else "$." + text


_FIELD_END: Final = frozenset(".[]() \t'\"?@*=<>!,")


def _escaped_fields(text: str) -> str:
    """`text` with each field name that client-go's JSONPath reads but jsonpath-ng does not — one with
    a `\\`-escaped character (`example\\.com/key`) or a `/` (a label's or an annotation's key) — as a
    quoted name (`."example.com/key"`, `.."example.com/key"`, `@."app.kubernetes.io/name"` in a filter);
    everything else as written: quoted strings, regular expressions (`=~ /.../`), other names."""
    if "\\" not in text and "/" not in text:
        return text
    out: list[str] = []
    i, quote = 0, ""
    while i < len(text):
        c = text[i]
        if quote:  # inside a string or a regular expression: as written, escapes and all
            step = 2 if c == "\\" else 1
            out.append(text[i : i + step])
            quote = "" if c == quote else quote
            i += step
        elif c in "'\"" or (c == "/" and text[:i].rstrip().endswith("=~")):
            quote = c
            out.append(c)
            i += 1
        elif c == "." or (i == 0 and c not in "$[("):
            begin = i + (c == ".")
            field, end = _field_at(text, begin)
            escaped = "\\" in text[begin:end] or "/" in field
            out.append(text[i:begin] + json.dumps(field, ensure_ascii=False) if escaped else text[i:end])
            i = max(end, i + 1)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _field_at(text: str, begin: int) -> tuple[str, int]:
    """The field name that starts at `begin` (its escapes undone), and where it ends."""
    name: list[str] = []
    i = begin
    while i < len(text) and (text[i] == "\\" or text[i] not in _FIELD_END):
        if text[i] == "\\" and i + 1 < len(text):
            name.append(text[i + 1])
            i += 2
        else:
            name.append(text[i])
            i += 1
    return "".join(name), i


@functools.lru_cache(maxsize=4096)
def compile_path(path: str) -> Any:
    """The compiled JSONPath (Kubernetes' dialect: filters, wildcards, `..`, slices); cached, since
    the same few paths are read on every reconcile. Raises PathSyntaxError."""
    if len(path) > MAX_PATH:
        raise PathSyntaxError(f"the path is {len(path)} characters long; one may have at most {MAX_PATH}")
    text = _jsonpath_text(path)
    if "`" in text:  # jsonpath-ng's named functions (`sub`, `split`, ...): not Kubernetes JSONPath
        raise PathSyntaxError("functions in backquotes are not part of Kubernetes JSONPath")
    for pattern in _REGEX_FILTER.findall(text):
        unescaped = re.sub(r"\\(.)", r"\1", pattern[1:-1])  # as jsonpath-ng's lexer reads the string
        try:
            _re2(unescaped)
        except re2.error as e:
            raise PathSyntaxError(f"{pattern} is not an RE2 regular expression ({e})") from None
    try:
        return _jsonpath_parse()(text)
    except Exception as e:  # the library raises bare Exception subclasses of its own for syntax errors
        raise PathSyntaxError(str(e) or type(e).__name__) from None


# A filter's regular expression (`?(@.name =~ "^web-.*")`) runs as RE2, as Kubernetes' own JSONPath
# would: in time linear in the input, whatever the pattern (Python's `re` backtracks: a pattern built
# for it takes time doubling with each character, on the planner's only event loop).
_REGEX_FILTER: Final = re.compile(r"""=~\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|/(?:[^/\\]|\\.)*/)""")


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.max_mem = 1 << 20  # 1 MiB a pattern (RE2's default is 8): `\pL{400}` is refused at once
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=1024)
def _re2(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _re2_search(value: Any, pattern: Any) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    try:
        return _re2(pattern).search(value) is not None
    except re2.error:
        return False  # refused when the path was compiled


@functools.cache
def _jsonpath_parse() -> Any:
    """jsonpath-ng's parser, with `=~` as RE2. Imported at the first path, not with this module: its
    parser tables cost a process ~4 MiB, which a service that never reads a path need not pay."""
    from jsonpath_ng.ext import filter as jsonpath_filter
    from jsonpath_ng.ext.parser import parse

    jsonpath_filter.OPERATOR_MAP["=~"] = _re2_search
    return parse


def values_at(obj: JSON, path: str) -> list[JSON]:
    """Every value `path` selects in `obj`, in order (not copies)."""
    return [m.value for m in compile_path(path).find(obj)]


def go_text(value: JSON) -> str:
    """`value` as Go's JSONPath prints it (kubectl's `-o jsonpath`, Smith's `CrReadyWhenFieldValue`):
    a string as it is, `true`/`false`, an integer in decimal, a float as Go's `%v` (`1.5`, `3`,
    `1e+06`), a map or list as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _go_float(value: float) -> str:
    """Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits that read
    back the same, in %e form (`1e+06`, `-2.5e-07`) when the decimal exponent is below -4 or at least
    6, else without an exponent (`123456`, `0.0001`, `3`)."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    shown = "".join(map(str, digits)) or "0"
    point = len(shown) + exponent  # where the decimal point goes among the digits
    minus = "-" if sign else ""
    if value == 0:
        return minus + "0"
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = shown[0] + ("." + shown[1:] if len(shown) > 1 else "")
        return f"{minus}{mantissa}e{'-' if point - 1 < 0 else '+'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{shown}"
    if point >= len(shown):
        return minus + shown + "0" * (point - len(shown))
    return f"{minus}{shown[:point]}.{shown[point:]}"


def lookup(obj: JSON, path: str) -> JSON | Unresolved | Ambiguous:
    """The one value at `path` in `obj`; Unresolved when there is none (yet), Ambiguous when the path
    selects several."""
    matches = compile_path(path).find(obj)
    if not matches:
        return Unresolved(f"{path} is not set")
    if len(matches) > 1:  # where the values are, never what they are: they may be a Secret's
        where = ", ".join(_where(m) for m in matches[:AMBIGUOUS_SHOWN])
        more = f" and {len(matches) - AMBIGUOUS_SHOWN} more" if len(matches) > AMBIGUOUS_SHOWN else ""
        return Ambiguous(
            f"{path} selects {len(matches)} values ({where}{more}); a reference needs exactly one"
        )
    return copy.deepcopy(matches[0].value)


AMBIGUOUS_SHOWN: Final = 5  # of the values a path selects, how many an error names


def _where(match: Any) -> str:
    """Where a match of a path is in its object, written as a path (`spec.ports[1].port`)."""
    from jsonpath_ng import Fields, Index  # loaded already: `match` came from it

    steps: list[str] = []
    while match is not None:
        if isinstance(match.path, Fields):
            steps += [f".{_field(f)}" for f in reversed(match.path.fields)]
        elif isinstance(match.path, Index):
            steps += [f"[{i}]" for i in reversed(match.path.indices)]
        match = match.context
    return "".join(reversed(steps)).lstrip(".")


def _field(name: str) -> str:
    return re.sub(r"([.\[\]\\])", r"\\\1", name)


def place(obj: dict[str, Any], path: str, value: JSON) -> None:
    """Set `path` in `obj` to `value`, creating what is missing (to fill in example values)."""
    compile_path(path).update_or_create(obj, value)


# --- resolution -----------------------------------------------------------------------------------


def binding_secret_name(binding: JSONObject) -> str:
    """The Secret a Service Catalog ServiceBinding writes its credentials to."""
    spec = binding.get("spec") or {}
    return str(spec.get("secretName") or binding.get("metadata", {}).get("name", ""))


def resolve(
    reference: Reference, *, target: JSONObject, secret: JSONObject | None = None
) -> JSON | Unresolved | Ambiguous:
    """The value `reference` takes from its dependency `target` (`bindsecret`: the binding's `secret`)."""
    if reference.modifier is Modifier.BIND_SECRET:
        if secret is None:
            return Unresolved(f"the Secret {binding_secret_name(target)!r} of the binding does not exist yet")
        value = lookup(secret, reference.path)
        if isinstance(value, (Unresolved, Ambiguous)):
            return value
        if not isinstance(value, str):
            return Unresolved(f"{reference.path} is not a string")
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return Unresolved(f"{reference.path} of the binding's Secret is not base64-encoded UTF-8 text")
    return lookup(target, reference.path)
