"""Settings: durations, the retry schedule, allowed targets, and errors that name the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hookd.config import (
    Settings,
    SettingsError,
    given_names,
    load_settings,
    parse_duration,
    setting_names,
    unknown_settings,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HOOKD_* variable of the caller and no .env file of the working directory leak in."""
    for name in list(os.environ):
        if name.startswith("HOOKD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1ms", 0.001),
        ("5s", 5.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("24h", 86400.0),
        ("0", 0.0),
        (" 30s ", 30.0),
        ("10 s", 10.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", " ", "5", "s", "5x", "-5s", "5 sec", "1w", "5s5s", "ms", "1e3s", "5s,", "five s"]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///./var/hookd.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.admin_username, settings.admin_password) == ("admin", None)
    assert settings.allow_targets == ()
    assert settings.retry_schedule == (5.0, 30.0, 120.0, 600.0, 1800.0)
    assert settings.secret_key is None
    assert settings.relative_base_url is None
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("text", "schedule"),
    [
        ("5s,30s,2m,10m,30m", (5.0, 30.0, 120.0, 600.0, 1800.0)),
        ("250ms,1h", (0.25, 3600.0)),
        (" 5s , 1m ", (5.0, 60.0)),
        ("50ms", (0.05,)),
    ],
)
def test_retry_schedule(monkeypatch: pytest.MonkeyPatch, text: str, schedule: tuple[float]) -> None:
    assert load_settings(retry_schedule=text).retry_schedule == pytest.approx(schedule)
    monkeypatch.setenv("HOOKD_RETRY_SCHEDULE", text)
    assert load_settings().retry_schedule == pytest.approx(schedule)


def test_durations_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKD_TOKEN_TTL", "2h")
    assert load_settings().token_ttl == 7200.0
    monkeypatch.setenv("HOOKD_TOKEN_TTL", "500ms")
    assert load_settings().token_ttl == 0.5


def test_allow_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKD_ALLOW_TARGETS", "127.0.0.0/8, ::1/128,10.1.2.3")
    settings = load_settings()
    assert settings.allow_targets == ("127.0.0.0/8", "::1/128", "10.1.2.3")
    assert [str(network) for network in settings.allow_networks] == [
        "127.0.0.0/8",
        "::1/128",
        "10.1.2.3/32",
    ]


@pytest.mark.parametrize(
    "url",
    ["sqlite:///./x.db", "sqlite:////tmp/x.db", "postgresql://u@127.0.0.1/db", "postgres://h/db"],
)
def test_database_urls_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HOOKD_DATABASE_URL", url)
    assert load_settings().database_url == url


BAD = [
    ("HOOKD_PORT", "abc"),
    ("HOOKD_PORT", "0"),
    ("HOOKD_PORT", "65536"),
    ("HOOKD_RETRY_SCHEDULE", "5x"),
    ("HOOKD_RETRY_SCHEDULE", ""),
    ("HOOKD_RETRY_SCHEDULE", "5s,soon"),
    ("HOOKD_RETRY_SCHEDULE", "5s,,1m"),
    ("HOOKD_RETRY_SCHEDULE", "5s,1m,"),
    ("HOOKD_RETRY_SCHEDULE", "0s"),
    ("HOOKD_RETRY_SCHEDULE", "5s,0"),
    ("HOOKD_ALLOW_TARGETS", "nonsense"),
    ("HOOKD_ALLOW_TARGETS", "127.0.0.0/8,300.0.0.0/8"),
    ("HOOKD_DATABASE_URL", "mysql://x"),
    ("HOOKD_DATABASE_URL", "hookd.db"),
    ("HOOKD_DATABASE_URL", "sqlite://./var/x.db"),
    ("HOOKD_DATABASE_URL", "sqlite:///:memory:"),
    ("HOOKD_DATABASE_URL", "sqlite://"),
    ("HOOKD_DATABASE_URL", "sqlite:///file:x?mode=memory&uri=true"),
    ("HOOKD_TOKEN_TTL", "forever"),
    ("HOOKD_RELATIVE_BASE_URL", "ftp://files.example"),
    ("HOOKD_ADMIN_USERNAME", ""),
    ("HOOKD_SSRF_GUARD", "maybe"),
    ("HOOKD_DATABASE_SCHEMA", ""),
    ("HOOKD_DATABASE_SCHEMA", "Hookd"),
    ("HOOKD_DATABASE_SCHEMA", "hookd; DROP TABLE x"),
    ("HOOKD_DATABASE_SCHEMA", "1hookd"),
    ("HOOKD_DATABASE_SCHEMA", "h" * 64),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert message.removeprefix(f"{variable}: ").strip()
    assert "\n" not in message


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_bad_override_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        load_settings(**{variable.removeprefix("HOOKD_").lower(): value})


def test_database_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().database_schema == "public"
    monkeypatch.setenv("HOOKD_DATABASE_SCHEMA", "hookd_2")
    assert load_settings().database_schema == "hookd_2"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HOOKD_PORT=9123\nHOOKD_RETRY_SCHEDULE=1s,2s\n")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.retry_schedule == (1.0, 2.0)
    monkeypatch.setenv("HOOKD_PORT", "9124")
    assert load_settings().port == 9124, "the environment wins over .env"


def test_dotenv_bad_value_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HOOKD_ALLOW_TARGETS=nonsense\n")
    with pytest.raises(SettingsError, match=r"^HOOKD_ALLOW_TARGETS: "):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception):  # noqa: B017 (pydantic's ValidationError)
        settings.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("5s,,1m", "delay 2 of 3 is empty; write delays like 5s,30s,2m"),
        ("0s", "every delay must be longer than 0"),
    ],
)
def test_retry_schedule_refusals_say_what_to_write(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(retry_schedule=value)
    assert str(raised.value).startswith(f"HOOKD_RETRY_SCHEDULE: {says}")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://./var/x.db", "sqlite:///./var/hookd.db for a relative one"),
        ("sqlite:///:memory:", "an in-memory SQLite store would lose every event"),
    ],
)
def test_sqlite_url_refusals_say_how_to_write_one(url: str, says: str) -> None:
    with pytest.raises(SettingsError, match=r"^HOOKD_DATABASE_URL: ") as raised:
        load_settings(database_url=url)
    assert says in str(raised.value)


def test_unknown_settings_are_named_with_the_closest_known_one() -> None:
    lines = unknown_settings(
        ["PATH", "HOOKD_PORT", "HOOKD_PROT", "HOOKD_ALLOW_TARGET", "HOOKD_COLOUR_SCHEME"]
    )
    assert lines == [
        "HOOKD_ALLOW_TARGET is not a setting of hookd and is ignored; "
        "did you mean HOOKD_ALLOW_TARGETS?",
        "HOOKD_COLOUR_SCHEME is not a setting of hookd and is ignored; "
        "see the settings in README.md",
        "HOOKD_PROT is not a setting of hookd and is ignored; did you mean HOOKD_PORT?",
    ]


def test_every_setting_is_known() -> None:
    assert unknown_settings(setting_names()) == []
    assert "HOOKD_DATABASE_URL" in setting_names()


def test_given_names_include_the_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HOOKD_PROT=9123\n")
    assert "HOOKD_PROT" in given_names({"PATH": "/bin"})
    assert "PATH" in given_names({"PATH": "/bin"})
