"""Content negotiation between plain JSON and HAL."""

from __future__ import annotations

import pytest

from hookd.http.hal import HAL, JSON, negotiate


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
