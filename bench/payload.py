"""Event payloads and Standard Webhooks signatures, as hookd sends them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import orjson

EVENT_TYPE = "log.door_was_opened"


def event_data(payload_bytes: int) -> dict[str, object]:
    """A device-style ``data`` object whose JSON is about ``payload_bytes`` long."""
    base: dict[str, object] = {"door": "front", "device": "bench-01", "user": 42, "note": ""}
    pad = max(0, payload_bytes - len(orjson.dumps(base)))
    base["note"] = "x" * pad
    return base


def delivery_body(event_id: str, data: dict[str, object]) -> bytes:
    """A body shaped like hookd's delivery body."""
    return orjson.dumps(
        {"id": event_id, "type": EVENT_TYPE, "created_at": "2024-01-01T00:00:00Z", "data": data}
    )


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(key: bytes, msg_id: str, body: bytes, attempt: int = 1) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": sign(key, msg_id, ts, body),
        "X-Hookd-Attempt": str(attempt),
    }


def new_secret() -> str:
    """32 URL-safe characters (the device dialect accepts 16-128)."""
    return secrets.token_urlsafe(24)[:32]


def run_tag() -> str:
    return secrets.token_hex(4)
