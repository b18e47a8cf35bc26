"""Order a bundle's resources into waves: each resource after every one it depends on. Pure."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping

from smith_engine.errors import CycleError, SelfDependencyError, UnknownDependencyError

Waves = tuple[frozenset[str], ...]


def creation_waves(deps: Mapping[str, frozenset[str]]) -> Waves:
    """Waves for creation: every resource lands in a later wave than all of its dependencies.

    Raises SelfDependencyError, UnknownDependencyError (first in name order) or CycleError.
    """
    for name in sorted(deps):
        if name in deps[name]:
            raise SelfDependencyError(resource=name)
        if missing := deps[name] - deps.keys():
            raise UnknownDependencyError(resource=name, missing=tuple(sorted(missing)))
    sorter = graphlib.TopologicalSorter({name: sorted(deps[name]) for name in sorted(deps)})
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        raise CycleError(cycle=_dependency_order(e.args[1])) from e
    waves: list[frozenset[str]] = []
    while sorter.is_active():
        waves.append(ready := frozenset(sorter.get_ready()))
        sorter.done(*ready)
    return tuple(waves)


def deletion_waves(deps: Mapping[str, frozenset[str]]) -> Waves:
    """Waves for deletion: dependents go before the resources they depend on."""
    return tuple(reversed(creation_waves(deps)))


def creation_order(waves: Waves) -> tuple[str, ...]:
    """A flat creation order, sorted by name inside each wave so it is stable."""
    return tuple(name for wave in waves for name in sorted(wave))


def _dependency_order(found: list[str]) -> tuple[str, ...]:
    """graphlib reports a cycle as [a, b, ..., a] where each node is a *dependency* of the one before
    it reversed; give it as `x depends on y` order, starting from the smallest name so it is stable."""
    members = list(reversed(found[:-1]))
    start = members.index(min(members))
    rotated = members[start:] + members[:start]
    return (*rotated, rotated[0])
