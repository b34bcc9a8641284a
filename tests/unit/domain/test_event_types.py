"""Custom event-type names, wildcard subscriptions, and the rule that matches one to a type."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.domain.event_types import (
    MAX_NAME_LENGTH,
    candidate_topics,
    check_entry,
    check_name,
    could_be_added,
    matches,
)


def test_the_candidates_of_a_type_are_itself_and_a_wildcard_per_dot() -> None:
    assert candidate_topics("a.b.c") == ("a.b.c", "a.*", "a.b.*")
    assert candidate_topics("order.created") == ("order.created", "order.*")
    assert candidate_topics("plain") == ("plain",)
    # Another dialect's topics go through the same rule; none of them can end in `.*`.
    assert candidate_topics("repo1/document.created") == (
        "repo1/document.created",
        "repo1/document.*",
    )


def test_a_wildcard_matches_the_types_under_its_prefix_only() -> None:
    assert matches("log.*", "log.door_was_opened")
    assert matches("log.*", "log.door.opened")
    assert matches("log.door.*", "log.door.opened")
    assert not matches("log.*", "log")
    assert not matches("log.*", "logs.x")
    assert not matches("log.door.*", "log.door")
    assert not matches("log.door.*", "log.doorbell.rang")
    assert matches("log.x", "log.x")
    assert not matches("log.x", "log.x.y")


_SEGMENT = st.text(alphabet="ab_.", min_size=1, max_size=4)


@given(st.lists(_SEGMENT, min_size=1, max_size=4), st.lists(_SEGMENT, min_size=1, max_size=4))
def test_an_entry_matches_a_type_iff_it_is_one_of_its_candidates(
    entry_parts: list[str], type_parts: list[str]
) -> None:
    """The rule the fan-out (and hookd's SQL `publish()`) uses: `P.*` matches T iff T starts
    with `P.`; candidates are how that is looked up by exact topic."""
    event_type = ".".join(type_parts)
    for entry in (".".join(entry_parts), ".".join(entry_parts) + ".*"):
        assert matches(entry, event_type) == (entry in candidate_topics(event_type))
        if entry.endswith(".*"):
            assert matches(entry, event_type) == event_type.startswith(entry[:-1])


@pytest.mark.parametrize("name", ["order.created", "a.b", "log.door_was_opened", "x1.y_2.z3"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("order", "not an event type name"),
        ("Order.created", "not an event type name"),
        ("order..created", "not an event type name"),
        ("order.created.", "not an event type name"),
        ("order.*", "not an event type name"),
        ("ordér.created", "not an event type name"),
        ("order created.x", "not an event type name"),
        ("hookd.mine", "reserved"),
        ("hookd.webhook.disabled", "reserved"),
        ("a." + "b" * MAX_NAME_LENGTH, "at most 200"),
    ],
)
def test_bad_names(name: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_name(name)


@pytest.mark.parametrize(
    "entry", ["order.*", "log.*", "hookd.*", "a.b.*", "hookd.webhook.disabled"]
)
def test_good_entries(entry: str) -> None:
    assert check_entry(entry) == entry


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("*", "not a wildcard"),
        (".*", "not a wildcard"),
        ("log.*.x", "not a known event type"),
        ("log*", "not a known event type"),
        ("LOG.*", "not a wildcard"),
        ("log..*", "not a wildcard"),
        ("log", "not a known event type"),
        ("a." + "b" * MAX_NAME_LENGTH, "at most 200"),
    ],
)
def test_bad_entries(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_entry(entry)


def test_what_could_have_been_added_is_what_check_name_accepts() -> None:
    for name in ("order.created", "a.b", "hookd.mine", "order", "a\x00b.c", "a." + "b" * 300):
        try:
            check_name(name)
            accepted = True
        except ValueError:
            accepted = False
        assert could_be_added(name) is accepted, name
