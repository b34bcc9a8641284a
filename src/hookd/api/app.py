"""The application factory: routers, error shapes, and the life cycle of store and worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from hookd import __version__
from hookd.api import auth, device, events, health, repository
from hookd.api.errors import install_error_handlers
from hookd.api.services import Services
from hookd.config import Settings
from hookd.delivery.sender import Sender
from hookd.delivery.ssrf import TargetGuard
from hookd.delivery.worker import Worker
from hookd.store.database import Database
from hookd.store.migrate import schema_problem

DESCRIPTION = """
hookd delivers events to webhooks over HTTP: signed, within a timeout, retried, logged.

Log in with `POST /api/v1/login`, then send `Authorization: Bearer <token>` on every call.
"""


class SchemaOutOfDate(RuntimeError):
    pass


def create_app(settings: Settings, *, run_worker: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url, secret_key=settings.secret_key)
        problem = await schema_problem(db)
        if problem:
            await db.close()
            raise SchemaOutOfDate(problem)
        guard = TargetGuard(settings.allow_networks, enabled=settings.ssrf_guard)
        sender = Sender(guard, connections=64)
        await sender.open()
        app.state.services = Services(settings=settings, db=db, sender=sender)
        worker = Worker(db, settings) if run_worker else None
        worker_task = asyncio.create_task(worker.run()) if worker else None
        try:
            yield
        finally:
            if worker is not None and worker_task is not None:
                worker.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker_task, timeout=35)
            await sender.close()
            await db.close()

    app = FastAPI(
        title="hookd",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(device.router)
    app.include_router(events.router)
    app.include_router(repository.router)
    return app


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 on every route; hookd answers bad input with 400 instead."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
