"""What the request handlers share: settings, the store, the sender for synchronous calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from hookd.api.token_cache import TokenCache
from hookd.config import Settings
from hookd.delivery.sender import Sender
from hookd.store.database import Database


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    sender: Sender
    tokens: TokenCache = field(default_factory=TokenCache)


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain dependency in its thread pool, a hop on every request.
    services: Services = request.app.state.services
    return services
