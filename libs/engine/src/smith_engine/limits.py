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
  And at most `MAX_BUNDLE_BYTES` into all of a Bundle's objects in one plan (a thousand resources each
  copying the same 700 KB value would otherwise hold the planner's memory for all of them).
- **Outside objects**: a Bundle's objects may read at most `MAX_OUTSIDE` ConfigMaps and Secrets it does
  not hold; each is read and watched by name for it.
- **Paths and messages**: a path has at most `MAX_PATH` characters (the library walks a segment a call
  deep), a regex in it at most 1 MiB of RE2's memory; an invalid Bundle's message tells its first
  `MAX_PROBLEMS` problems (it travels as a gRPC status, and into the Bundle's status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from smith_engine.errors import MAX_PROBLEMS as MAX_PROBLEMS  # told here; made where the message is
from smith_engine.model import JSON, JSONObject

MAX_DEPTH: Final = 100
MAX_RESOURCES: Final = 1000
MAX_OBJECT_BYTES: Final = 1_572_864  # 1.5 MiB: etcd's default limit on one request, so on one object
MAX_BUNDLE_BYTES: Final = 8 * 1_048_576  # substituted into all of one Bundle's objects, in one plan
MAX_OUTSIDE: Final = 100
MAX_PATH: Final = 512  # characters in a reference or readiness path (a segment each: recursion)

Path = tuple[str | int, ...]
_Step = tuple[Any, int, Any, Any]  # a walk's step: node, level, key, the parent's step


def too_deep(value: JSON, limit: int = MAX_DEPTH) -> Path | None:
    """The path of the first map or list nested more than `limit` levels deep in `value` (the value
    itself, if a map or list, is level 1), or None. Without recursion, and in memory as the walk's width:
    any depth and width is safe to ask about (each step keeps its key and its parent's, not its path)."""
    if not isinstance(value, (Mapping, list)):
        return None
    stack: list[_Step] = [(value, 1, None, None)]
    while stack:
        step = stack.pop()
        node, level = step[0], step[1]
        if level > limit:
            path: list[str | int] = []
            while step[3] is not None:
                path.append(step[2])
                step = step[3]
            return tuple(reversed(path))
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        stack.extend(
            (child, level + 1, key, step) for key, child in items if isinstance(child, (Mapping, list))
        )
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


@dataclass
class Budget:
    """What is left of a plan's `MAX_BUNDLE_BYTES` of substituted values."""

    left: int = MAX_BUNDLE_BYTES


class ExpansionError(ValueError):
    """Substitution would make an object larger than its limit, or nest it deeper than `MAX_DEPTH`."""

    @classmethod
    def larger(cls, size: int) -> ExpansionError:
        return cls(
            f"the values its references put in come to more than {size:,} bytes "
            f"(the most one object may hold is {MAX_OBJECT_BYTES:,})"
        )

    @classmethod
    def bundle_larger(cls) -> ExpansionError:
        return cls(
            f"with this resource's values, those references put into the Bundle's objects come to more "
            f"than {MAX_BUNDLE_BYTES:,} bytes in all"
        )

    @classmethod
    def deeper(cls, path: Path) -> ExpansionError:
        return cls(
            f"{shown(path)}: with its references' values in, the object is nested more than "
            f"{MAX_DEPTH} levels deep"
        )
