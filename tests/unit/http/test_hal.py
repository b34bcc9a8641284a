"""Content negotiation between plain JSON and HAL."""

from __future__ import annotations

import pytest

from hookd.http.hal import HAL, JSON, _negotiate_cached, negotiate


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("APPLICATION/JSON; charset=utf-8", JSON),
        ("application/hal+json", HAL),
        ("application/hal+json, application/json", HAL),
        ("application/json, application/hal+json;q=0.9", JSON),
        ("application/json;q=0.1, application/hal+json;q=0.2", HAL),
        ("application/json;q=0, */*", HAL),
        ("application/hal+json;q=0, */*", JSON),
        ("text/html", None),
        ("application/json;q=0", None),
        ("application/hal+json;q=0", None),
        ("application/xml, text/*", None),
        ("application/json;q=oops", None),
    ],
)
def test_content_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_a_long_accept_header_is_worked_out_but_not_remembered() -> None:
    _negotiate_cached.cache_clear()
    long_accept = "x/y;q=0.5, " * 2000 + "application/hal+json"
    negotiate(long_accept)
    negotiate("application/hal+json")
    assert _negotiate_cached.cache_info().currsize == 1


def test_only_the_first_media_ranges_count() -> None:
    assert negotiate("x/y, " * 100 + "application/hal+json") is None
    assert negotiate("x/y, " * 10 + "application/hal+json") == HAL
