"""What the request handlers share: settings, the store, the sender for synchronous calls."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from hookd.config import Settings
from hookd.delivery.sender import Sender
from hookd.store.database import Database


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    sender: Sender


def services(request: Request) -> Services:
    return request.app.state.services
