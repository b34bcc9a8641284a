"""The `hookd` command."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import IO, TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from typer.core import TyperCommand

from hookd import __version__
from hookd.config import Settings, SettingsError, given_names, load_settings, unknown_settings

if TYPE_CHECKING:
    from hookd.store.database import Database


class _Command(TyperCommand):
    """A command whose usage line names its arguments plainly (`add [OPTIONS] NAME`)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(param.metavar or (param.name or "").upper())
        return pieces


UserName = Annotated[str, typer.Argument(help="The username.", metavar="NAME")]

# Plain help (no rich panels): those show every flag as `<bool>`.
app = typer.Typer(
    help="hookd: a self-hosted webhook service.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(user_app, name="user")
console = Console()
errors = Console(stderr=True)

# The collector's generation thresholds in serve and worker (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def _fail(message: str) -> typer.Exit:
    errors.print(f"hookd: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _warn(message: str) -> None:
    errors.print(f"hookd: {message}", markup=False, highlight=False, soft_wrap=True)


def _settings(**overrides: object) -> Settings:
    """The settings, after a line for each HOOKD_* variable that is no setting; the store's
    directory checked (and the default one created)."""
    from hookd.startup import StartupError, store_directory

    for line in unknown_settings(given_names()):
        _warn(line)
    try:
        settings = load_settings(**overrides)
        store_directory(settings)
    except (SettingsError, StartupError) as exc:
        raise _fail(str(exc)) from None
    return settings


def _lock_store(settings: Settings, command: str) -> IO[str] | None:
    from hookd.startup import StartupError, lock_store

    try:
        return lock_store(settings, command)
    except StartupError as exc:
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


def _logging(settings: Settings) -> None:
    from hookd import logs

    logs.configure(settings)


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
        prepared = asyncio.run(prepare_store(settings, first_start=first_start))
    except StartupError as exc:
        raise _fail(str(exc)) from None
    for notice in prepared.notices:
        _warn(notice)
    admin = prepared.admin
    if admin is not None:
        if admin.generated_password:
            console.print(
                f"Created the first admin [bold]{admin.username}[/] with the password "
                f"[bold]{admin.generated_password}[/] (shown only this once).",
                soft_wrap=True,
            )
        else:
            console.print(f"Created the first admin [bold]{admin.username}[/].")


@app.command(cls=_Command)
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
    from hookd.http.server import ServerLimits, protocol
    from hookd.listening import CannotListen, bind

    lock = _lock_store(settings, "serve")
    try:
        # Bound before anything is announced: a port in use is one line, not a start-up
        # followed by a failure.
        sock = bind(settings.host, settings.port, "another --port or HOOKD_PORT")
    except CannotListen as exc:
        raise _fail(str(exc)) from None
    _prepare(settings, first_start=True)
    _logging(settings)
    console.print(f"hookd {__version__} serving on http://{settings.host}:{settings.port}")
    application = create_app(settings, run_worker=not no_worker)
    _quiet_collector()
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if "uvloop" in sys.modules or _has_uvloop() else "asyncio",
        # httptools within hookd's limits on heads, bodies, deadlines and connections.
        http=protocol(ServerLimits.of(settings)),
        ws="none",
        # A client's address is the connection's: X-Forwarded-For is anyone's to write.
        proxy_headers=False,
        access_log=False,
        log_config=None,  # hookd's own logging (HOOKD_LOG_FORMAT)
        log_level="info",
        timeout_graceful_shutdown=40,
    )
    uvicorn.Server(config).run(sockets=[sock])
    del lock  # held until here


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


@app.command(cls=_Command)
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's Prometheus metrics at /metrics on this port "
            "[HOOKD_METRICS_PORT]; none by default.",
            min=1,
            max=65535,
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(help="The metrics port's address [HOOKD_METRICS_HOST, 127.0.0.1]."),
    ] = None,
) -> None:
    """Run a delivery worker alone (any number may share one PostgreSQL database)."""
    from hookd.delivery import metrics
    from hookd.delivery.scrape import serve_metrics
    from hookd.delivery.worker import Worker
    from hookd.listening import CannotListen, cannot_listen
    from hookd.store import keyring, stats
    from hookd.store.database import Database

    overrides: dict[str, object] = {}
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    if metrics_host is not None:
        overrides["metrics_host"] = metrics_host
    settings = _settings(**overrides)
    lock = _lock_store(settings, "worker")
    _prepare(settings, first_start=False)
    _logging(settings)

    async def run() -> None:
        db = Database(
            settings.database_url, schema=settings.database_schema, secret_key=settings.secret_key
        )
        exposed = None
        try:
            if settings.metrics_port is not None:
                host, port = settings.metrics_host, settings.metrics_port
                try:
                    exposed = await serve_metrics(settings, db, host, port)
                except OSError as exc:
                    raise CannotListen(
                        cannot_listen(host, port, exc, "another --metrics-port")
                    ) from None
                console.print(f"metrics on http://{host}:{port}/metrics", highlight=False)
            await keyring.unlock(db)
            delivery_worker = Worker(db, settings)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, delivery_worker.stop)
            try:
                async with metrics.queue_sampler(db):
                    await delivery_worker.run()
            finally:
                await stats.write(db)  # the overview's last second of counts
        finally:
            if exposed is not None:
                await exposed.cleanup()
            await db.close()

    _use_uvloop()
    _quiet_collector()
    console.print(f"hookd {__version__} worker started")
    try:
        asyncio.run(run())
    except CannotListen as exc:
        raise _fail(str(exc)) from None
    del lock  # held until here


@app.command(cls=_Command)
def migrate() -> None:
    """Bring the store's schema up to date."""
    from hookd.store import migrate as migrations
    from hookd.store.database import Database

    settings = _settings()

    async def run() -> tuple[str | None, str | None]:
        db = Database(settings.database_url, schema=settings.database_schema, pool_size=1)
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


@user_app.command("add", cls=_Command)
def user_add(
    name: UserName,
    role: Annotated[str, typer.Option(help="admin or user.")] = "user",
    password: Annotated[
        str | None,
        typer.Option(
            help="The password (other users of the machine can see it in the process list: "
            "prefer the prompt or --password-stdin); prompted for when not given."
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
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
    if password is not None and password_stdin:
        raise _fail("give --password or --password-stdin, not both")
    given_in_the_open = password is not None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
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
        db = Database(settings.database_url, schema=settings.database_schema, pool_size=1)
        try:
            await accounts.create_user(db, name, hash_password(password), role)
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except accounts.UsernameTaken:
        raise _fail(f"a user named {name!r} exists already") from None
    console.print(f"Created {role} [bold]{name}[/].", highlight=False)
    if given_in_the_open:
        errors.print(
            "hookd: warning: a password given with --password can be read by other users of "
            "this machine in the process list; prefer the prompt or --password-stdin",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if shown:
        console.print(f"Password: [bold]{shown}[/] (shown only this once)")


@app.command(cls=_Command)
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
    from hookd.listening import CannotListen

    if secret is not None:
        try:
            signing_key(secret)
        except ValueError as exc:
            raise _fail(f"--secret: {exc}") from None
    try:
        run_listener(host=host, port=port, secret=secret)
    except CannotListen as exc:
        raise _fail(str(exc)) from None


T = TypeVar("T")


def _on_store(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` with the store open (its schema checked first)."""
    _prepare(settings, first_start=False)

    from hookd.store.database import Database

    async def run() -> T:
        db = Database(
            settings.database_url,
            schema=settings.database_schema,
            pool_size=1,
            secret_key=settings.secret_key,
        )
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _when(timestamp: int | None) -> str:
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


@user_app.command("list", cls=_Command)
def user_list() -> None:
    """List the users, their roles and whether they are disabled."""
    from hookd.store import accounts

    found = _on_store(_settings(), accounts.list_accounts)
    table = Table("user", "role", "created", "disabled since", box=box.SIMPLE_HEAD)
    for account in found:
        table.add_row(
            account.username, account.role, _when(account.created_at), _when(account.disabled_at)
        )
    console.print(table)


def _account_change(name: str, change: Callable[[Database], Awaitable[bool]]) -> None:
    from hookd.store import accounts

    try:
        found = _on_store(_settings(), change)
    except accounts.LastAdmin:
        raise _fail(
            f"{name!r} is the last enabled admin: add or enable another admin first"
        ) from None
    if not found:
        raise _fail(f"there is no user named {name!r} (hookd user list shows them)")


@user_app.command("disable", cls=_Command)
def user_disable(
    name: UserName,
) -> None:
    """Disable a user: its tokens are revoked and it cannot log in until enabled again."""
    from hookd.store import accounts

    _account_change(name, lambda db: accounts.set_disabled(db, name, True))
    console.print(f"Disabled [bold]{name}[/]; its sessions are logged out.", highlight=False)


@user_app.command("enable", cls=_Command)
def user_enable(name: UserName) -> None:
    """Enable a disabled user again."""
    from hookd.store import accounts

    _account_change(name, lambda db: accounts.set_disabled(db, name, False))
    console.print(f"Enabled [bold]{name}[/].", highlight=False)


@user_app.command("delete", cls=_Command)
def user_delete(
    name: UserName,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user and its tokens."""
    from hookd.store import accounts

    if not yes and sys.stdin.isatty():
        typer.confirm(f"Delete the user {name!r}?", abort=True)
    _account_change(name, lambda db: accounts.delete_user(db, name))
    console.print(f"Deleted [bold]{name}[/].", highlight=False)


@user_app.command("set-password", cls=_Command)
def user_set_password(
    name: UserName,
) -> None:
    """Set a user's password, read from a prompt (or from standard input when it is not a
    terminal: the first line); the user's sessions are logged out."""
    from hookd.domain.credentials import hash_password
    from hookd.store import accounts

    if sys.stdin.isatty():
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise _fail("the password must not be empty")
    _account_change(name, lambda db: accounts.set_password(db, name, hash_password(password)))
    console.print(f"Changed the password of [bold]{name}[/].", highlight=False)


@app.command(cls=_Command)
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(help="Prune what finished before this long ago [HOOKD_RETENTION]."),
    ] = None,
) -> None:
    """Delete finished events (with their deliveries and attempts) past the retention, now."""
    from hookd.config import parse_duration
    from hookd.store.retention import prune_finished

    settings = _settings()
    try:
        keep = settings.retention if older_than is None else parse_duration(older_than)
    except ValueError as exc:
        raise _fail(f"--older-than: {exc}") from None
    if keep <= 0:
        console.print("HOOKD_RETENTION is 0: finished events are kept; nothing was pruned.")
        return
    cutoff = time.time() - keep

    async def run(db: Database) -> int:
        pruned = 0
        with Progress(
            TextColumn("pruning finished events"), TextColumn("{task.completed:,}"), console=console
        ) as progress:
            task = progress.add_task("prune", total=None)
            while done := await prune_finished(db, cutoff):
                pruned += done
                progress.update(task, completed=pruned)
        return pruned

    pruned = _on_store(settings, run)
    console.print(
        f"Pruned {pruned:,} finished events older than {older_than or 'HOOKD_RETENTION'}."
    )


@app.command("rotate-key", cls=_Command)
def rotate_key(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows re-sealed per transaction.")] = 500,
    pause: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait between batches, to spare the store.")
    ] = 0.0,
) -> None:
    """Re-seal every stored secret from HOOKD_SECRET_KEY to HOOKD_NEW_SECRET_KEY (and seal
    those stored in clear); resumable: run it again after an interruption. Stop every hookd
    process first; afterwards run them with HOOKD_SECRET_KEY set to the new key."""
    from hookd.store import migrate as migrations
    from hookd.store.database import Database
    from hookd.store.rotation import Rotated, RotationError, rotate, rows_to_read

    settings = _settings()
    new_key = settings.new_secret_key
    if not new_key:
        raise _fail("HOOKD_NEW_SECRET_KEY: set it to the new key to re-seal the secrets with")
    if new_key == settings.secret_key:
        raise _fail("HOOKD_NEW_SECRET_KEY: it is HOOKD_SECRET_KEY already; nothing to rotate")
    lock = _lock_store(settings, "rotate-key")

    async def run() -> Rotated:
        db = Database(settings.database_url, pool_size=1, secret_key=settings.secret_key)
        try:
            problem = await migrations.schema_problem(db)
            if problem:
                raise RotationError(problem)
            total = await rows_to_read(db)
            with Progress(
                TextColumn("re-sealing secrets"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} rows"),
                console=console,
            ) as progress:
                task = progress.add_task("rotate", total=total)
                return await rotate(
                    db,
                    new_key,
                    batch_size=batch_size,
                    pause=pause,
                    progress=lambda done: progress.update(task, completed=done.rows),
                )
        finally:
            await db.close()

    try:
        done = asyncio.run(run())
    except RotationError as exc:
        raise _fail(str(exc)) from None
    del lock
    console.print(
        f"Re-sealed {done.resealed:,} secrets with the new key ({done.kept:,} were already); "
        "run hookd with HOOKD_SECRET_KEY set to the new key from now on.",
        highlight=False,
    )


# `hookd status` shows the last hour's deliveries in spans of this many minutes.
STATUS_SPAN_MINUTES = 5


@app.command(cls=_Command)
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """The queue by state, deliveries per minute over the last hour, and the webhooks that are
    failing, suspended or disabled."""
    import orjson

    from hookd.store.status import status as read_status

    now = time.time()
    found = _on_store(_settings(), lambda db: read_status(db, now))
    if as_json:
        document = {
            "queue": found.queue,
            "oldest_due_age_seconds": None
            if found.oldest_due is None
            else round(max(now - found.oldest_due, 0.0), 3),
            "minutes": [
                {
                    "minute": span.start * 60,
                    "attempts": span.attempts,
                    "answered_2xx": span.succeeded,
                    "exhausted": span.exhausted,
                }
                for span in found.minutes
            ],
            "failing_webhooks": [_webhook_json(line) for line in found.failing],
            "disabled_webhooks": [_webhook_json(line) for line in found.disabled],
        }
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    queue = Table("state", "deliveries", title="Queue", box=box.SIMPLE_HEAD)
    for state, count in found.queue.items():
        queue.add_row(state, f"{count:,}")
    queue.add_row("oldest due", _age(now, found.oldest_due))
    console.print(queue)
    per_minute = Table(
        "minutes", "attempts/min", "2xx/min", "exhausted", title="Last hour", box=box.SIMPLE_HEAD
    )
    spans = found.minutes
    for start in range(0, len(spans), STATUS_SPAN_MINUTES):
        chunk = spans[start : start + STATUS_SPAN_MINUTES]
        attempts = sum(span.attempts for span in chunk)
        succeeded = sum(span.succeeded for span in chunk)
        per_minute.add_row(
            f"{time.strftime('%H:%M', time.localtime(chunk[0].start * 60))}"
            f"-{time.strftime('%H:%M', time.localtime((chunk[-1].start + 1) * 60))}",
            f"{attempts / len(chunk):,.1f}",
            f"{succeeded / len(chunk):,.1f}",
            f"{sum(span.exhausted for span in chunk):,}",
        )
    console.print(per_minute)
    failing = Table(
        "uid", "url", "failures in a row", "failing since", "suspended",
        title="Failing webhooks", box=box.SIMPLE_HEAD,
    )  # fmt: skip
    for line in found.failing:
        failing.add_row(
            str(line.uid),
            line.url,
            str(line.failures),
            _when(None if line.failing_since is None else int(line.failing_since)),
            "yes" if line.suspended else "",
        )
    console.print(failing if found.failing else "No failing webhooks.")
    disabled = Table(
        "uid", "url", "since", "reason", title="Disabled webhooks", box=box.SIMPLE_HEAD
    )
    for line in found.disabled:
        disabled.add_row(str(line.uid), line.url, _when(line.updated_at), line.reason or "")
    console.print(disabled if found.disabled else "No disabled webhooks.")


def _age(now: float, since: float | None) -> str:
    return "-" if since is None else f"{max(now - since, 0.0):,.1f}s ago"


def _webhook_json(line: Any) -> dict[str, Any]:
    return {
        "uid": line.uid,
        "dialect": line.dialect,
        "url": line.url,
        "failures": line.failures,
        "failing_since": line.failing_since,
        "suspended": line.suspended,
        "disabled_reason": line.reason,
        "updated_at": line.updated_at,
    }


def main() -> None:
    app()
