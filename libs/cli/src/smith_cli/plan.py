"""Offline plans: Bundle files validated and walked wave by wave by Smith's own planner, with no cluster.

After each plan, every applied object is taken as READY (with the fields its dependents' references
read filled from the references' `example` values), so the waves are the order Smith would apply in.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smith_engine.changes import desired_hash
from smith_engine.errors import InvalidBundleError
from smith_engine.model import Bundle
from smith_engine.planner import Apply, Observed, Plan, Reason, VerdictState, plan_bundle
from smith_engine.readiness import READY
from smith_engine.references import Unresolved, lookup, place
from smith_engine.validation import load_bundle


class UnreadableError(Exception):
    """A file that is not YAML, or not a Bundle."""


def bundle_files(paths: list[Path]) -> list[Path]:
    """The files named, and the *.yaml files of the directories named, in order."""
    return sorted(f for p in paths for f in ([p] if p.is_file() else p.glob("*.yaml")))


def read(path: Path) -> dict[str, Any]:
    try:
        obj = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UnreadableError(f"{path}: cannot read it: {str(e).splitlines()[0]}") from None
    if not isinstance(obj, dict) or obj.get("kind") != "Bundle":
        raise UnreadableError(
            f"{path}: not a Bundle (kind: {obj.get('kind') if isinstance(obj, dict) else '?'})"
        )
    obj.setdefault("metadata", {}).setdefault("namespace", "default")
    return obj


def with_examples(bundle: Bundle, name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with every field a reference reads from it filled with that reference's example."""
    out = copy.deepcopy(obj)
    for resource in bundle.resources:
        if resource.name in bundle.refused:  # never planned: its references (maybe bad paths) unread
            continue
        for ref in resource.references:
            if (
                ref.resource == name
                and ref.path
                and ref.example is not None
                and isinstance(lookup(out, ref.path), Unresolved)
            ):
                place(out, ref.path, ref.example)
    return out


def simulate(bundle: Bundle) -> tuple[list[list[str]], Plan]:
    """The waves of applies the planner makes, each wave's objects becoming READY before the next
    plan, and the last plan (whose non-READY verdicts say what a dry run cannot get past)."""
    cluster: dict[str, Observed] = {}
    waves: list[list[str]] = []
    while True:
        plan = plan_bundle(bundle, cluster.values())
        applies = [a for a in plan.actions if isinstance(a, Apply)]
        if not applies:
            return waves, plan
        waves.append([a.resource for a in applies])
        for a in applies:  # as the executor would know it afterwards: in sync with what it applied
            made = with_examples(bundle, a.resource, dict(a.object))
            cluster[a.resource] = Observed(made, READY, in_sync_with=desired_hash(a.object))


@dataclass(frozen=True)
class Checked:
    """A file's Bundle (None: invalid as a whole), and every problem: the Bundle's, or (with a Bundle)
    those of resources refused alone, which Smith would leave as errors while the rest goes on."""

    path: Path
    bundle: Bundle | None
    problems: tuple[str, ...] = ()


def check(paths: list[Path]) -> Iterator[Checked]:
    """Each file validated: its Bundle, or every problem (file, Bundle, resource and field in each)."""
    for path in bundle_files(paths):
        try:
            obj = read(path)
        except UnreadableError as e:
            yield Checked(path, None, (str(e),))
            continue
        name = obj["metadata"].get("name", "?")
        try:
            bundle = load_bundle(obj)
            refused = (p for _, own in sorted(bundle.refused.items()) for p in own)
            yield Checked(path, bundle, tuple(f"{path}: bundle {name!r}: {p}" for p in refused))
        except InvalidBundleError as e:
            yield Checked(path, None, tuple(f"{path}: bundle {name!r}: {p}" for p in e.problems))


def plan_lines(bundle: Bundle) -> list[str]:
    waves, last = simulate(bundle)
    lines = [f"  wave {number}: {', '.join(wave)}" for number, wave in enumerate(waves, start=1)]
    lines += [
        f"  {v.state.lower()} {v.resource}: {v.message}"
        for v in last.verdicts
        if v.state is not VerdictState.READY
    ]
    lines += [f"  {v.resource} {v.message}" for v in last.verdicts if v.reason is Reason.EXCLUDED]
    return lines
