"""A publisher's event id goes out as the `webhook-id` header: printable ASCII only."""

from __future__ import annotations

import pytest

from hookd.domain.errors import InvalidField
from hookd.domain.event import check_event_id


@pytest.mark.parametrize("value", ["order-1", "evt_0123", "a b", "~!@#$%^&*()"])
def test_printable_ascii_ids_are_kept(value: str) -> None:
    assert check_event_id(value, "id") == value


@pytest.mark.parametrize("value", ["ordré-1", "订单", "emoji-\U0001f600", "tab\there", "nl\n"])
def test_other_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidField, match=r"^id: must hold printable ASCII characters only$"):
        check_event_id(value, "id")
