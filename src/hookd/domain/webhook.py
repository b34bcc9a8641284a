"""The one webhook concept every dialect shares: what is stored and what delivery needs.

A dialect sees a webhook through its own fields (and may keep more of its own beside it); the
core knows only these. `dialect` names the dialect that created the webhook: each dialect lists,
reads and changes its own webhooks only.
"""

from __future__ import annotations

from dataclasses import dataclass

from hookd.domain.states import Ordering, WebhookHealth, WebhookStatus


@dataclass(slots=True)
class WebhookFields:
    """The writable part of a webhook."""

    url: str
    topics: tuple[str, ...]
    secret: str | None = None
    status: WebhookStatus = WebhookStatus.ACTIVE
    timeout_ms: int = 10_000
    # A JSON object of header name → value, sent with every delivery.
    headers: str = "{}"
    description: str = ""
    max_retries: int = 3
    # Sent as `Authorization: Bearer <token>` with every delivery.
    bearer_token: str | None = None
    # When not empty, the webhook receives only events published with one of these categories.
    categories: tuple[str, ...] = ()
    # Deliveries per second at most, all workers together (None: no limit).
    rate_limit: int | None = None
    ordering: Ordering = Ordering.NONE


@dataclass(slots=True)
class Webhook(WebhookFields):
    id: int = 0
    dialect: str = ""
    public_id: str | None = None
    created_at: int = 0
    updated_at: int = 0
    disabled_reason: str | None = None
    health: WebhookHealth = WebhookHealth.OK
    # The secret before the last rotation, still signed with until `previous_secret_until`.
    previous_secret: str | None = None
    previous_secret_until: float | None = None

    @property
    def active(self) -> bool:
        return self.status == WebhookStatus.ACTIVE


def receives(categories: tuple[str, ...], category: str | None) -> bool:
    """Whether a webhook restricted to `categories` (none: all) receives an event of
    `category`."""
    return not categories or category in categories
