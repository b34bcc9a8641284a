"""Webhook signatures: Standard Webhooks `webhook-signature` plus `X-Hookd-Signature-256`."""

import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
_V1 = b"v1,"


def signing_key(secret: str) -> bytes:
    """The HMAC key for a secret: base64-decoded after `whsec_`, else its UTF-8 bytes.

    Raises ValueError when a `whsec_` secret does not hold non-empty, valid base64.
    """
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        # Unpadded base64 is accepted, as the Standard Webhooks libraries accept it.
        encoded += "=" * (-len(encoded) % 4)
        try:
            key = binascii.a2b_base64(encoded, strict_mode=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise ValueError("a whsec_ secret must be followed by base64") from exc
        if not key:
            raise ValueError("a whsec_ secret must not be empty")
        return key
    return secret.encode()


def generate_secret() -> str:
    """A new random secret in Standard Webhooks form (`whsec_` + 24 random bytes, 38 chars)."""
    return SECRET_PREFIX + binascii.b2a_base64(secrets.token_bytes(24), newline=False).decode()


def _v1_digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    # Feeding the body through update() spares a copy of it joined to the prefix.
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return mac.digest()


def _v1(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    return (
        "v1,"
        + binascii.b2a_base64(_v1_digest(key, msg_id, timestamp, body), newline=False).decode()
    )


def signature_headers(
    key: bytes,
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    previous_key: bytes | None = None,
) -> dict[str, str]:
    """The signature headers of one delivery attempt.

    During a secret rotation's grace period `previous_key` signs too: `webhook-signature` holds
    both signatures, space-separated, the new one first, so a receiver verifies with either
    secret. `X-Hookd-Signature-256` holds one signature only: the new secret's.
    """
    signature = _v1(key, msg_id, timestamp, body)
    if previous_key is not None:
        signature += " " + _v1(previous_key, msg_id, timestamp, body)
    return {
        "webhook-signature": signature,
        "X-Hookd-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


def verify(key: bytes, msg_id: str, timestamp: int, body: bytes, signature_header: str) -> bool:
    """Whether any `v1,<base64>` entry of a `webhook-signature` header value matches."""
    expected = _V1 + binascii.b2a_base64(_v1_digest(key, msg_id, timestamp, body), newline=False)
    return any(
        hmac.compare_digest(entry.encode("utf-8", "replace"), expected)
        for entry in signature_header.split()
    )
