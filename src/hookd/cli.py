"""The `hookd` command."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console

from hookd import __version__
from hookd.config import Settings, SettingsError, load_settings

app = typer.Typer(
    help="hookd: a self-hosted webhook service.", no_args_is_help=True, add_completion=False
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
console = Console()
errors = Console(stderr=True)

# The collector's generation thresholds in serve and worker (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def _fail(message: str) -> typer.Exit:
    errors.print(f"hookd: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise _fail(str(exc)) from None


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _quiet_collector() -> None:
    """Freeze what start-up allocated and run the cyclic garbage collector less often.

    Measured on a worker draining 100 000 deliveries (bench/drain.py): with the collector off it
    used a quarter less CPU; most of the collector's work was re-scanning imported modules.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _version(value: bool) -> None:
    if value:
        console.print(f"hookd {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass


def _prepare(settings: Settings, *, first_start: bool) -> None:
    from hookd.startup import StartupError, prepare_store

    try:
        admin = asyncio.run(prepare_store(settings, first_start=first_start))
    except StartupError as exc:
        raise _fail(str(exc)) from None
    if admin is not None:
        if admin.generated_password:
            console.print(
                f"Created the first admin [bold]{admin.username}[/] with the password "
                f"[bold]{admin.generated_password}[/] (shown only this once).",
                soft_wrap=True,
            )
        else:
            console.print(f"Created the first admin [bold]{admin.username}[/].")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [HOOKD_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [HOOKD_PORT].")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API only; deliver nothing.")
    ] = False,
) -> None:
    """Serve the HTTP API and the embedded delivery worker."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = _settings(**overrides)

    import uvicorn

    from hookd.app import create_app

    _prepare(settings, first_start=True)
    _logging()
    console.print(f"hookd {__version__} serving on http://{settings.host}:{settings.port}")
    application = create_app(settings, run_worker=not no_worker)
    _quiet_collector()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if "uvloop" in sys.modules or _has_uvloop() else "asyncio",
        http="httptools",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=40,
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


@app.command()
def worker() -> None:
    """Run a delivery worker alone (any number may share one PostgreSQL database)."""
    from hookd.delivery.worker import Worker
    from hookd.store import stats
    from hookd.store.database import Database

    settings = _settings()
    _prepare(settings, first_start=False)
    _logging()

    async def run() -> None:
        db = Database(settings.database_url, secret_key=settings.secret_key)
        delivery_worker = Worker(db, settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, delivery_worker.stop)
        try:
            await delivery_worker.run()
        finally:
            await stats.write(db)  # the overview's last second of counts
            await db.close()

    _use_uvloop()
    _quiet_collector()
    console.print(f"hookd {__version__} worker started")
    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Bring the store's schema up to date."""
    from hookd.store import migrate as migrations
    from hookd.store.database import Database

    settings = _settings()

    async def run() -> tuple[str | None, str | None]:
        db = Database(settings.database_url, pool_size=1)
        try:
            before = await migrations.current_revision(db)
            await migrations.upgrade(db)
            return before, await migrations.current_revision(db)
        finally:
            await db.close()

    try:
        before, after = asyncio.run(run())
    except Exception as exc:
        raise _fail(f"migration failed: {exc}") from None
    if before == after:
        console.print(f"The schema is up to date ({after}).")
    else:
        console.print(f"Migrated the schema from {before or 'nothing'} to {after}.")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The username.")],
    role: Annotated[str, typer.Option(help="admin or user.")] = "user",
    password: Annotated[
        str | None, typer.Option(help="The password; prompted for when not given.")
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate a password and print it.")
    ] = False,
) -> None:
    """Create a user."""
    from hookd.domain.credentials import ROLES, generate_password, hash_password
    from hookd.store import accounts
    from hookd.store.database import Database

    if role not in ROLES:
        raise _fail(f"--role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 150:
        raise _fail("the username must be 1 to 150 characters")
    settings = _settings()
    _prepare(settings, first_start=False)
    shown = None
    if password is None:
        if generate or not sys.stdin.isatty():
            password = shown = generate_password()
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise _fail("the password must not be empty")

    async def run() -> None:
        db = Database(settings.database_url, pool_size=1)
        try:
            await accounts.create_user(db, name, hash_password(password), role)
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except accounts.UsernameTaken:
        raise _fail(f"a user named {name!r} exists already") from None
    console.print(f"Created {role} [bold]{name}[/].", highlight=False)
    if shown:
        console.print(f"Password: [bold]{shown}[/] (shown only this once)")


@app.command()
def listen(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    secret: Annotated[
        str | None, typer.Option(help="The webhook's secret, to verify signatures.")
    ] = None,
) -> None:
    """A local receiver for trying hookd out: prints each delivery and checks its signature."""
    from hookd.domain.signing import signing_key
    from hookd.listen import run_listener

    if secret is not None:
        try:
            signing_key(secret)
        except ValueError as exc:
            raise _fail(f"--secret: {exc}") from None
    console.print(f"Listening on http://{host}:{port}/ (Ctrl-C to stop)")
    run_listener(host=host, port=port, secret=secret)


def main() -> None:
    app()
