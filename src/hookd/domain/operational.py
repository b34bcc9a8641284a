"""hookd's own event types: what it publishes about itself, through its own pipeline.

Administrators subscribe webhooks to them like to any other type; producers cannot publish them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

WEBHOOK_DISABLED = "hookd.webhook.disabled"
WEBHOOK_RECOVERED = "hookd.webhook.recovered"
DELIVERY_EXHAUSTED = "hookd.delivery.exhausted"

OPERATIONAL_EVENT_TYPES: tuple[str, ...] = (WEBHOOK_DISABLED, WEBHOOK_RECOVERED, DELIVERY_EXHAUSTED)

# Every type under this prefix is hookd's: reserved, never a producer's.
RESERVED_PREFIX = "hookd."

# Why a webhook was disabled, as `hookd.webhook.disabled` names it.
CAUSE_GONE = "gone"
CAUSE_FAILING = "failing"


def is_operational(topic: str) -> bool:
    """Whether events of `topic` are hookd's own: their failures are announced by no event,
    so that a failing subscriber of these types never feeds itself."""
    return topic.startswith(RESERVED_PREFIX)


def shown_url(url: str) -> str:
    """A webhook's URL as an operational event shows it: without user info, query or fragment,
    where credentials are put. A URL the parser refuses (one that could never be sent) shows
    as its scheme and path only, so that nothing after an `@` or a `?` can leak."""
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, _, rest = url.partition("://")
        path = rest.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2].partition("/")[2]
        return f"{scheme}://…/{path}"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(slots=True, frozen=True)
class WebhookRef:
    """A webhook as operational events name it."""

    uid: int
    dialect: str
    url: str
    public_id: str | None = None

    def data(self) -> dict[str, Any]:
        found: dict[str, Any] = {"uid": self.uid, "dialect": self.dialect}
        if self.public_id is not None:
            found["id"] = self.public_id
        found["url"] = shown_url(self.url)
        return found


def disabled_data(webhook: WebhookRef, cause: str, reason: str) -> dict[str, Any]:
    return {"webhook": webhook.data(), "cause": cause, "reason": reason}


def recovered_data(webhook: WebhookRef) -> dict[str, Any]:
    return {"webhook": webhook.data()}


def exhausted_data(
    webhook: WebhookRef,
    *,
    delivery_id: int,
    event_id: str,
    event_type: str,
    attempts: int,
    status_code: int | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "event_id": event_id,
        "event_type": event_type,
        "webhook": webhook.data(),
        "attempts": attempts,
        "last_status_code": status_code,
        "last_error": error,
    }
