"""Signatures checked against the independent `standardwebhooks` package and by hand."""

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook

from hookd.domain.signing import (
    SigningKeys,
    generate_secret,
    signature_headers,
    signing_key,
    signing_keys,
    standard_key,
    verify,
)

BODY = b'{"id":"evt_1","type":"order.created","data":{"total":12.5,"note":"caf\xc3\xa9"}}'
MSG_ID = "evt_1"
PLAIN_SECRET = "a-plain-secret-of-some-length"
WHSEC_SECRET = "whsec_" + base64.b64encode(b"\x00\x01binary key bytes\xff\xfe").decode()


def _keys(key: bytes) -> SigningKeys:
    return SigningKeys(standard=key, body=key)


def _standard_headers(secret: str, timestamp: int) -> dict[str, str]:
    headers = signature_headers(signing_keys(secret), MSG_ID, timestamp, BODY)
    return {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": headers["webhook-signature"],
    }


SECRETS = [
    PLAIN_SECRET,
    "0123456789abcdef",
    base64.b64encode(b"twelve bytes").decode(),
    WHSEC_SECRET,
    "whsec_" + base64.b64encode(b"sixteen byte key!").decode().rstrip("="),
]
# Secrets the libraries refuse to decode: hookd signs with their UTF-8 bytes, as receivers that
# pass those bytes to the libraries verify.
UNDECODABLE = [
    "sécret-key-1234567",  # not ASCII
    "abcdefghijklmnopq",  # 17 base64 characters: 1 more than a multiple of 4
    "!!!!!!!!!!!!!!!!",  # nothing of the base64 alphabet: no key at all
]


@pytest.mark.parametrize("secret", SECRETS)
def test_webhook_signature_verifies_with_both_libraries_given_the_secret_string(
    secret: str,
) -> None:
    headers = _standard_headers(secret, int(time.time()))
    assert Webhook(secret).verify(BODY, headers)["id"] == "evt_1"
    SvixWebhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("secret", UNDECODABLE)
def test_a_secret_the_libraries_cannot_decode_signs_with_its_bytes(secret: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 (binascii.Error, ValueError or their own)
        Webhook(secret)
    headers = _standard_headers(secret, int(time.time()))
    Webhook(secret.encode()).verify(BODY, headers)
    SvixWebhook(secret.encode()).verify(BODY, headers)


def test_standard_key_is_what_the_libraries_decode() -> None:
    assert standard_key("0123456789abcdef") == base64.b64decode("0123456789abcdef==")
    assert standard_key("whsec_MDEyMw") == b"0123"
    assert standard_key("abcdefghijklmnopq") == b"abcdefghijklmnopq"
    assert standard_key("sécret-key-1234567") == "sécret-key-1234567".encode()
    assert standard_key("!!!!!!!!!!!!!!!!") == b"!!!!!!!!!!!!!!!!"


def test_hex_key_stays_the_secret_bytes() -> None:
    assert signing_keys("0123456789abcdef").body == b"0123456789abcdef"
    assert signing_keys(WHSEC_SECRET).body == b"\x00\x01binary key bytes\xff\xfe"


def test_standardwebhooks_rejects_signature_made_with_another_key() -> None:
    timestamp = int(time.time())
    headers = _standard_headers("another-secret-entirely", timestamp)
    with pytest.raises(WebhookVerificationError):
        Webhook(PLAIN_SECRET).verify(BODY, headers)


def test_signature_header_has_v1_prefix_and_standard_value() -> None:
    key = standard_key(PLAIN_SECRET)
    timestamp = 1_700_000_000
    signed = f"{MSG_ID}.{timestamp}.".encode() + BODY
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    header = signature_headers(signing_keys(PLAIN_SECRET), MSG_ID, timestamp, BODY)[
        "webhook-signature"
    ]
    assert header == "v1," + expected


def test_hex_signature_is_hmac_of_body_alone() -> None:
    keys = signing_keys(PLAIN_SECRET)
    headers = signature_headers(keys, MSG_ID, 1_700_000_000, BODY)
    expected = hmac.new(PLAIN_SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert headers["X-Hookd-Signature-256"] == "sha256=" + expected
    # Independent of id and timestamp.
    other = signature_headers(keys, "evt_2", 1_700_000_001, BODY)
    assert other["X-Hookd-Signature-256"] == headers["X-Hookd-Signature-256"]


def test_signature_headers_has_exactly_the_two_headers() -> None:
    headers = signature_headers(_keys(b"k"), MSG_ID, 1, BODY)
    assert set(headers) == {"webhook-signature", "X-Hookd-Signature-256"}


def test_signing_key_of_plain_secret_is_utf8() -> None:
    assert signing_key("sécret-key-1234567") == "sécret-key-1234567".encode()


def test_signing_key_of_whsec_secret_is_base64_decoded() -> None:
    assert signing_key(WHSEC_SECRET) == b"\x00\x01binary key bytes\xff\xfe"


def test_signing_key_accepts_unpadded_whsec_like_standardwebhooks() -> None:
    unpadded = "whsec_" + base64.b64encode(b"sixteen byte key!").decode().rstrip("=")
    assert signing_key(unpadded) == b"sixteen byte key!"


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_", "whsec_é123"])
def test_signing_key_rejects_malformed_whsec(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        signing_key(secret)


def test_verify_accepts_own_signature() -> None:
    key = standard_key(WHSEC_SECRET)
    header = signature_headers(_keys(key), MSG_ID, 1_700_000_000, BODY)["webhook-signature"]
    assert verify(key, MSG_ID, 1_700_000_000, BODY, header)


def test_verify_rejects_tampered_body() -> None:
    key = standard_key(PLAIN_SECRET)
    header = signature_headers(_keys(key), MSG_ID, 1_700_000_000, BODY)["webhook-signature"]
    assert not verify(key, MSG_ID, 1_700_000_000, BODY.replace(b"12.5", b"13.5"), header)


def test_verify_rejects_wrong_timestamp() -> None:
    key = standard_key(PLAIN_SECRET)
    header = signature_headers(_keys(key), MSG_ID, 1_700_000_000, BODY)["webhook-signature"]
    assert not verify(key, MSG_ID, 1_700_000_001, BODY, header)


def test_verify_rejects_wrong_id() -> None:
    key = standard_key(PLAIN_SECRET)
    header = signature_headers(_keys(key), MSG_ID, 1_700_000_000, BODY)["webhook-signature"]
    assert not verify(key, "evt_2", 1_700_000_000, BODY, header)


def test_verify_rejects_wrong_key() -> None:
    header = signature_headers(_keys(b"right key"), MSG_ID, 1_700_000_000, BODY)[
        "webhook-signature"
    ]
    assert not verify(b"wrong key", MSG_ID, 1_700_000_000, BODY, header)


def test_verify_accepts_any_matching_entry_of_several() -> None:
    key = standard_key(PLAIN_SECRET)
    good = signature_headers(_keys(key), MSG_ID, 1_700_000_000, BODY)["webhook-signature"]
    stale = signature_headers(_keys(b"rotated-out key"), MSG_ID, 1_700_000_000, BODY)[
        "webhook-signature"
    ]
    assert verify(key, MSG_ID, 1_700_000_000, BODY, f"{stale} {good}")
    assert verify(key, MSG_ID, 1_700_000_000, BODY, f"v1a,abc {good}  {stale}")
    assert not verify(key, MSG_ID, 1_700_000_000, BODY, f"{stale} v1a,abc")


@pytest.mark.parametrize("header", ["", "   ", "v1,", "garbage", "v2,abc=", "v1,é"])
def test_verify_rejects_malformed_headers(header: str) -> None:
    assert not verify(b"key", MSG_ID, 1_700_000_000, BODY, header)


def test_verify_rejects_right_digest_under_other_version() -> None:
    key = standard_key(PLAIN_SECRET)
    good = signature_headers(_keys(key), MSG_ID, 1_700_000_000, BODY)["webhook-signature"]
    assert not verify(key, MSG_ID, 1_700_000_000, BODY, "v2," + good.removeprefix("v1,"))


def test_generate_secret_shape() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert 16 <= len(secret) <= 128
    assert len(signing_key(secret)) == 24


def test_generate_secret_is_random() -> None:
    assert len({generate_secret() for _ in range(50)}) == 50


def test_generated_secret_signs_verifiably_with_standardwebhooks() -> None:
    secret = generate_secret()
    timestamp = int(time.time())
    Webhook(secret).verify(BODY, _standard_headers(secret, timestamp))
