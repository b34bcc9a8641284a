"""Login, logout, roles and token expiry on each backend; what the store keeps of passwords and
tokens."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from hookd.app import create_app
from hookd.config import Settings
from hookd.domain import credentials
from hookd.http import token_cache
from hookd.store import accounts
from hookd.store.database import Database
from hookd.store.schema import tokens, users
from support import ADMIN_PASSWORD, USER_PASSWORD, Api

LOG_IN = {"error": "Log In"}


@pytest.fixture
def run_worker() -> bool:
    return False


async def login(client: httpx.AsyncClient, username: Any, password: Any) -> httpx.Response:
    return await client.post("/api/v1/login", json={"username": username, "password": password})


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def status_of(api: Api, headers: dict[str, str]) -> int:
    return (await api.client.get("/api/v1/event-types", headers=headers)).status_code


@pytest.mark.parametrize(
    ("username", "password", "role"),
    [("admin", ADMIN_PASSWORD, "admin"), ("user", USER_PASSWORD, "user")],
)
async def test_login(api: Api, username: str, password: str, role: str) -> None:
    response = await login(api.client, username, password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "account_type"}
    assert body["account_type"] == role
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    assert await status_of(api, bearer(response)) == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("admin", "wrong-password", id="wrong-password"),
        pytest.param("admin", ADMIN_PASSWORD.upper(), id="password-case"),
        pytest.param("admin", "", id="empty-password"),
        pytest.param("nobody", ADMIN_PASSWORD, id="unknown-user"),
        pytest.param("Admin", ADMIN_PASSWORD, id="username-case"),
        pytest.param("", "", id="empty-both"),
        pytest.param("user", ADMIN_PASSWORD, id="other-users-password"),
    ],
)
async def test_wrong_credentials(api: Api, username: str, password: str) -> None:
    response = await login(api.client, username, password)
    assert response.status_code == 401
    assert response.json() == LOG_IN


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"username": "admin"}, id="no-password"),
        pytest.param({"password": ADMIN_PASSWORD}, id="no-username"),
        pytest.param({}, id="empty-object"),
        pytest.param({"username": "admin", "password": 123}, id="number-password"),
        pytest.param({"username": ["admin"], "password": ADMIN_PASSWORD}, id="list-username"),
    ],
)
async def test_incomplete_login_body(api: Api, body: dict[str, Any]) -> None:
    # The contract names no error for this; either "Log In" or a 400 in the device shape.
    response = await api.client.post("/api/v1/login", json=body)
    assert response.status_code in (400, 401), response.text
    assert list(response.json()) == ["error"]
    if response.status_code == 401:
        assert response.json() == LOG_IN


async def test_every_login_gets_its_own_token(api: Api) -> None:
    first = bearer(await login(api.client, "admin", ADMIN_PASSWORD))
    second = bearer(await login(api.client, "admin", ADMIN_PASSWORD))
    assert first != second
    assert await status_of(api, first) == 200
    assert await status_of(api, second) == 200


async def test_logout_revokes_only_that_token(api: Api) -> None:
    other = bearer(await login(api.client, "admin", ADMIN_PASSWORD))
    response = await api.client.post("/api/v1/logout", headers=api.admin)
    assert response.status_code == 204
    assert response.content == b""
    listed = await api.client.get("/api/v1/webhooks", headers=api.admin)
    assert listed.status_code == 401
    assert listed.json() == LOG_IN
    again = await api.client.post("/api/v1/logout", headers=api.admin)
    assert again.status_code == 401
    assert again.json() == LOG_IN
    assert await status_of(api, other) == 200
    assert await status_of(api, api.user) == 200


async def test_scheme_is_case_insensitive(api: Api) -> None:
    token = api.admin["Authorization"].removeprefix("Bearer ")
    assert await status_of(api, {"Authorization": f"bearer {token}"}) == 200


async def test_user_publishes_but_does_not_manage(api: Api) -> None:
    published = await api.client.post(
        "/api/v1/events", json={"type": "log.door_was_opened"}, headers=api.user
    )
    assert published.status_code == 202, published.text
    assert set(published.json()) == {"ids", "deliveries"}
    assert published.json()["deliveries"] == 0
    managed = await api.client.get("/api/v1/webhooks", headers=api.user)
    assert managed.status_code == 403
    assert managed.json() == {"error": "Administrator rights required"}


async def test_expired_token_in_the_store(api: Api, db: Database) -> None:
    assert await status_of(api, api.user) == 200
    async with db.transaction() as conn:
        await conn.execute(update(tokens).values(expires_at=time.time() - 1))
    # Changed behind this process's back (as another hookd process would): refused once the
    # process's short token cache has lapsed.
    await asyncio.sleep(token_cache.TTL)
    for headers in (api.user, api.admin):
        response = await api.client.get("/api/v1/event-types", headers=headers)
        assert response.status_code == 401
        assert response.json() == LOG_IN


async def test_default_token_lifetime_is_a_day(api: Api, db: Database) -> None:
    async with db.read() as conn:
        expiries = (await conn.execute(select(tokens.c.expires_at))).scalars().all()
    assert len(expiries) == 2
    for expires_at in expiries:
        assert expires_at - time.time() == pytest.approx(24 * 3600, abs=60)


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    db = Database(settings.database_url, pool_size=1)
    await accounts.create_user(db, "admin", credentials.hash_password(ADMIN_PASSWORD), "admin")
    await db.close()
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hookd.test") as client:
            yield client


async def test_token_ttl_is_honoured(make_settings: Callable[..., Settings], db: Database) -> None:
    async with client_for(make_settings(token_ttl="600ms")) as client:
        logged_in_at = time.time()
        headers = bearer(await login(client, "admin", ADMIN_PASSWORD))
        async with db.read() as conn:
            expires_at = (await conn.execute(select(tokens.c.expires_at))).scalar_one()
        assert expires_at - logged_in_at == pytest.approx(0.6, abs=0.3)
        assert (await client.get("/api/v1/webhooks", headers=headers)).status_code == 200
        await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.05)
        expired = await client.get("/api/v1/webhooks", headers=headers)
        assert expired.status_code == 401
        assert expired.json() == LOG_IN


async def test_passwords_are_stored_as_argon2_hashes(api: Api, db: Database) -> None:
    async with db.read() as conn:
        rows = (await conn.execute(select(users.c.username, users.c.password_hash))).all()
    stored = dict(rows)
    assert set(stored) == {"admin", "user"}
    for username, password in (("admin", ADMIN_PASSWORD), ("user", USER_PASSWORD)):
        assert stored[username].startswith("$argon2id$")
        assert password not in stored[username]
        assert credentials.verify_password(stored[username], password)
    assert stored["admin"] != stored["user"]


async def test_tokens_are_stored_hashed(api: Api, db: Database) -> None:
    raw = [headers["Authorization"].removeprefix("Bearer ") for headers in (api.admin, api.user)]
    async with db.read() as conn:
        rows = (await conn.execute(select(tokens))).all()
    assert len(rows) == 2
    stored = {row.token_hash for row in rows}
    assert stored == {hashlib.sha256(token.encode()).hexdigest() for token in raw}
    for row in rows:
        for value in row:
            assert not any(token in str(value) for token in raw)


async def test_a_disabled_account_can_neither_log_in_nor_use_its_token(
    api: Api, db: Database
) -> None:
    assert await status_of(api, api.user) == 200
    assert await accounts.set_disabled(db, "user", True)
    await asyncio.sleep(token_cache.TTL)  # as another hookd process (the CLI) would do it
    response = await api.client.get("/api/v1/event-types", headers=api.user)
    assert (response.status_code, response.json()) == (401, LOG_IN)
    login = await api.client.post(
        "/api/v1/login", json={"username": "user", "password": USER_PASSWORD}
    )
    assert (login.status_code, login.json()) == (401, LOG_IN)
    assert await accounts.set_disabled(db, "user", False)
    login = await api.client.post(
        "/api/v1/login", json={"username": "user", "password": USER_PASSWORD}
    )
    assert login.status_code == 200
