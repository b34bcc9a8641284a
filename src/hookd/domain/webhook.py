"""The one webhook concept both dialects share: what is stored and what delivery needs."""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE = "active"
DISABLED = "disabled"


@dataclass(slots=True)
class WebhookFields:
    """The writable part of a webhook, dialect-neutral."""

    url: str
    topics: tuple[str, ...]
    secret: str | None = None
    status: str = ACTIVE
    timeout_ms: int = 10_000
    headers: str = "{}"
    description: str = ""
    max_retries: int = 3
    # Repository dialect only.
    uri: str | None = None
    repository_id: str | None = None
    handle_response: str | None = None
    api_key: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(slots=True)
class Webhook(WebhookFields):
    id: int = 0
    public_id: str | None = None
    created_at: int = 0
    updated_at: int = 0
    disabled_reason: str | None = None
