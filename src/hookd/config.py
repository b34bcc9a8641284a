"""Settings, read from the environment (or a `.env` file) once at start."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """`250ms`, `5s`, `2m`, `1h`, `30d` → seconds."""
    if text.strip() == "0":
        return 0.0
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text.strip()!r} is not a duration like 500ms, 5s, 2m, 1h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///path` URL; ValueError saying how to write one otherwise."""
    if not url.startswith("sqlite:///"):
        raise ValueError(
            "a SQLite URL is sqlite:/// and a path: sqlite:///./var/hookd.db for a relative one, "
            "sqlite:////srv/hookd/hookd.db for an absolute one"
        )
    path, _, options = url.removeprefix("sqlite:///").partition("?")
    if not path or path == ":memory:" or "mode=memory" in options:
        raise ValueError(
            "an in-memory SQLite store would lose every event when hookd stops; "
            "give a file, e.g. sqlite:///./var/hookd.db"
        )
    return Path(path)


# A PostgreSQL schema name that needs no quoting anywhere (search_path, SQL, URLs).
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# A publish request holds at least one event's body and the JSON around it.
_ENVELOPE_BYTES = 1024


METRICS_ACCESS = ("open", "protected")
MIN_METRICS_TOKEN = 16
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(Exception):
    """A setting is wrong; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOOKD_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///./var/hookd.db"
    # PostgreSQL: the schema that holds hookd's tables and its `publish()` function.
    database_schema: str = "public"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    admin_username: str = Field("admin", min_length=1)
    admin_password: str | None = None
    allow_targets: Annotated[tuple[str, ...], NoDecode] = ()
    retry_schedule: Annotated[tuple[float, ...], NoDecode] = (5.0, 30.0, 120.0, 600.0, 1800.0)
    secret_key: str | None = None
    # Read by `hookd rotate-key` only: the key HOOKD_SECRET_KEY's secrets are re-sealed with.
    new_secret_key: str | None = None
    relative_base_url: str | None = None

    token_ttl: Annotated[float, NoDecode] = 24 * 3600.0
    disable_after: Annotated[float, NoDecode] = 24 * 3600.0
    poll_interval: Annotated[float, NoDecode] = 1.0
    # Finished events (and their deliveries and attempts) are deleted after this; 0 keeps them.
    retention: Annotated[float, NoDecode] = 30 * 86400.0
    # How long a claimed delivery stays with its worker; must exceed the longest attempt.
    worker_lease: Annotated[float, NoDecode] = 90.0
    worker_concurrency: int = Field(128, ge=1, le=10_000)
    worker_batch_size: int = Field(200, ge=1, le=5_000)
    max_event_bytes: int = Field(1024 * 1024, ge=1024)
    ssrf_guard: bool = True
    # The most deliveries of one webhook a worker holds at once; below it, a worker's slots are
    # shared evenly among the webhooks that have deliveries due.
    webhook_concurrency: int = Field(32, ge=1, le=10_000)
    # Failed attempts in a row after which a webhook is suspended (one probe at a time); 0: never.
    suspend_after: int = Field(5, ge=0, le=1_000_000)
    # How long deliveries are signed with the previous secret too, after a rotation.
    secret_grace: Annotated[float, NoDecode] = 24 * 3600.0

    # Requests, as the server reads them (see the README's Security section).
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    max_url_bytes: int = Field(8 * 1024, ge=256, le=1024 * 1024)
    # The body of a publish request (many events), and of every other request.
    max_publish_bytes: int = Field(4 * 1024 * 1024, ge=2048)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    header_timeout: Annotated[float, NoDecode] = 10.0
    body_timeout: Annotated[float, NoDecode] = 30.0
    max_connections: int = Field(1000, ge=1, le=1_000_000)
    max_requests: int = Field(500, ge=1, le=1_000_000)

    # Logins.
    login_failures_per_user: int = Field(10, ge=1, le=1_000_000)
    login_failures_per_address: int = Field(30, ge=1, le=1_000_000)
    login_window: Annotated[float, NoDecode] = 300.0
    password_threads: int = Field(1, ge=1, le=256)
    password_queue: int = Field(16, ge=0, le=100_000)

    # Validation hooks (the repository dialect's blocking events).
    validation_connections: int = Field(100, ge=1, le=100_000)
    validation_per_repository: int = Field(10, ge=1, le=100_000)
    validation_deadline: Annotated[float, NoDecode] = 10.0

    # Operations: who may read /metrics (and a worker's metrics port), and the log lines.
    metrics: str = "protected"
    metrics_token: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(None, ge=1, le=65535)
    log_format: str = "text"
    log_level: str = "info"
    # Lines about error answers (4xx, 5xx, the server's refusals) per status and second at most.
    log_error_lines_per_second: int = Field(10, ge=0, le=1_000_000)

    @field_validator("allow_targets", mode="before")
    @classmethod
    def _parse_allow_targets(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",") if item.strip()]
        else:
            items = [str(item) for item in value or ()]  # type: ignore[attr-defined]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a CIDR such as 127.0.0.0/8") from None
        return tuple(items)

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> tuple[float, ...]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("needs at least one delay, e.g. 5s,30s,2m")
            parts = value.split(",")
            for number, part in enumerate(parts, 1):
                if not part.strip():
                    raise ValueError(
                        f"delay {number} of {len(parts)} is empty; write delays like 5s,30s,2m"
                    )
            value = [parse_duration(part) for part in parts]
        delays: tuple[float, ...] = tuple(value)  # type: ignore[arg-type]
        if any(delay <= 0 for delay in delays):
            raise ValueError("every delay must be longer than 0, e.g. 5s,30s,2m")
        return delays

    @field_validator(
        "token_ttl",
        "disable_after",
        "poll_interval",
        "worker_lease",
        "retention",
        "secret_grace",
        "header_timeout",
        "body_timeout",
        "login_window",
        "validation_deadline",
        mode="before",
    )
    @classmethod
    def _parse_durations(cls, value: object) -> float:
        if isinstance(value, str):
            return parse_duration(value)
        return float(value)  # type: ignore[arg-type]

    @field_validator("header_timeout", "body_timeout", "login_window", "validation_deadline")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0")
        return value

    @model_validator(mode="after")
    def _publish_holds_an_event(self) -> Settings:
        if self.max_publish_bytes < self.max_event_bytes + _ENVELOPE_BYTES:
            raise ValueError(
                f"max_publish_bytes: must leave room for one event of HOOKD_MAX_EVENT_BYTES "
                f"({self.max_event_bytes} + {_ENVELOPE_BYTES} bytes at least)"
            )
        return self

    @field_validator("metrics", "log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: str) -> str:
        if value not in METRICS_ACCESS:
            raise ValueError(
                "must be open (anyone may read /metrics) or protected (HOOKD_METRICS_TOKEN or "
                "an admin token)"
            )
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if len(value) < MIN_METRICS_TOKEN or not value.isascii() or not value.isprintable():
            raise ValueError(
                f"must be at least {MIN_METRICS_TOKEN} printable ASCII characters, e.g. the "
                "output of `openssl rand -hex 32`"
            )
        return value

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value not in LOG_FORMATS:
            raise ValueError("must be text or json")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value.startswith("sqlite:"):
            sqlite_path(value)
        elif not value.startswith(("postgresql:", "postgresql+asyncpg:", "postgres:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("database_schema")
    @classmethod
    def _check_database_schema(cls, value: str) -> str:
        if not SCHEMA_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a schema name hookd takes: lowercase letters, digits and _, "
                "not starting with a digit, at most 63 characters"
            )
        return value

    @field_validator("relative_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value or None

    @cached_property
    def allow_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.allow_targets]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad one raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            field = str(error["loc"][0])
        else:  # a rule of several settings names the one it is about
            field, _, message = message.partition(": ")
        raise SettingsError(f"HOOKD_{field.upper()}: {message}") from None


PREFIX = "HOOKD_"
# Read by hookd's test suite, not by hookd.
NOT_SETTINGS = frozenset(
    {
        "HOOKD_TEST_DATABASE_URL",
        "HOOKD_REQUIRE_POSTGRES",
        "HOOKD_REQUIRE_CHROMIUM",
        "HOOKD_CONSOLE_SCREENSHOTS",
    }
)


def setting_names() -> list[str]:
    return [PREFIX + name.upper() for name in Settings.model_fields]


def unknown_settings(names: Iterable[str]) -> list[str]:
    """One line for each `HOOKD_*` name that is no setting, naming the closest one if any."""
    known = [name.removeprefix(PREFIX) for name in setting_names()]
    lines = []
    for name in sorted(set(names)):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper.removeprefix(PREFIX) in known:
            continue
        if name in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), known, n=1, cutoff=0.6)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else "see the settings in README.md"
        lines.append(f"{name} is not a setting of hookd and is ignored; {hint}")
    return lines


def given_names(environ: Mapping[str, str] | None = None, env_file: str = ".env") -> list[str]:
    """The variable names of the environment and of the `.env` file, as hookd reads them."""
    names = list(os.environ if environ is None else environ)
    if Path(env_file).is_file():
        from dotenv import dotenv_values

        names.extend(dotenv_values(env_file))
    return names
