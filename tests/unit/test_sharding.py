"""Bundles shared among controller replicas: exactly one owner each, and a member joining or leaving
moves only its own share."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from smith_engine.sharding import Membership, owner

KEYS = [f"ns{i % 7}/bundle-{i}" for i in range(3000)]


def owners(members: list[str]) -> dict[str, str | None]:
    return {k: owner(k, members) for k in KEYS}


def test_every_bundle_has_one_live_owner_and_the_shares_are_even() -> None:
    shares = Counter(owners(["a", "b", "c"]).values())
    assert set(shares) == {"a", "b", "c"}
    assert all(800 < n < 1200 for n in shares.values()), shares
    assert owner("ns/b", []) is None


def test_a_member_leaving_moves_only_its_own_share_and_one_joining_takes_only_from_others() -> None:
    three, two = owners(["a", "b", "c"]), owners(["a", "c"])
    moved = {k for k in KEYS if three[k] != two[k]}
    assert moved == {k for k in KEYS if three[k] == "b"}
    four = owners(["a", "b", "c", "d"])
    assert {k for k in KEYS if three[k] != four[k]} == {k for k in KEYS if four[k] == "d"}


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True), st.text(max_size=20))
def test_the_owner_does_not_depend_on_the_order_members_are_listed_in(members: list[str], key: str) -> None:
    assert owner(key, members) == owner(key, list(reversed(members)))
    assert owner(key, members) in members


def test_a_member_is_live_while_its_lease_was_seen_renewed_within_its_duration() -> None:
    seen = Membership()
    seen.observe("a", "t1", 15, now=100)
    seen.observe("b", "t1", 15, now=100)
    assert seen.live(now=110) == {"a", "b"}
    seen.observe("a", "t2", 15, now=112)  # a renewed; b did not
    seen.observe("b", "t1", 15, now=112)  # the same renewTime read again is no renewal
    assert seen.live(now=116) == {"a"}
    assert seen.next_expiry(now=116) == 11
    seen.forget("a")
    assert seen.live(now=116) == frozenset()
    assert seen.next_expiry(now=116) is None
