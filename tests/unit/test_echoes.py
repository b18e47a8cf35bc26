"""A pass's own writes coming back as watch events are no news; anything else about its objects is."""

from __future__ import annotations

from smith_controller.echoes import Echoes

from smith_engine.model import GroupKind, ObjectKey

B = ("ns", "b")
CM = GroupKind("", "ConfigMap")
A, C = ObjectKey(CM, "a"), ObjectKey(CM, "c")


def test_the_echo_of_a_write_is_no_news_once_and_any_other_version_is() -> None:
    echoes = Echoes()
    echoes.begin(B)
    echoes.wrote(B, [(A, "10")])
    assert not echoes.end(B)
    assert not echoes.news(B, (A, "10")), "the version the pass wrote, come back"
    assert echoes.news(B, (A, "10")), "the same version again is no echo any more: it was used up"
    assert echoes.news(B, (A, "11")), "someone else's change"
    assert len(echoes) == 0


def test_an_object_gone_or_never_written_is_news() -> None:
    echoes = Echoes()
    echoes.begin(B)
    echoes.wrote(B, [(A, "10")])
    echoes.end(B)
    assert echoes.news(B, None), "a deletion"
    assert echoes.news(B, (C, "10")), "an object the pass did not write"
    assert echoes.news(("ns", "other"), (A, "10")), "another Bundle's object"


def test_events_during_a_pass_are_judged_when_it_ends() -> None:
    echoes = Echoes()
    echoes.begin(B)
    assert not echoes.news(B, (A, "10")), "the echo came before the executor's answer did"
    echoes.wrote(B, [(A, "10")])
    assert not echoes.end(B), "it was the pass's own write"

    echoes.begin(B)
    echoes.wrote(B, [(A, "12")])
    assert not echoes.news(B, (A, "12"))
    assert not echoes.news(B, (C, "13")), "judged at the end, not now"
    assert echoes.end(B), "one of them was news: another pass"


def test_every_event_of_a_pass_is_judged_so_each_echo_uses_up_its_write() -> None:
    echoes = Echoes()
    echoes.begin(B)
    echoes.wrote(B, [(A, "10"), (C, "11")])
    echoes.news(B, None)  # news, first
    echoes.news(B, (C, "11"))  # an echo after it
    assert echoes.end(B)
    assert echoes.news(B, (C, "11")), "C's echo was used up at the end of the pass"
    assert not echoes.news(B, (A, "10"))


def test_a_new_pass_forgets_what_the_last_wrote() -> None:
    """It reads everything afresh: a late echo of the pass before brings one pass too many, never less."""
    echoes = Echoes()
    echoes.begin(B)
    echoes.wrote(B, [(A, "10")])
    echoes.end(B)
    echoes.begin(B)
    assert not echoes.end(B)
    assert echoes.news(B, (A, "10"))


def test_a_bundle_forgotten_holds_nothing() -> None:
    echoes = Echoes()
    echoes.begin(B)
    echoes.wrote(B, [(A, "10")])
    echoes.forget(B)
    assert len(echoes) == 0
    assert echoes.news(B, (A, "10")), "not inside a pass any more, and nothing expected"
