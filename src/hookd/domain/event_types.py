"""Event-type names a producer may make up, and wildcard subscriptions to a prefix of them.

A name is dotted lowercase segments (`order.created`); a subscription is a name or a prefix
followed by `.*` (`order.*`, `log.door.*`), which matches every type under that prefix, present
and future. An entry `P.*` matches a type T iff T starts with `P.`: so the entries a type
matches are the type itself and one wildcard per dot in it (`candidate_topics`), which lets the
fan-out look subscriptions up by exact topic. hookd's SQL `publish()` follows the same rule.
"""

from __future__ import annotations

import re

from hookd.domain.operational import RESERVED_PREFIX

MAX_NAME_LENGTH = 200
WILDCARD_SUFFIX = ".*"

NAME_PATTERN = r"[a-z0-9_]+(\.[a-z0-9_]+)+"
WILDCARD_PATTERN = r"[a-z0-9_]+(\.[a-z0-9_]+)*\.\*"
_NAME = re.compile(NAME_PATTERN)
_WILDCARD = re.compile(WILDCARD_PATTERN)


def is_wildcard(entry: str) -> bool:
    return entry.endswith(WILDCARD_SUFFIX)


def is_reserved(name: str) -> bool:
    """hookd's own types (`hookd.…`): subscribable, never a producer's."""
    return name.startswith(RESERVED_PREFIX)


def could_be_added(name: str) -> bool:
    """Whether `name` has the form of a type a producer may add (whether or not it was)."""
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME.fullmatch(name)) and not is_reserved(name)


def check_name(name: str) -> str:
    """A custom type's name: dotted lowercase segments, not under `hookd.`."""
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"must hold at most {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not an event type name: lowercase letters, digits and _ in two or "
            "more segments joined by dots (order.created)"
        )
    if is_reserved(name):
        raise ValueError(f"{name!r} is reserved: types under {RESERVED_PREFIX!r} are hookd's own")
    return name


def check_entry(entry: str) -> str:
    """A subscription: a type's name (hookd's own included) or a wildcard `prefix.*`."""
    if len(entry) > MAX_NAME_LENGTH:
        raise ValueError(f"must hold entries of at most {MAX_NAME_LENGTH} characters")
    if entry == "*" or (is_wildcard(entry) and not _WILDCARD.fullmatch(entry)):
        raise ValueError(
            f"{entry!r} is not a wildcard: a prefix of dotted segments followed by .* (order.*)"
        )
    if not is_wildcard(entry) and not _NAME.fullmatch(entry):
        raise ValueError(f"{entry!r} is not a known event type")
    return entry


def candidate_topics(event_type: str) -> tuple[str, ...]:
    """Every subscription entry that matches `event_type`: itself, and `P.*` for each prefix
    P of it that ends before a dot (`a.b.c` → `a.b.c`, `a.*`, `a.b.*`)."""
    wildcards = (
        event_type[:index] + WILDCARD_SUFFIX for index, char in enumerate(event_type) if char == "."
    )
    return (event_type, *wildcards)


def matches(entry: str, event_type: str) -> bool:
    """Whether the subscription `entry` covers `event_type`."""
    if is_wildcard(entry):
        return event_type.startswith(entry[: -len(WILDCARD_SUFFIX)] + ".")
    return entry == event_type
