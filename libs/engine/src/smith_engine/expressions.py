r"""CEL expressions in a Bundle: `${...}` in a resource's object reads its dependencies, Kubernetes' own
expression language (`${db.status.endpoint + ':5432'}`), beside `!{name}` markers and `{{res#path}}`.

Names. Each resource of the Bundle is a variable holding its object as the API server has it (status
included): by its name where that is a CEL identifier (`db`), with `-` and `.` written `_` (`db-secret`
is `db_secret`), and always as `resources['db-secret']`. In `readyWhen`, `self` is the resource's own
object.

What is an expression. As with `!{name}` (a marker only where the name is a declared reference), a
`${...}` is an expression only where it reads something the Bundle names: a resource (or `self` where
it is defined). `${HOME}` in a shell script, `${VAR}` for an application's own templating stay literal
text, so every Go Smith Bundle means what it meant; `\${` is a literal `${` where one is needed before
a name the Bundle uses. An expression's resources are dependencies of its resource, as `dependsOn`.

Values. A string that is exactly one expression takes its value with its type (a number stays a
number, a map a map); inside longer text the value's text is put in. An expression whose fields are not
there yet (a key not found, an index past the end) is "not resolved yet": its dependency may fill them
in. Any other failure is an error of its resource.

Checks. Expressions are parsed and type-checked when the Bundle is read (every variable is a map of
string to dyn: field types are checked when evaluated), with the strings, math, optional and encoders
libraries. Each has a cost limit, estimated before it runs as the API server's CEL estimates its own:
the expression's size times the size of the largest list, map or string it reads for each level of
comprehension (`map`, `filter`, `all`, `exists`, ...) or string function that grows text (`replace`,
`join`, `format`) it nests; more than `COST_LIMIT` is an error of its resource and it is not run.

The CEL runtime (cel-expr-python, Google's cel-cpp) is imported at the first expression: it costs a
process ~25 MiB, which a process that reads no expression does not pay."""

from __future__ import annotations

import base64
import datetime
import functools
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from smith_engine.model import JSON

OPEN: Final = "${"
COST_LIMIT: Final = 1_000_000  # estimated cost units per evaluation (the API server's per-call limit)
MAX_LENGTH: Final = 4096  # characters of one expression
RESOURCES: Final = "resources"
SELF: Final = "self"
EACH: Final = "each"  # in a forEach resource: the element its object is made for
MAX_ITEMS: Final = 100  # objects one forEach resource may stand for

_BY_NAME: Final = re.compile(r"""\bresources\s*\[\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\]""")
_KEYWORDS: Final = frozenset(
    {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if"}
    | {"import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)


class ExpressionError(ValueError):
    """An expression that cannot be parsed, type-checked or evaluated, or that would cost too much."""


@dataclass(frozen=True, slots=True)
class Found:
    """One `${...}` of a string: where it is (`start` at `$`, `end` past `}`) and its source."""

    start: int
    end: int
    source: str
    escaped: bool = False


def variable(resource: str) -> str:
    """The CEL identifier of a resource's object (`db-secret` -> `db_secret`)."""
    return resource.replace("-", "_").replace(".", "_")


def variables(resources: Collection[str]) -> dict[str, str]:
    """Identifier -> resource name, for the names that map to one identifier only (`a-b` and `a.b`
    would both be `a_b`: neither is, and both are read as `resources['a-b']`)."""
    by: dict[str, list[str]] = {}
    for name in resources:
        by.setdefault(variable(name), []).append(name)
    reserved = _KEYWORDS | {SELF, EACH, RESOURCES}  # a resource of one of these names: resources['each']
    return {v: names[0] for v, names in by.items() if len(names) == 1 and v not in reserved}


def scan(text: str, *, escaped: bool = False) -> Iterator[Found]:
    """Every `${...}` of `text` with balanced braces outside CEL string literals, in order; an
    unterminated `${` is literal text, and so is an escaped `\\${...}` (yielded, from its backslash,
    only when `escaped`)."""
    at = 0
    while (start := text.find(OPEN, at)) >= 0:
        end = _closing(text, start + len(OPEN))
        if end < 0:
            return
        if start == 0 or text[start - 1] != "\\":
            yield Found(start, end + 1, text[start + len(OPEN) : end])
        elif escaped:
            yield Found(start - 1, end + 1, text[start + len(OPEN) : end], escaped=True)
        at = end + 1


def _closing(text: str, at: int) -> int:
    """The index of the `}` closing the expression that starts at `at`, or -1."""
    depth, i = 0, at
    while i < len(text):
        c = text[i]
        if c in "'\"":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < len(text) and not text.startswith(quote, i):
                i += 2 if text[i] == "\\" else 1
            i += len(quote)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


_TOKEN: Final = re.compile(
    r"(?P<comment>//[^\n]*)|(?P<quote>[rRbB]{0,2}(?:'''|\"\"\"|'|\"))|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<space>\s+)|(?P<other>.)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # comment, string, name, space, other
    text: str


def tokens(source: str) -> list[Token]:
    """CEL's tokens as far as Smith reads them (names, string literals, comments, the rest one character
    each), in time linear in the length of `source`; an unterminated literal runs to the end."""
    found: list[Token] = []
    at = 0
    while at < len(source):
        m = _TOKEN.match(source, at)
        assert m is not None  # `other` matches any character
        kind = m.lastgroup or "other"
        if kind != "quote":
            found.append(Token(kind, m.group(0)))
            at = m.end()
            continue
        quote = m.group(0).lstrip("rRbB")
        raw = "r" in m.group(0).lower()
        i = m.end()
        while i < len(source) and not source.startswith(quote, i):
            i += 2 if source[i] == "\\" and not raw else 1
        end = min(len(source), i + len(quote))
        found.append(Token("string", source[at:end]))
        at = end
    return found


def _plain(source: str) -> str:
    """`source` with its string literals emptied and its comments left out (calls and names are read
    from this: never from inside a literal or a comment)."""
    return "".join(
        "''" if t.kind == "string" else " " if t.kind == "comment" else t.text for t in tokens(source)
    )


def names_read(source: str) -> frozenset[str]:
    """The free identifiers of `source` (not field names after `.` or `.?`, not inside string literals
    or comments); in time linear in its length."""
    found: set[str] = set()
    before: list[str] = []  # the last two significant tokens
    for token in tokens(source):
        if token.kind in ("space", "comment"):
            continue
        if token.kind == "name" and not (before[-1:] == ["."] or before[-2:] == [".", "?"]):
            found.add(token.text)
        before = [*before[-1:], token.text]
    return frozenset(found - _KEYWORDS)


def resources_read(source: str, known: Mapping[str, str]) -> frozenset[str]:
    """The Bundle's resources `source` reads: by identifier (`known`: identifier -> resource) and by
    `resources['name']` (in its first MAX_LENGTH characters: a longer one is refused by `check`)."""
    source = source[:MAX_LENGTH]
    names = names_read(source)
    read = {known[n] for n in names if n in known}
    if RESOURCES in names:
        read.update(a or b for a, b in _BY_NAME.findall(source))
    return frozenset(read)


def is_expression(source: str, known: Mapping[str, str], own: Collection[str] = ()) -> bool:
    """Whether a `${...}` is an expression: it reads a resource of the Bundle, or one of `own` (in its
    first MAX_LENGTH characters: one longer is checked, and refused, only when those read one)."""
    source = source[:MAX_LENGTH]
    names = names_read(source)
    return bool(names & (known.keys() | set(own))) or (RESOURCES in names and bool(_BY_NAME.search(source)))


def expressions_in(value: JSON, known: Mapping[str, str], own: Collection[str] = ()) -> Iterator[str]:
    """The source of every expression in the strings of `value` (map keys are not searched)."""
    if isinstance(value, str):
        if OPEN in value:
            yield from (f.source for f in scan(value) if is_expression(f.source, known, own))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from expressions_in(v, known, own)
    elif isinstance(value, list):
        for v in value:
            yield from expressions_in(v, known, own)


# --- checking and evaluating ----------------------------------------------------------------------


def check(source: str, names: Collection[str], lists: Collection[str] = ()) -> None:
    """Parse and type-check `source` with `names` (and `resources`) declared. Raises ExpressionError."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(source)} characters long; at most {MAX_LENGTH}")
    if RESOURCES in names_read(source) and not _BY_NAME.search(source):
        raise ExpressionError("resources[...] takes a resource's name in quotes: resources['db-secret']")
    _compiled(source, tuple(sorted({*names, RESOURCES})), tuple(sorted(lists)))


class Bound(dict[str, JSON]):
    """What an expression sees (`bindings`), and the sizes of what it reads: the largest list or map and
    the longest string (for the cost estimate, worked out once for all the expressions that see it)."""

    collections: int = 0
    text: int = 0


Sizes = dict[int, tuple[int, int]]  # by id() of an object a plan holds: its largest collection and string


def bindings(
    objects: Mapping[str, JSON],
    known: Mapping[str, str],
    own: Mapping[str, JSON] | None = None,
    *,
    sizes: Sizes | None = None,
) -> Bound:
    """What an expression sees: each of `objects` (by resource name) under its identifier (`known`:
    identifier -> resource) and in `resources`, and `own` (`self`). `sizes` keeps each object's sizes
    for a plan (an object many resources read is measured once)."""
    sizes = {} if sizes is None else sizes
    seen = {name: _readable(obj) for name, obj in objects.items()}
    bound = Bound({v: seen[name] for v, name in known.items() if name in seen})
    bound.update({RESOURCES: seen, **{k: _readable(v) for k, v in (own or {}).items()}})
    measured = [_measured(obj, sizes) for obj in objects.values()]
    measured += [_largest(value) for value in (own or {}).values()]  # an element, `self`: not kept
    for collections, text in measured:
        bound.collections, bound.text = max(bound.collections, collections), max(bound.text, text)
    return bound


def _measured(obj: JSON, sizes: Sizes) -> tuple[int, int]:
    """The sizes of an object the plan holds (kept by its id, which stays its own while the plan runs),
    or of a forEach resource's list of them (measured one by one: the list itself is made anew)."""
    if isinstance(obj, list):
        parts = [_measured(o, sizes) for o in obj] or [(0, 0)]
        return max(len(obj), *(c for c, _ in parts)), max(t for _, t in parts)
    if not isinstance(obj, Mapping):
        return _largest(obj)
    if (known := sizes.get(id(obj))) is None:
        known = sizes[id(obj)] = _largest(obj)
    return known


def _readable(obj: JSON) -> JSON:
    """An object as expressions see it: without its managedFields (the API server's bookkeeping, large,
    and nothing a Bundle means to read)."""
    if not isinstance(obj, Mapping) or not isinstance(meta := obj.get("metadata"), Mapping):
        return obj
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


@dataclass(frozen=True, slots=True)
class NotYet:
    """Why an expression has no value yet: a field it reads is not there (yet)."""

    reason: str


def evaluate(source: str, data: Bound) -> JSON | NotYet:
    """The value of `source` with `data` bound (`bindings`), as JSON; NotYet while a field it reads is
    not there. Raises ExpressionError (also for a cost over the limit, before it runs). Nothing the
    runtime says of a failure is passed on but its kind: its messages may hold the values it read."""
    lists = tuple(sorted(k for k, v in data.items() if isinstance(v, list) and k != EACH))
    program = _compiled(source, tuple(sorted({*data, RESOURCES})), lists)
    if (cost := estimated_cost(source, data)) > COST_LIMIT:
        raise ExpressionError(f"its estimated cost {cost:,} exceeds the limit of {COST_LIMIT:,}")
    try:
        value = program.eval(data={RESOURCES: {}, **data})
        if value.type().name() == "ERROR":
            failure = _failure(str(value.plain_value()))
            if isinstance(failure, NotYet):
                return failure
            raise ExpressionError(failure)
        return _json(value.plain_value())
    except ExpressionError:
        raise
    except Exception as e:  # the runtime's own limits (iteration budget), values it cannot give back
        raise ExpressionError(_failure(str(e))) from None


def _failure(problem: str) -> str | NotYet:
    """What kind of failure the runtime's message tells, in words of Smith's own (never its operands)."""
    if "NOT_FOUND" in problem or "Key not found" in problem or "no such key" in problem:
        return NotYet("a field it reads is not there (yet)")
    if "Index error" in problem:
        return NotYet("an index past the end of a list it reads")
    if overload := re.search(r"No matching overloads found : ([^\s(]{1,20}\([\w<>, .]{0,200}\))", problem):
        return f"no overload of {overload.group(1)}"  # the function and its argument types
    for words, said in _FAILURES:
        if words in problem.lower():
            return said
    return "it failed when run"


_FAILURES: Final = (
    ("iteration budget", "it went past the runtime's iteration budget"),
    ("divide by zero", "division by zero"),
    ("modulus by zero", "division by zero"),
    ("overflow", "an integer overflow"),
    ("regular expression", "an invalid regular expression"),
    ("conver", "a value could not be converted to the type asked"),
    ("duplicate key", "a map literal with a key twice"),
    ("recursion", "a value nested too deep"),
)


# Calls whose output grows with what they read: comprehensions over a list or map, `replace` over text.
_GROWING: Final = re.compile(
    r"\.\s*(?:(map|filter|all|exists|exists_one|transformList|transformMap|transformMapEntry)|(replace))"
    r"\s*\("
)


def estimated_cost(source: str, data: Bound) -> int:
    """An upper bound of the work and memory of `source` over `data`, as the API server's CEL estimates
    its own: its tokens, plus a tenth of the longest string it could read for each name it reads (a
    string put together from them), times for every comprehension (`map`, `filter`, `all`, ...) one more
    than the largest list or map, and for every `replace` one more than the longest string (whose output
    grows with both its inputs) — chained or nested, each multiplies. The longest string counts its own
    literals too."""
    lexed = [t for t in tokens(source[:MAX_LENGTH]) if t.kind not in ("space", "comment")]
    text = max([data.text, *(len(t.text) for t in lexed if t.kind == "string")])
    reads = sum(1 for t in lexed if t.kind == "name" and t.text in data)
    cost = len(lexed) + reads * (text // 10 + 1)
    plain = _plain(source[:MAX_LENGTH])
    # a list it makes of text (`split`) may be as long as the text
    collections = max(data.collections, text) if re.search(r"\.\s*split\s*\(", plain) else data.collections
    for call in _GROWING.finditer(plain):
        cost *= (collections + 1) if call.group(1) else (text + 1)
        if cost > COST_LIMIT:
            break
    return cost


def _largest(value: JSON, *, budget: int = 100_000) -> tuple[int, int]:
    """The size of the largest list or map, and of the longest string, in `value`; past `budget` steps,
    as large as the budget (an estimate must never be low)."""
    collections, text, stack, steps = 0, 0, [value], 0
    while stack:
        if steps >= budget:
            return max(collections, budget), max(text, budget)
        item = stack.pop()
        steps += 1
        if isinstance(item, str):
            text = max(text, len(item))
        elif isinstance(item, Mapping):
            collections = max(collections, len(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            collections = max(collections, len(item))
            stack.extend(item)
    return collections, text


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, names: tuple[str, ...], lists: tuple[str, ...] = ()) -> Any:
    """`source` parsed and checked with `names` declared: objects (maps), `lists` (a forEach resource's
    objects) and `each` (any value)."""
    env = _environment(names, lists)
    try:
        return env.compile(source)
    except RuntimeError as e:
        raise ExpressionError(_compile_problem(str(e))) from None


def _compile_problem(message: str) -> str:
    """The CEL checker's message, without its status prefix: `undeclared reference to 'x'`, a syntax
    error with its column."""
    text = message.split("ERROR: <input>:", 1)[-1]
    line = text.splitlines()[0] if text else message
    return re.sub(r"\s*\[INVALID_ARGUMENT\]\s*$", "", line).strip()[:300]


@functools.lru_cache(maxsize=256)
def _environment(names: tuple[str, ...], lists: tuple[str, ...]) -> Any:
    cel, extensions = _runtime()
    document = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    types = {
        n: cel.Type.DYN if n == EACH else cel.Type.List(cel.Type.DYN) if n in lists else document
        for n in names
    }
    return cel.NewEnv(variables=types, extensions=[e() for e in extensions])


@functools.cache
def _runtime() -> tuple[Any, list[Any]]:
    from cel_expr_python import cel  # type: ignore[import-untyped]
    from cel_expr_python.ext import ext_encoders, ext_math, ext_strings  # type: ignore[import-untyped]

    # Not the optional-values library: the runtime crashes the process giving back a map that holds one.
    return cel, [ext_strings.ExtStrings, ext_math.ExtMath, ext_encoders.ExtEncoders]


def _json(value: Any) -> JSON:
    """A CEL value as JSON: bytes as base64, timestamps as RFC 3339, durations as Go writes them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return str(value)
