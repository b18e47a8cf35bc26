"""What one Bundle may cost Smith. Every service is shared by every tenant: a Bundle built to cost a lot
(nested thousands of levels deep, thousands of resources, references that multiply a large value, reads
of thousands of outside objects) must cost its own Bundle a precise error, never the others' progress.

- **Depth**: a Bundle nested more than `MAX_DEPTH` levels deep is invalid. Everyday Bundles nest about
  15 levels, one holding a CRD with its schema about 40. Python (and orjson, which writes at most 255
  levels) could not carry a document of thousands: what is deeper is cut off where it is first read
  (`pruned`) and the Bundle told why.
- **Resources**: at most `MAX_RESOURCES` in one Bundle (each plan reads the whole Bundle, on the
  planner's one event loop that every Bundle shares).
- **Substitution**: the values references put into one object come to at most `MAX_OBJECT_BYTES`, the
  most the API server's store keeps of one object (a marker inside a longer string, repeated, could
  otherwise multiply a 1 MiB value into gigabytes).
- **Outside objects**: a Bundle's objects may read at most `MAX_OUTSIDE` ConfigMaps and Secrets it does
  not hold; each is read and watched by name for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from smith_engine.model import JSON, JSONObject

MAX_DEPTH: Final = 100
MAX_RESOURCES: Final = 1000
MAX_OBJECT_BYTES: Final = 1_572_864  # 1.5 MiB: etcd's default limit on one request, so on one object
MAX_OUTSIDE: Final = 100

Path = tuple[str | int, ...]


def too_deep(value: JSON, limit: int = MAX_DEPTH) -> Path | None:
    """The path of the first map or list nested more than `limit` levels deep in `value` (the value
    itself, if a map or list, is level 1), or None. Without recursion: any depth is safe to ask about."""
    stack: list[tuple[Any, int, Path]] = [(value, 1, ())]
    while stack:
        node, level, path = stack.pop()
        if not isinstance(node, (Mapping, list)):
            continue
        if level > limit:
            return path
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        stack.extend((child, level + 1, (*path, key)) for key, child in items)
    return None


def pruned(value: JSON, limit: int) -> JSON:
    """`value` with every map or list more than `limit` levels deep left empty (recursion as deep as
    `limit`, no deeper)."""
    if isinstance(value, Mapping):
        return {k: pruned(v, limit - 1) for k, v in value.items()} if limit > 1 else {}
    if isinstance(value, list):
        return [pruned(v, limit - 1) for v in value] if limit > 1 else []
    return value


def within_reach(bundle: JSONObject) -> JSONObject:
    """The Bundle as every service can carry it: as it is, unless it is deeper than orjson writes (255
    levels, learnt by writing it: about 2 us a KiB), when its spec is cut to `MAX_DEPTH` levels (the
    planner refuses it, saying where it is too deep)."""
    try:
        orjson.dumps(bundle)
    except orjson.JSONEncodeError:  # too deep, or a value orjson does not write (the codec does)
        if too_deep(bundle, 255) is not None:
            return {**bundle, "spec": pruned(bundle.get("spec"), MAX_DEPTH)}
    return bundle


def shown(path: Path, *, first: int = 8) -> str:
    """A path as a user reads it (`spec.resources[0].spec`), its first `first` steps and the count of
    the rest: the path to level 101 is not worth reading whole."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[:first]).lstrip(".")
    return text + (f"… ({len(path) - first} more levels)" if len(path) > first else "")


class ExpansionError(ValueError):
    """Substitution would make an object larger than `MAX_OBJECT_BYTES`."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"the values its references put in come to more than {size:,} bytes "
            f"(the most one object may hold is {MAX_OBJECT_BYTES:,})"
        )
