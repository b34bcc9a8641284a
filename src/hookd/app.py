"""The application: the services every request shares, hookd's own routes and each dialect's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hookd import __version__
from hookd.config import Settings
from hookd.console.routes import CONSOLE
from hookd.delivery import metrics
from hookd.delivery.chain import CallLog, Validator
from hookd.delivery.sender import Sender
from hookd.delivery.ssrf import TargetGuard
from hookd.delivery.worker import Worker
from hookd.dialects.device.routes import DEVICE
from hookd.dialects.repository.routes import REPOSITORY
from hookd.http import auth, docs, health, openapi
from hookd.http.dialect import Dialect
from hookd.http.errors import ErrorShapes, install_error_handlers
from hookd.http.limits import RequestLimits, body_ceiling
from hookd.http.logins import LoginGuard
from hookd.http.requests import RequestObserver
from hookd.http.services import Services
from hookd.store import keyring, stats
from hookd.store.database import Database
from hookd.store.migrate import schema_problem

DIALECTS: tuple[Dialect, ...] = (DEVICE, REPOSITORY)

DESCRIPTION = """
hookd delivers events to webhooks over HTTP: signed, within a timeout, retried, logged.

Log in with `POST /api/v1/login`, then send `Authorization: Bearer <token>` on every call.
"""

# Connections of the client that makes the test sends a request waits for.
SYNCHRONOUS_CONNECTIONS = 64


class SchemaOutOfDate(RuntimeError):
    pass


def create_app(settings: Settings, *, run_worker: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.database_url, schema=settings.database_schema, secret_key=settings.secret_key
        )
        problem = await schema_problem(db)
        if problem:
            await db.close()
            raise SchemaOutOfDate(problem)
        await keyring.unlock(db)
        guard = TargetGuard(settings.allow_networks, enabled=settings.ssrf_guard)
        sender = Sender(guard, connections=SYNCHRONOUS_CONNECTIONS)
        await sender.open()
        validator = Validator(
            Sender(guard, connections=settings.validation_connections),
            per_group=settings.validation_per_repository,
            deadline=settings.validation_deadline,
        )
        await validator.sender.open()
        call_log = CallLog(db)
        logins = LoginGuard(
            per_user=settings.login_failures_per_user,
            per_address=settings.login_failures_per_address,
            window=settings.login_window,
            threads=settings.password_threads,
            queue=settings.password_queue,
        )
        app.state.services = Services(
            settings=settings,
            db=db,
            sender=sender,
            validator=validator,
            call_log=call_log,
            logins=logins,
        )
        worker = Worker(db, settings) if run_worker else None
        worker_task = asyncio.create_task(worker.run()) if worker else None
        try:
            async with metrics.queue_sampler(db):
                yield
        finally:
            await call_log.flush()
            if worker is not None and worker_task is not None:
                worker.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker_task, timeout=35)
            await stats.write(db)  # the overview's last second of counts
            await sender.close()
            await validator.sender.close()
            logins.close()
            await db.close()

    app = FastAPI(
        title="hookd",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # hookd's metrics are Prometheus's (/metrics); FastAPI's OpenTelemetry hooks would look
        # up providers on every request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    shapes = ErrorShapes(
        [(d.path_prefix, d.error_shape) for d in DIALECTS if d.error_shape is not None]
        + [(prefix, CONSOLE.error_shape) for prefix in CONSOLE.path_prefixes]
    )
    install_error_handlers(app, shapes)
    app.add_middleware(
        RequestLimits,
        shapes=shapes,
        max_url_bytes=settings.max_url_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=body_ceiling(settings),
    )
    # Outside even Starlette's own error middleware: every answer carries a request id, the
    # limits' refusals and a 500 too.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestObserver(build())  # type: ignore[method-assign]
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    docs.mount(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    for dialect in DIALECTS:
        app.include_router(dialect.router)
    app.include_router(CONSOLE.router)
    return app
