"""The device dialect's catalogue of event types: its built-in ones and those an administrator
added, and the checks of what webhooks subscribe to and producers publish against it."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from hookd.dialects.device.event_types import BUILT_IN, KNOWN_EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES
from hookd.domain.errors import InvalidField
from hookd.domain.event_types import could_be_added, is_wildcard
from hookd.store import event_types as store
from hookd.store.database import Database


async def names(db: Database) -> list[str]:
    """Every type of the catalogue: the built-in ones in their order, then the added ones in
    the order they were added."""
    return [*SUBSCRIBABLE_EVENT_TYPES, *(found.name for found in await store.list_event_types(db))]


async def _unknown(db: Database, wanted: Iterable[str], built_in: Collection[str]) -> list[str]:
    """Those of `wanted` that are neither in `built_in` nor added, in their order."""
    others = [name for name in dict.fromkeys(wanted) if name not in built_in]
    # Names that could never have been added are not looked up.
    candidates = [name for name in others if could_be_added(name)]
    added = await store.existing(db, candidates) if candidates else set()
    return [name for name in others if name not in added]


async def check_subscriptions(db: Database, entries: Iterable[str], field: str) -> None:
    """What a webhook lists: wildcards, and types of the catalogue (hookd's own included).
    The entries' form was checked with the webhook's other fields."""
    await _check_names(db, entries, field, BUILT_IN)


async def check_publishable(db: Database, entries: Iterable[str], field: str) -> None:
    """What an API key lists: wildcards, and types a producer may publish."""
    await _check_names(db, entries, field, KNOWN_EVENT_TYPES)


async def _check_names(
    db: Database, entries: Iterable[str], field: str, built_in: Collection[str]
) -> None:
    """Every entry that is no wildcard is in `built_in` or was added (InvalidField otherwise)."""
    unknown = await _unknown(db, (entry for entry in entries if not is_wildcard(entry)), built_in)
    if unknown:
        raise InvalidField(field, f"{unknown[0]!r} is not a known event type")


async def publishable(db: Database, event_types: Iterable[str]) -> frozenset[str]:
    """Those of `event_types` a producer may publish: built-in device types and added ones."""
    wanted = list(event_types)
    unknown = set(await _unknown(db, wanted, KNOWN_EVENT_TYPES))
    return frozenset(name for name in wanted if name not in unknown)
