"""Webhook signatures: Standard Webhooks `webhook-signature` plus `X-Hookd-Signature-256`.

The two headers are keyed differently. `webhook-signature` uses the key the Standard Webhooks
libraries (`standardwebhooks`, `svix`) derive from a secret string, so that a receiver verifies
with the secret exactly as it was configured. `X-Hookd-Signature-256` uses the secret's own bytes
(decoded for a `whsec_` secret), as it always has.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
_V1 = b"v1,"


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The HMAC keys of one secret."""

    # `webhook-signature`: what the Standard Webhooks libraries derive from the secret.
    standard: bytes
    # `X-Hookd-Signature-256`: the secret's UTF-8 bytes, or a `whsec_` secret's decoded bytes.
    body: bytes


def signing_key(secret: str) -> bytes:
    """The key of `X-Hookd-Signature-256`: base64-decoded after `whsec_`, else UTF-8 bytes.

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


def standard_key(secret: str) -> bytes:
    """The key of `webhook-signature`: what `Webhook(secret)` of the Standard Webhooks libraries
    uses. They strip `whsec_` and base64-decode the rest leniently (characters outside the
    alphabet are skipped, padding is added); where that fails or yields nothing, where those
    libraries would refuse the secret, the secret's UTF-8 bytes."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except ValueError:  # binascii.Error, or non-ASCII text
        key = b""
    return key or secret.encode()


def signing_keys(secret: str) -> SigningKeys:
    """Both keys of a secret; ValueError for a malformed `whsec_` secret."""
    return SigningKeys(standard=standard_key(secret), body=signing_key(secret))


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
    keys: SigningKeys,
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    previous: SigningKeys | None = None,
) -> dict[str, str]:
    """The signature headers of one delivery attempt.

    During a secret rotation's grace period `previous` signs too: `webhook-signature` holds
    both signatures, space-separated, the new one first, so a receiver verifies with either
    secret. `X-Hookd-Signature-256` holds one signature only: the new secret's.
    """
    signature = _v1(keys.standard, msg_id, timestamp, body)
    if previous is not None:
        signature += " " + _v1(previous.standard, msg_id, timestamp, body)
    return {
        "webhook-signature": signature,
        "X-Hookd-Signature-256": "sha256=" + hmac.new(keys.body, body, hashlib.sha256).hexdigest(),
    }


def verify(key: bytes, msg_id: str, timestamp: int, body: bytes, signature_header: str) -> bool:
    """Whether any `v1,<base64>` entry of a `webhook-signature` header value matches `key`
    (a secret's `standard_key`)."""
    expected = _V1 + binascii.b2a_base64(_v1_digest(key, msg_id, timestamp, body), newline=False)
    return any(
        hmac.compare_digest(entry.encode("utf-8", "replace"), expected)
        for entry in signature_header.split()
    )
