"""Login, logout, and the dependencies that check a bearer token and a role."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from hookd import publishing
from hookd.domain.api_keys import is_api_key, key_digest
from hookd.domain.credentials import ROLES, new_token, token_digest
from hookd.http.body import read_json_object
from hookd.http.errors import Error, admin_required, login_required, publishing_only
from hookd.http.openapi import errors, operation
from hookd.http.responses import Json
from hookd.http.services import Services, services
from hookd.store import accounts, api_keys
from hookd.store.accounts import User
from hookd.store.api_keys import ApiKey

router = APIRouter(prefix="/api/v1", tags=["authentication"])


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise login_required()
    return token.strip()


async def user_for_token(hookd: Services, token: str) -> User | None:
    """The user a live token (a bearer token or a console session) belongs to."""
    digest, now = token_digest(token), time.time()
    user = hookd.tokens.get(digest, now)
    if user is not None:
        return user
    found = await accounts.find_token(hookd.db, digest, now)
    if found is None:
        return None
    user, expires_at = found
    hookd.tokens.put(digest, user, expires_at, now)
    return user


async def api_key_for(hookd: Services, key: str) -> ApiKey | None:
    """The live API key `key` is (checked by its digest: cheap, a key is long and random)."""
    digest, now = key_digest(key), time.time()
    found = hookd.api_keys.get(digest, now)
    if found is None:
        found = await api_keys.find_api_key(hookd.db, digest)
        if found is not None:
            hookd.api_keys.put(digest, found, math.inf, now)
    return found


async def current_user(request: Request, hookd: Services = Depends(services)) -> User:
    token = _bearer(request)
    if is_api_key(token):
        if await api_key_for(hookd, token) is None:
            raise login_required()
        raise publishing_only()
    user = await user_for_token(hookd, token)
    if user is None:
        raise login_required()
    return user


@dataclass(slots=True, frozen=True)
class Producer:
    """Who publishes: a logged-in user, or an API key limited to some types."""

    # The account idempotency keys are scoped to (`publishing.user_producer`, `key_producer`).
    name: str
    # The types (or wildcards) it may publish; None: any.
    event_types: tuple[str, ...] | None = None


async def current_producer(request: Request, hookd: Services = Depends(services)) -> Producer:
    token = _bearer(request)
    if is_api_key(token):
        key = await api_key_for(hookd, token)
        if key is None:
            raise login_required()
        return Producer(publishing.key_producer(key.id), key.event_types)
    user = await user_for_token(hookd, token)
    if user is None:
        raise login_required()
    return Producer(publishing.user_producer(user.id))


def forget_api_key(hookd: Services, digest: str) -> None:
    """A revoked key is refused by this process at once (by others within the cache's TTL)."""
    hookd.api_keys.forget(digest)


async def current_admin(user: User = Depends(current_user)) -> User:
    if user.role != "admin":
        raise admin_required()
    return user


AnyUser = Annotated[User, Depends(current_user)]
AnyProducer = Annotated[Producer, Depends(current_producer)]
Admin = Annotated[User, Depends(current_admin)]
Hookd = Annotated[Services, Depends(services)]


class Credentials(BaseModel):
    username: str
    password: str


class LoginAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(description="Send it as `Authorization: Bearer <token>`")
    account_type: Annotated[str, WithJsonSchema({"type": "string", "enum": list(ROLES)})]


@router.post(
    "/login",
    summary="Log in: exchange a username and password for a bearer token",
    response_model=LoginAnswer,
    openapi_extra=operation(body=Credentials, secured=False),
    responses=errors(
        Error,
        (400, 401, 413, 415, 429, 503),
        descriptions={
            400: 'Not a JSON object: `{"error": "Wrong JSON body"}`',
            401: 'Wrong credentials: `{"error": "Log In"}`',
            429: "Too many failed logins for the user or from the address: "
            '`{"error": "Too many attempts"}`, with `Retry-After`',
            503: "Too many logins at once, or the store is unavailable",
        },
    ),
)
async def login(request: Request, hookd: Hookd) -> Json:
    body = await read_json_object(request, hookd.settings.max_body_bytes)
    user = await authenticate(hookd, body.get("username"), body.get("password"), client(request))
    if user is None:
        raise login_required()
    return Json({"token": await issue_token(hookd, user), "account_type": user.role})


def client(request: Request) -> str:
    """The address a request came from (logins are throttled per address)."""
    return request.client.host if request.client else ""


async def authenticate(
    hookd: Services, username: object, password: object, address: str
) -> User | None:
    """The user these credentials name, or None: every login (API or console) checks here.

    Too many failures for the user or from the address raise 429 (`LoginGuard`); the password
    is checked off the event loop, and as long for an unknown user as for a known one."""
    if not isinstance(username, str) or not isinstance(password, str) or "\x00" in username:
        return None
    guard = hookd.logins
    with guard.attempt(username, address, time.time()):
        found = await accounts.find_login(hookd.db, username)
        verified = await guard.verify(None if found is None else found[1], password)
        if not verified or found is None:
            guard.failed(username, address, time.time())
            return None
    guard.succeeded(username)
    return found[0]


async def issue_token(hookd: Services, user: User) -> str:
    """A new token for `user`, valid for HOOKD_TOKEN_TTL."""
    token, digest = new_token()
    await accounts.store_token(hookd.db, user.id, digest, time.time() + hookd.settings.token_ttl)
    return token


async def revoke(hookd: Services, token: str) -> None:
    digest = token_digest(token)
    hookd.tokens.forget(digest)
    await accounts.revoke_token(hookd.db, digest)


@router.post(
    "/logout",
    status_code=204,
    summary="Log out: revoke the bearer token of this request",
    responses=errors(Error, (401,)),
    openapi_extra=operation(),
)
async def logout(request: Request, user: AnyUser, hookd: Hookd) -> Response:
    await revoke(hookd, _bearer(request))
    return Response(status_code=204)
