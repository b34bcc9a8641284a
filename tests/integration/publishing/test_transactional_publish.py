"""Publishing inside the producer's own transaction: `hookd.publish` and SQL `publish()`.

A real worker (in-process) delivers to a real receiver on 127.0.0.1. On PostgreSQL the worker
polls once an hour, so a delivery that arrives was woken by the NOTIFY of the producer's commit.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook as StandardWebhook

import hookd
from hookd.config import load_settings
from hookd.domain.errors import InvalidField, TooLarge
from hookd.publishing import Draft, idempotency_key
from support import POSTGRES_URL, Api, Receiver, migrated_store_url, running_api

EVENT = "log.door_was_opened"
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PG_KINDS = ["sqlalchemy", "sqlalchemy-async", "psycopg", "psycopg-async", "asyncpg", "asyncpg-pool"]
SQLITE_KINDS = ["sqlite3", "sqlalchemy", "sqlalchemy-async"]


def driver_url(url: str, driver: str) -> str:
    return make_url(url).set(drivername=driver).render_as_string(hide_password=False)


def sqlite_file(url: str) -> str:
    return url.removeprefix("sqlite:///")


async def produce(
    kind: str, url: str, order: int, events: list[dict[str, Any]], *, commit: bool
) -> list[str]:
    """In one transaction on a `kind` connection: insert order `order`, publish `events`, then
    commit or roll back."""
    insert = f"INSERT INTO orders (id) VALUES ({int(order)})"
    sqlite = url.startswith("sqlite")
    if kind == "sqlite3":
        conn = sqlite3.connect(sqlite_file(url), timeout=10)
        try:
            conn.execute(insert)
            ids = hookd.publish(conn, events)
            conn.commit() if commit else conn.rollback()
        finally:
            conn.close()
        return ids
    if kind == "sqlalchemy":
        engine = create_engine(url if sqlite else driver_url(url, "postgresql+psycopg"))
        try:
            with engine.connect() as sync_conn:
                sync_conn.exec_driver_sql(insert)
                ids = hookd.publish(sync_conn, events)
                sync_conn.commit() if commit else sync_conn.rollback()
        finally:
            engine.dispose()
        return ids
    if kind == "sqlalchemy-async":
        engine_url = driver_url(url, "sqlite+aiosqlite" if sqlite else "postgresql+asyncpg")
        async_engine = create_async_engine(engine_url)
        try:
            async with async_engine.connect() as async_conn:
                await async_conn.exec_driver_sql(insert)
                ids = await hookd.publish(async_conn, events)
                await (async_conn.commit() if commit else async_conn.rollback())
        finally:
            await async_engine.dispose()
        return ids
    if kind == "psycopg":
        with psycopg.connect(url) as pg_conn:
            pg_conn.execute(insert)
            ids = hookd.publish(pg_conn, events)
            pg_conn.commit() if commit else pg_conn.rollback()
        return ids
    if kind == "psycopg-async":
        async with await psycopg.AsyncConnection.connect(url) as apg_conn:
            await apg_conn.execute(insert)
            ids = await hookd.publish(apg_conn, events)
            await (apg_conn.commit() if commit else apg_conn.rollback())
        return ids
    if kind == "asyncpg-pool":
        async with (
            asyncpg.create_pool(url, min_size=1, max_size=1) as pool,
            pool.acquire() as pooled,
        ):
            return await asyncpg_transaction(pooled, insert, events, commit)
    assert kind == "asyncpg"
    raw = await asyncpg.connect(url)
    try:
        return await asyncpg_transaction(raw, insert, events, commit)
    finally:
        await raw.close()


async def asyncpg_transaction(
    conn: Any, insert: str, events: list[dict[str, Any]], commit: bool
) -> list[str]:
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(insert)
    ids: list[str] = await hookd.publish(conn, events)
    await (transaction.commit() if commit else transaction.rollback())
    return ids


async def sql(url: str, statement: str, *args: Any) -> list[Any]:
    """Run one statement on its own (asyncpg, autocommit) and return its rows."""
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def orders_table(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_file(url)) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
        conn.close()
    else:
        await sql(url, "DROP TABLE IF EXISTS orders CASCADE")
        await sql(url, "CREATE TABLE orders (id bigint PRIMARY KEY)")


def received_ids(receiver: Receiver) -> list[str]:
    return sorted(request.headers["webhook-id"] for request in receiver.requests)


async def settle(api: Api, receiver: Receiver, already: int) -> None:
    """Publish a last event over HTTP and wait for it, then a little longer: whatever was
    queued before it has had its chance to arrive."""
    await api.publish({"type": EVENT, "id": "last"})
    await receiver.wait_for(already + 1, timeout=15)
    await asyncio.sleep(0.5)


@pytest.fixture(autouse=True)
async def _no_orders_left() -> AsyncIterator[None]:
    """The test database holds hookd's tables alone once a test is done (as other tests check)."""
    yield
    if POSTGRES_URL:
        await sql(POSTGRES_URL, "DROP TABLE IF EXISTS orders CASCADE")
        await sql(POSTGRES_URL, "DROP FUNCTION IF EXISTS orders_publish()")


@pytest.fixture
async def pg_api(postgres_url: str) -> AsyncIterator[Api]:
    settings = load_settings(
        database_url=postgres_url,
        allow_targets="127.0.0.0/8",
        poll_interval="1h",
        admin_password="admin-password-1",
    )
    async with running_api(settings, run_worker=True) as running:
        await orders_table(postgres_url)
        await asyncio.sleep(1.0)  # the worker is idle and listening
        yield running


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> AsyncIterator[Api]:
    url = await migrated_store_url("sqlite", tmp_path)
    settings = load_settings(
        database_url=url,
        allow_targets="127.0.0.0/8",
        poll_interval="200ms",
        admin_password="admin-password-1",
    )
    async with running_api(settings, run_worker=True) as running:
        await orders_table(url)
        yield running


async def commit_and_roll_back(kind: str, api: Api, receiver: Receiver) -> None:
    url = api.settings.database_url
    await api.create_webhook(url=receiver.url(), secret=SECRET)
    rolled_back = [{"type": EVENT, "id": "rolled-back", "data": {"order": 1}}]
    assert await produce(kind, url, 1, rolled_back, commit=False) == ["rolled-back"]
    committed = [{"type": EVENT, "id": "committed", "data": {"order": 2}}, {"type": EVENT}]
    ids = await produce(kind, url, 2, committed, commit=True)
    assert ids[0] == "committed" and ids[1].startswith("evt_")

    await receiver.wait_for(2, timeout=15)
    # Before anything else wakes the worker: PostgreSQL's NOTIFY at commit, SQLite's poll.
    assert received_ids(receiver) == sorted(["committed", ids[1]])
    await settle(api, receiver, 2)
    assert received_ids(receiver) == sorted(["committed", ids[1], "last"])
    for request in receiver.requests:
        headers = {name.lower(): value for name, value in request.headers.items()}
        StandardWebhook(SECRET).verify(request.body, headers)


@pytest.mark.parametrize("kind", PG_KINDS)
async def test_postgres_events_commit_and_roll_back_with_the_producer(
    kind: str, pg_api: Api, receiver: Receiver
) -> None:
    await commit_and_roll_back(kind, pg_api, receiver)
    url = pg_api.settings.database_url
    assert [row["id"] for row in await sql(url, "SELECT id FROM orders")] == [2]
    stored = await sql(url, "SELECT id FROM events ORDER BY seq")
    assert "rolled-back" not in [row["id"] for row in stored]


@pytest.mark.parametrize("kind", SQLITE_KINDS)
async def test_sqlite_events_commit_and_roll_back_with_the_producer(
    kind: str, sqlite_api: Api, receiver: Receiver
) -> None:
    await commit_and_roll_back(kind, sqlite_api, receiver)
    with sqlite3.connect(sqlite_file(sqlite_api.settings.database_url)) as conn:
        assert conn.execute("SELECT id FROM orders").fetchall() == [(2,)]
        events = [row[0] for row in conn.execute("SELECT id FROM events")]
    conn.close()
    assert "rolled-back" not in events


async def test_the_sql_function_commits_and_rolls_back_with_the_caller(
    pg_api: Api, receiver: Receiver
) -> None:
    url = pg_api.settings.database_url
    await pg_api.create_webhook(url=receiver.url(), secret=SECRET)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET search_path = pg_catalog")  # the function finds its own tables
        async with conn.transaction():
            await conn.execute("INSERT INTO public.orders (id) VALUES (1)")
            await conn.fetchval(f"SELECT public.publish('{EVENT}', '{{\"n\": 1}}', 'sql-1')")
            await conn.execute("SELECT 1/0")  # the producer's transaction fails after publishing
    except asyncpg.DivisionByZeroError:
        pass
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO public.orders (id) VALUES (2)")
            published = await conn.fetchval(
                "SELECT public.publish($1, $2::jsonb, $3)", EVENT, '{"n": 2}', "sql-2"
            )
            generated = await conn.fetchval(f"SELECT public.publish('{EVENT}', NULL)")
    finally:
        await conn.close()
    assert published == "sql-2" and generated.startswith("evt_")

    await receiver.wait_for(2, timeout=15)
    assert received_ids(receiver) == sorted(["sql-2", generated])  # woken by the commit
    await settle(pg_api, receiver, 2)
    assert received_ids(receiver) == sorted(["sql-2", generated, "last"])


async def test_a_producer_transaction_held_open_delays_nothing_else(
    pg_api: Api, receiver: Receiver
) -> None:
    url = pg_api.settings.database_url
    await pg_api.create_webhook(url=receiver.url(), secret=SECRET)
    conn = await asyncpg.connect(url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        opened = time.monotonic()
        await conn.execute("INSERT INTO orders (id) VALUES (1)")
        await hookd.publish(conn, [{"type": EVENT, "id": "held"}])
        await pg_api.publish({"type": EVENT, "id": "over-http"})
        await receiver.wait_for(1, timeout=30)  # the transaction is open all along
        received_while_open = received_ids(receiver)
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - opened)))
        await transaction.commit()
    finally:
        await conn.close()
    assert received_while_open == ["over-http"]
    await receiver.wait_for(2, timeout=15)
    assert received_ids(receiver) == ["held", "over-http"]


async def test_an_sql_published_body_is_an_http_published_one(
    pg_api: Api, receiver: Receiver
) -> None:
    url = pg_api.settings.database_url
    await pg_api.create_webhook(url=receiver.url(), secret=SECRET)
    data = {"door": "front", "n": 3, "nested": {"list": [1, 2.5, None, True]}, "text": 'é"\\'}
    await pg_api.publish({"type": EVENT, "id": "over-http", "data": data})
    await sql(
        url, "SELECT publish($1, $2::jsonb, $3)", EVENT, orjson.dumps(data).decode(), "in-sql"
    )
    await receiver.wait_for(2, timeout=15)

    bodies = {}
    for request in receiver.requests:
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = StandardWebhook(SECRET).verify(request.body, headers)
        assert body["id"] == headers["webhook-id"]
        time.strptime(body.pop("created_at"), "%Y-%m-%dT%H:%M:%S.%fZ")
        bodies[body.pop("id")] = body
    assert bodies["in-sql"] == bodies["over-http"] == {"type": EVENT, "data": data}


async def test_an_id_is_published_once_in_its_own_scope(pg_api: Api, receiver: Receiver) -> None:
    url = pg_api.settings.database_url
    await pg_api.create_webhook(url=receiver.url(), secret=SECRET)
    # The same id from the HTTP API's user is another producer's: not silenced.
    await pg_api.publish({"type": EVENT, "id": "twice"})
    await sql(url, f"SELECT publish('{EVENT}', NULL, 'twice')")
    await sql(url, f"SELECT publish('{EVENT}', NULL, 'twice')")
    batch = [
        {"type": EVENT, "id": "twice"},
        {"type": EVENT, "id": "new"},
        {"type": EVENT, "id": "new"},
    ]
    assert await produce("psycopg", url, 1, batch, commit=True) == ["twice", "new", "new"]
    await receiver.wait_for(3, timeout=15)
    assert received_ids(receiver) == ["new", "twice", "twice"]
    await settle(pg_api, receiver, 3)
    assert received_ids(receiver) == ["last", "new", "twice", "twice"]
    keys = await sql(url, "SELECT idempotency_key FROM events WHERE id = 'new'")
    draft = Draft(type=EVENT, topic=EVENT, id="new", id_scope="device")
    assert [row["idempotency_key"] for row in keys] == [idempotency_key(draft, "sql")]


async def test_wildcard_subscriptions_and_inactive_webhooks(
    pg_api: Api, receiver: Receiver
) -> None:
    url = pg_api.settings.database_url
    exact = await pg_api.create_webhook(url=receiver.url("/exact"), secret=SECRET)
    wildcard = await pg_api.create_webhook(url=receiver.url("/wildcard"), secret=SECRET)
    disabled = await pg_api.create_webhook(url=receiver.url("/disabled"), secret=SECRET)
    await pg_api.client.patch(
        f"/api/v1/webhooks/{wildcard['uid']}", json={"event_types": ["log.*"]}, headers=pg_api.admin
    )
    rows = await sql(url, "SELECT id FROM webhooks ORDER BY id")
    assert len(rows) == 3 and exact and wildcard and disabled
    await sql(url, "UPDATE webhooks SET status = 'disabled' WHERE id = $1", rows[2]["id"])

    await sql(url, f"SELECT publish('{EVENT}', NULL, 'fan-out')")
    await sql(url, "SELECT publish('log.door_was_closed', NULL, 'closed')")
    await receiver.wait_for(3, timeout=15)
    assert len(receiver.requests) == 3
    await settle(pg_api, receiver, 3)
    # (`last`, which `settle` publishes over HTTP to both, is left out.)
    assert sorted(
        (r.path, r.headers["webhook-id"])
        for r in receiver.requests
        if r.headers["webhook-id"] != "last"
    ) == [("/exact", "fan-out"), ("/wildcard", "closed"), ("/wildcard", "fan-out")]
    counts = await sql(url, "SELECT id, deliveries FROM events WHERE id <> 'last' ORDER BY seq")
    assert [(row["id"], row["deliveries"]) for row in counts] == [("fan-out", 2), ("closed", 1)]


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"type": "cap.plain"}, "type: 'cap.plain' is not a known event type"),
        ({"type": "hookd.webhook_disabled"}, "hookd's own event type"),
        ({"type": "Not A Type"}, "is not an event type name"),
        ({"type": EVENT, "data": [1]}, "data: must be a JSON object"),
        ({"type": EVENT, "id": "a\nb"}, "id: must be 1 to 255 printable ASCII characters"),
        ({"type": EVENT, "colour": "red"}, "colour: is not a field of an event"),
        ({"type": EVENT, "data": {"x": "x" * 1024 * 1024}}, "larger than 1048576 bytes"),
    ],
)
async def test_a_bad_event_aborts_the_postgres_transaction(
    postgres_url: str, event: dict[str, Any], says: str
) -> None:
    await orders_table(postgres_url)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await conn.execute("INSERT INTO orders (id) VALUES (1)")
        good = {"type": EVENT}
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"event \[1\]") as raised:
            await hookd.publish(conn, [good, event])
        assert says in str(raised.value)
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            await conn.execute("SELECT 1")
        await conn.rollback()
    if "type" in event and "colour" not in event and "id" not in event:
        with pytest.raises(asyncpg.InvalidParameterValueError, match="hookd: cannot publish"):
            await sql(postgres_url, "SELECT publish($1, $2::jsonb)", event["type"],
                      orjson.dumps(event.get("data")).decode())  # fmt: skip
    assert await sql(postgres_url, "SELECT * FROM events") == []
    assert await sql(postgres_url, "SELECT * FROM orders") == []


async def test_a_bad_event_on_sqlite_writes_nothing(tmp_path: Path) -> None:
    url = await migrated_store_url("sqlite", tmp_path)
    conn = sqlite3.connect(sqlite_file(url))
    try:
        with pytest.raises(InvalidField) as invalid:
            hookd.publish(conn, [{"type": EVENT}] * 1500 + [{"type": "cap.plain"}])
        assert invalid.value.field == "[1500].type"
        with pytest.raises(TooLarge):
            hookd.publish(conn, [{"type": EVENT, "data": {"x": "x" * 1024 * 1024}}])
        conn.commit()
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
        conn.isolation_level = None  # autocommit: the events would not be atomic
        with pytest.raises(ValueError, match="needs a transaction"):
            hookd.publish(conn, [{"type": EVENT}])
    finally:
        conn.close()


async def test_other_connections_event_lists_and_schema_names_are_refused(
    postgres_url: str,
) -> None:
    with pytest.raises(TypeError, match=r"cannot use a builtins\.object"):
        hookd.publish(object(), [{"type": EVENT}])
    memory = sqlite3.connect(":memory:")
    with pytest.raises(TypeError, match="a list of events"):
        hookd.publish(memory, {"type": EVENT})
    memory.close()
    with psycopg.connect(postgres_url) as conn:
        with pytest.raises(ValueError, match="'Bad-Name' is not a schema name"):
            hookd.publish(conn, [{"type": EVENT}], schema="Bad-Name")
        assert hookd.publish(conn, []) == []


async def add_event_type(api: Api, name: str) -> None:
    response = await api.client.post("/api/v1/event-types", json={"name": name}, headers=api.admin)
    assert response.status_code == 201, response.text


async def publish_an_added_type(api: Api, receiver: Receiver, kind: str, refusal: Any) -> None:
    url = api.settings.database_url
    await add_event_type(api, "order.created")
    await api.create_webhook(url=receiver.url(), secret=SECRET, event_types=["order.*"])
    added = [{"type": "order.created", "id": "order-1", "data": {"order": 1}}]
    assert await produce(kind, url, 1, added, commit=True) == ["order-1"]
    with pytest.raises(refusal, match=r"'order\.shipped' is not a known event type"):
        await produce(kind, url, 2, [{"type": "order.shipped"}], commit=True)
    await receiver.wait_for(1, timeout=15)
    assert received_ids(receiver) == ["order-1"]


async def test_a_type_added_to_the_catalogue_is_published_in_a_sqlite_transaction(
    sqlite_api: Api, receiver: Receiver
) -> None:
    await publish_an_added_type(sqlite_api, receiver, "sqlite3", InvalidField)


async def test_a_type_added_to_the_catalogue_is_published_in_a_postgres_transaction(
    pg_api: Api, receiver: Receiver
) -> None:
    await publish_an_added_type(pg_api, receiver, "asyncpg", asyncpg.InvalidParameterValueError)


README = Path(__file__).resolve().parents[3] / "README.md"


def readme_trigger() -> str:
    """The README's `orders` trigger, as written there."""
    blocks = re.findall(r"^```sql\n(.*?)^```$", README.read_text(), re.M | re.S)
    [trigger] = [block for block in blocks if "CREATE TRIGGER" in block]
    return trigger


async def test_the_readme_trigger_publishes_every_committed_order(
    pg_api: Api, receiver: Receiver
) -> None:
    url = pg_api.settings.database_url
    await add_event_type(pg_api, "order.created")
    await pg_api.create_webhook(url=receiver.url(), secret=SECRET, event_types=["order.*"])
    await sql(url, "DROP TABLE IF EXISTS orders CASCADE")
    script = await asyncpg.connect(url)
    try:
        await script.execute(readme_trigger())
    finally:
        await script.close()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (1, 'acme', 10), (2, 'acme', 20)")
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO orders VALUES (3, 'globex', 30)")
                raise RuntimeError("the producer changes its mind")
        except RuntimeError:
            pass
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (4, 'initech', 40.5)")
    finally:
        await conn.close()

    await receiver.wait_for(3, timeout=15)
    await asyncio.sleep(0.5)
    assert received_ids(receiver) == ["order-1", "order-2", "order-4"]
    data = {request.headers["webhook-id"]: request.json()["data"] for request in receiver.requests}
    assert data["order-4"] == {"id": 4, "customer": "initech", "total": 40.5}


async def test_a_producer_role_needs_execute_and_nothing_more(postgres_url: str) -> None:
    role = "hookd_test_producer"
    await sql(
        postgres_url,
        f"DO $$ BEGIN CREATE ROLE {role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    call = f"SELECT public.publish('{EVENT}', NULL)"
    conn = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(f"SET LOCAL ROLE {role}")
                await conn.fetchval(call)
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await conn.execute(f"GRANT EXECUTE ON FUNCTION public.publish(text, jsonb, text) TO {role}")
        async with conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {role}")
            assert (await conn.fetchval(call)).startswith("evt_")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(f"SET LOCAL ROLE {role}")
                await conn.fetch("SELECT * FROM public.events")
    finally:
        await conn.execute(f"REVOKE ALL ON FUNCTION public.publish(text, jsonb, text) FROM {role}")
        await conn.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
        await conn.close()
    assert len(await sql(postgres_url, "SELECT id FROM events")) == 1


async def test_an_id_published_by_two_transactions_at_once_is_stored_once(
    postgres_url: str,
) -> None:
    first, second = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
    try:
        await sql(
            postgres_url,
            "INSERT INTO webhooks (dialect, url, status, timeout_ms, max_retries, created_at,"
            " updated_at) VALUES ('device', 'http://127.0.0.1:9/', 'active', 1000, 0, 0, 0)",
        )
        await sql(postgres_url, f"INSERT INTO webhook_topics SELECT id, '{EVENT}', 0 FROM webhooks")
        one, two = first.transaction(), second.transaction()
        await one.start()
        await two.start()
        assert await hookd.publish(first, [{"type": EVENT, "id": "race"}]) == ["race"]
        # The second waits on the first's uncommitted key, then finds it taken.
        waiting = asyncio.ensure_future(
            hookd.publish(second, [{"type": EVENT, "id": "race"}, {"type": EVENT, "id": "other"}])
        )
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await one.commit()
        assert await asyncio.wait_for(waiting, 10) == ["race", "other"]
        await two.commit()
    finally:
        await first.close()
        await second.close()
    events = await sql(postgres_url, "SELECT id, deliveries FROM events ORDER BY seq")
    assert [(row["id"], row["deliveries"]) for row in events] == [("race", 1), ("other", 1)]
    deliveries = await sql(postgres_url, "SELECT event_seq FROM deliveries")
    assert len(deliveries) == 2
