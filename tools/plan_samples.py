"""Validate Bundle files and print, wave by wave, how Smith's planner would converge each one.

A dry run with no cluster: after each plan, every applied object is taken as READY (with a
`status` made from the references' `example` values where a dependency's status is read).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from smith_engine.changes import desired_hash
from smith_engine.errors import InvalidBundleError
from smith_engine.model import Bundle
from smith_engine.planner import Apply, Observed, Plan, VerdictState, plan_bundle
from smith_engine.readiness import READY
from smith_engine.references import Unresolved, lookup, place
from smith_engine.validation import load_bundle


def with_examples(bundle: Bundle, name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with every field a reference reads from it filled with that reference's example."""
    out = copy.deepcopy(obj)
    for resource in bundle.resources:
        for ref in resource.references:
            if ref.resource != name or ref.example is None:
                continue
            if isinstance(lookup(out, ref.path), Unresolved):
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="Bundle files or directories of them")
    args = parser.parse_args(argv)
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.glob("*.yaml")))
    failed = 0
    for path in files:
        obj = yaml.safe_load(path.read_text())
        obj.setdefault("metadata", {}).setdefault("namespace", "default")
        try:
            bundle = load_bundle(obj)
        except InvalidBundleError as e:
            failed += 1
            print(f"✗ {path}: invalid\n  " + "\n  ".join(str(p) for p in e.problems))
            continue
        print(f"✓ {path}: bundle {bundle.name!r}, {len(bundle.resources)} resources")
        waves, last = simulate(bundle)
        for number, wave in enumerate(waves, start=1):
            print(f"  wave {number}: {', '.join(wave)}")
        for verdict in last.verdicts:
            if verdict.state is not VerdictState.READY:
                print(f"  {verdict.state.lower()} {verdict.resource}: {verdict.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
