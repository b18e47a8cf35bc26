"""JSON in and out, fast and lossless: orjson where it can (about 15 times the standard library's speed
writing a Bundle, 3 times reading an object), the standard library where orjson refuses (integers
beyond 64 bits and keys that are not strings out; lone surrogates in) or would lose something: orjson
reads an integer beyond 64 bits as a float, losing digits a custom resource may hold, so JSON with a
run of 19 digits or more is read by the standard library."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import orjson

from smith_engine.limits import pruned


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON; with `sort_keys`, canonical (the same bytes for equal values). The bytes are
    copied out of orjson's buffer, which holds at least 8 KiB whatever the size of the JSON: what is kept
    (the controller keeps every object it manages this way) costs its size and no more."""
    try:
        return bytes(memoryview(orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)))
    except TypeError:  # orjson.JSONEncodeError is a TypeError (and orjson writes 255 levels at most)
        pass
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False).encode()
    except RecursionError:  # a hostile object as read (orjson reads 1,024 levels): as `loads` would
        return dumps(pruned(value, DEEPEST), sort_keys=sort_keys)


_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER: Final = b"0" * 19  # -2**63 - 1 has 19 digits; orjson reads any shorter integer exactly


def loads(data: bytes) -> Any:
    """The value of JSON `data` (raises json.JSONDecodeError, a ValueError, when it is not JSON).

    JSON nested deeper than Python's recursion reaches (about 1,000 levels; the API server takes 10,000)
    is read with what lies deeper than `DEEPEST` levels left out (`null` in its place), never a
    RecursionError: one such object in a list or a watch must not cost the rest."""
    if _LONG_NUMBER not in data.translate(_DIGITS):  # a C-speed scan: about 1.5 ns a byte
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library reads a few things orjson does not (lone surrogates)
    try:
        return json.loads(data)
    except RecursionError:
        return json.loads(_shallow(data, DEEPEST))


DEEPEST: Final = 200
_TOKEN: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _shallow(data: bytes, deepest: int) -> bytes:
    """JSON `data` with every map or list nested more than `deepest` levels deep replaced by `null`."""
    kept: list[bytes] = []
    depth, start, cut = 0, 0, -1  # cut: where the map or list being left out began
    for token in _TOKEN.finditer(data):
        bracket = token.group()
        if bracket[0] == 0x22:  # a string: brackets in it are text
            continue
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth == deepest + 1 and bracket in (b"[", b"{"):
            kept.append(data[start : token.start()])
            cut = token.start()
        elif depth == deepest and cut >= 0 and bracket in (b"]", b"}"):
            kept.append(b"null")
            start, cut = token.end(), -1
    kept.append(data[start:])
    return b"".join(kept)


# Characters JSON leaves as they are but YAML does not: DEL and the C1 controls (refused: "control
# characters are not allowed"), NEL, the line and paragraph separators (line breaks to YAML: a quoted
# value would be folded), the byte order mark and the two non-characters.
_NOT_YAML: Final = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def yaml_safe(data: bytes) -> bytes:
    """JSON that a YAML parser reads as the same value: the API server reads a server-side apply's body
    as YAML (of which JSON is a subset, but for these characters), so they are escaped (`\\u007f`)."""
    text = data.decode()
    if _NOT_YAML.search(text) is None:
        return data
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()
