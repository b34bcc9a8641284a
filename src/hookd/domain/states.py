"""The states of a delivery and of a webhook: the only place their names are written."""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """`pending` → `delivering` → `succeeded` | `failed`, with `retrying` between attempts."""

    PENDING = "pending"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# States a worker may claim: due new and retrying deliveries, and `delivering` ones whose lease
# ran out (a claimed delivery's `due_at` is the end of its lease).
CLAIMABLE: tuple[DeliveryState, ...] = (
    DeliveryState.PENDING,
    DeliveryState.RETRYING,
    DeliveryState.DELIVERING,
)
# States in which a delivery waits for its next attempt.
WAITING: tuple[DeliveryState, ...] = (DeliveryState.PENDING, DeliveryState.RETRYING)


class WebhookStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class WebhookHealth(StrEnum):
    """`suspended`: failing continuously, so its deliveries wait while one probe at a time is
    tried; `ok` otherwise."""

    OK = "ok"
    SUSPENDED = "suspended"


class Ordering(StrEnum):
    """`fifo`: a webhook's deliveries are attempted strictly in publish order, one at a time."""

    NONE = "none"
    FIFO = "fifo"
