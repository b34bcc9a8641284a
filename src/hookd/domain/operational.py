"""hookd's own event types: what it publishes about itself, through its own pipeline.

Administrators subscribe webhooks to them like to any other type; producers cannot publish them.
"""

from __future__ import annotations

WEBHOOK_DISABLED = "hookd.webhook.disabled"
WEBHOOK_RECOVERED = "hookd.webhook.recovered"
DELIVERY_EXHAUSTED = "hookd.delivery.exhausted"

OPERATIONAL_EVENT_TYPES: tuple[str, ...] = (WEBHOOK_DISABLED, WEBHOOK_RECOVERED, DELIVERY_EXHAUSTED)

# Every type under this prefix is hookd's: reserved, never a producer's.
RESERVED_PREFIX = "hookd."
