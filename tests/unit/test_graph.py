"""Graph: creation waves put every resource after its dependencies; deletion is the reverse."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smith_engine.errors import CycleError, SelfDependencyError, UnknownDependencyError
from smith_engine.graph import creation_order, creation_waves, deletion_waves

Deps = dict[str, frozenset[str]]


def deps(**edges: str) -> Deps:
    return {k: frozenset(v.split()) for k, v in edges.items()}


def test_independent_resources_share_the_first_wave() -> None:
    assert creation_waves(deps(a="", b="", c="")) == (frozenset("abc"),)


def test_diamond_has_three_waves() -> None:
    waves = creation_waves(deps(a="", b="a", c="a", d="b c"))
    assert waves == (frozenset("a"), frozenset("bc"), frozenset("d"))


def test_deletion_is_the_reverse_of_creation() -> None:
    graph = deps(a="", b="a", c="b")
    assert deletion_waves(graph) == tuple(reversed(creation_waves(graph)))
    assert creation_order(deletion_waves(graph)) == ("c", "b", "a")


def test_unknown_and_self_dependencies_are_errors() -> None:
    with pytest.raises(UnknownDependencyError):
        creation_waves(deps(a="zz"))
    with pytest.raises(SelfDependencyError):
        creation_waves(deps(a="a"))


@st.composite
def dags(draw: st.DrawFn) -> Deps:
    """Random DAGs: node i may only depend on nodes before it."""
    size = draw(st.integers(min_value=1, max_value=25))
    names = [f"r{i}" for i in range(size)]
    return {
        name: frozenset(draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else [])
        for i, name in enumerate(names)
    }


@given(dags())
def test_every_dependency_lands_in_an_earlier_wave(graph: Deps) -> None:
    wave_of = {name: i for i, wave in enumerate(creation_waves(graph)) for name in wave}
    assert wave_of.keys() == graph.keys()
    for name, dependencies in graph.items():
        assert all(wave_of[d] < wave_of[name] for d in dependencies)


@given(dags())
def test_waves_are_as_early_as_possible(graph: Deps) -> None:
    """Each resource's wave is one past its latest dependency's, so independent work is never delayed."""
    wave_of = {name: i for i, wave in enumerate(creation_waves(graph)) for name in wave}
    for name, dependencies in graph.items():
        assert wave_of[name] == max((wave_of[d] + 1 for d in dependencies), default=0)


@given(dags(), st.data())
def test_a_cycle_is_reported_with_real_members(graph: Deps, data: st.DataObject) -> None:
    names = sorted(graph)
    # Close a cycle: make an early node depend on a later one that (transitively) depends on it,
    # or on itself via a fresh 2-cycle when no such pair exists.
    low = data.draw(st.sampled_from(names))
    high = data.draw(st.sampled_from(names))
    cyclic = dict(graph)
    if low == high:
        cyclic[low] = graph[low] | {"extra"}
        cyclic["extra"] = frozenset({low})
    else:
        cyclic[low] = graph[low] | {high}
        cyclic[high] = graph[high] | {low}
    with pytest.raises(CycleError) as caught:
        creation_waves(cyclic)
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for member, dependency in itertools.pairwise(cycle):
        assert dependency in cyclic[member], f"{member} does not depend on {dependency}"
