"""The short-lived cache of checked bearer tokens."""

from __future__ import annotations

from hookd.http.token_cache import TokenCache
from hookd.store.accounts import User

ANN = User(1, "ann", "admin")


def test_a_cached_token_is_served_until_the_ttl() -> None:
    cache = TokenCache(ttl=2.0)
    cache.put("d", ANN, expires_at=1000.0, now=100.0)
    assert cache.get("d", 101.9) == ANN
    assert cache.get("d", 102.0) is None
    assert cache.get("d", 101.0) is None  # gone once it lapsed


def test_never_past_the_token_expiry() -> None:
    cache = TokenCache(ttl=2.0)
    cache.put("d", ANN, expires_at=100.5, now=100.0)
    assert cache.get("d", 100.4) == ANN
    assert cache.get("d", 100.5) is None


def test_forget() -> None:
    cache = TokenCache()
    cache.put("d", ANN, expires_at=1e12, now=0.0)
    cache.forget("d")
    assert cache.get("d", 1.0) is None
