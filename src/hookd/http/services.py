"""What the request handlers share: settings, the store, and the synchronous-call machinery."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from hookd.config import Settings
from hookd.delivery.chain import CallLog, Validator
from hookd.delivery.sender import Sender
from hookd.http.logins import LoginGuard
from hookd.http.token_cache import TokenCache
from hookd.store.accounts import User
from hookd.store.api_keys import ApiKey
from hookd.store.database import Database


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    # Sends what a request waits for (test sends), apart from the worker's.
    sender: Sender
    # Calls validation hooks, from a client pool of its own.
    validator: Validator
    # Writes synchronous calls to the delivery log after their answers went out.
    call_log: CallLog
    # Password checks off the event loop, and throttling of failed logins.
    logins: LoginGuard
    tokens: TokenCache[User] = field(default_factory=TokenCache)
    api_keys: TokenCache[ApiKey] = field(default_factory=TokenCache)


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain dependency in its thread pool, a hop on every request.
    services: Services = request.app.state.services
    return services
