"""Who may read the metrics, and a worker's own metrics endpoint.

The same rule holds for the API's `/metrics` and for `hookd worker --metrics-port`: anyone when
`HOOKD_METRICS=open`; otherwise `Authorization: Bearer <HOOKD_METRICS_TOKEN>` or an admin's token.
No credentials, or ones that name no one: 401; a user's token that is not an admin's: 403.
The header is checked before anything is rendered.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hookd.config import Settings
from hookd.domain.credentials import token_digest
from hookd.store import accounts
from hookd.store.database import Database

ALLOWED, LOG_IN, NOT_ADMIN = 200, 401, 403

# The role of a live token, or None.
RoleOf = Callable[[str], Awaitable[str | None]]


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def scrape_access(settings: Settings, authorization: str | None, role_of: RoleOf) -> int:
    """ALLOWED, LOG_IN (401) or NOT_ADMIN (403) for a request with this Authorization header."""
    if settings.metrics == "open":
        return ALLOWED
    token = bearer_token(authorization)
    if token is None:
        return LOG_IN
    expected = settings.metrics_token
    if expected is not None and hmac.compare_digest(token.encode(), expected.encode()):
        return ALLOWED
    role = await role_of(token)
    if role is None:
        return LOG_IN
    return ALLOWED if role == "admin" else NOT_ADMIN


def stored_role(db: Database) -> RoleOf:
    """The role of a token as the store knows it."""

    async def role_of(token: str) -> str | None:
        found = await accounts.find_token(db, token_digest(token), time.time())
        return None if found is None else found[0].role

    return role_of


_REFUSED = {LOG_IN: "Log In", NOT_ADMIN: "Administrator rights required"}


def metrics_app(settings: Settings, db: Database) -> web.Application:
    """`GET /metrics` of this process's registry, under the rule above."""
    role_of = stored_role(db)

    async def scrape(request: web.Request) -> web.Response:
        status = await scrape_access(settings, request.headers.get("Authorization"), role_of)
        if status != ALLOWED:
            return web.json_response({"error": _REFUSED[status]}, status=status)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def serve_metrics(settings: Settings, db: Database, host: str, port: int) -> web.AppRunner:
    """Start serving `metrics_app` on host:port; the caller cleans the runner up."""
    runner = web.AppRunner(metrics_app(settings, db), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
