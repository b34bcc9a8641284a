"""The console's delivery log: keyset pages newest first, filters, a time range found by
bisection, the bounded search window; one delivery's detail; bulk recovery."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from hookd.domain.states import DeliveryState
from hookd.domain.webhook import WebhookFields
from hookd.store import deliveries as log
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.deliveries import LogFilter, LogPage, search_log
from hookd.store.events import NewEvent, publish
from hookd.store.schema import deliveries

START = 1_800_000_000.0


async def fill(db: Database) -> tuple[int, int]:
    """Two webhooks; 30 events a minute apart, 45 deliveries in creation order (`t.a` goes to
    both, `t.b` to the first). Every third event's deliveries failed, the rest succeeded."""
    first = await webhooks.create_webhook(db, "device", WebhookFields("http://a/", ("t.a", "t.b")))
    second = await webhooks.create_webhook(db, "device", WebhookFields("http://b/", ("t.a",)))
    for n in range(30):
        topic = "t.a" if n % 2 == 0 else "t.b"
        await publish(db, [NewEvent(f"evt-{n}", topic, b"{}")], START + 60 * n)
    async with db.transaction() as conn:
        await conn.execute(update(deliveries).values(state=DeliveryState.SUCCEEDED.value))
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.event_seq % 3 == 1)
            .values(state=DeliveryState.FAILED.value)
        )
    return first.id, second.id


async def every_page(db: Database, where: LogFilter, limit: int) -> list[LogPage]:
    pages = [await search_log(db, where, limit=limit)]
    while pages[-1].older is not None:
        pages.append(await search_log(db, where, limit=limit, before=pages[-1].older))
        assert len(pages) < 100
    return pages


async def test_pages_go_newest_first_without_gaps_or_repeats(db: Database) -> None:
    await fill(db)
    pages = await every_page(db, LogFilter(), limit=7)
    ids = [d.id for page in pages for d in page.items]
    assert ids == list(range(45, 0, -1))
    assert [len(page.items) for page in pages] == [7] * 6 + [3]
    assert pages[0].newer is None and pages[1].newer == ids[7]
    # Back towards the newest from the third page: the second page again.
    back = await search_log(db, LogFilter(), limit=7, after=pages[2].newer)
    assert [d.id for d in back.items] == [d.id for d in pages[1].items]
    assert back.older == pages[1].items[-1].id


async def test_filters(db: Database) -> None:
    first, second = await fill(db)

    async def ids(where: LogFilter) -> list[int]:
        return [d.id for page in await every_page(db, where, limit=4) for d in page.items]

    assert len(await ids(LogFilter(webhook_id=second))) == 15
    assert {
        d.webhook_id for d in (await search_log(db, LogFilter(webhook_id=first), limit=50)).items
    } == {first}
    failed = await ids(LogFilter(state=DeliveryState.FAILED))
    assert len(failed) == 15
    assert await ids(LogFilter(state=DeliveryState.PENDING)) == []
    assert len(await ids(LogFilter(event_type="t.b"))) == 15
    assert len(await ids(LogFilter(event_type="t.b", webhook_id=second))) == 0
    [page] = await every_page(db, LogFilter(event_id="evt-4"), limit=10)
    assert {(d.event_id, d.webhook_id) for d in page.items} == {("evt-4", first), ("evt-4", second)}
    assert await ids(LogFilter(event_id="no-such-event")) == []
    both = LogFilter(state=DeliveryState.FAILED, webhook_id=first, event_type="t.a")
    found = (await search_log(db, both, limit=50)).items
    assert found and all(
        d.state == DeliveryState.FAILED and d.webhook_id == first and d.event_type == "t.a"
        for d in found
    )


@pytest.mark.parametrize(
    ("start", "end", "events"),
    [
        (START, START + 60 * 30, list(range(30))),
        (START + 60 * 10, START + 60 * 12, [10, 11]),
        (START + 60 * 10 + 1, START + 60 * 12 + 1, [11, 12]),
        (START + 60 * 29, None, [29]),
        (None, START + 1, [0]),
        (START + 60 * 40, None, []),
        (None, START - 60, []),
    ],
)
async def test_a_time_range(
    db: Database, start: float | None, end: float | None, events: list[int]
) -> None:
    await fill(db)
    where = LogFilter(created_from=start, created_until=end)
    found = [d for page in await every_page(db, where, limit=5) for d in page.items]
    assert sorted({int(d.event_id.split("-")[1]) for d in found}) == events
    assert all(d.event_type.startswith("t.") for d in found)


async def test_a_rare_match_is_searched_a_window_at_a_time(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However rare a match, one page reads at most SEARCH_WINDOW deliveries; the next page
    goes on where it stopped, and nothing is skipped."""
    await fill(db)
    monkeypatch.setattr(log, "SEARCH_WINDOW", 10)
    where = LogFilter(state=DeliveryState.FAILED, event_type="t.a")
    pages = await every_page(db, where, limit=50)
    assert len(pages) == 5
    assert [page.searched_down_to for page in pages[:-1]] == [36, 26, 16, 6]
    assert pages[-1].searched_down_to is None
    found = [d.id for page in pages for d in page.items]
    monkeypatch.setattr(log, "SEARCH_WINDOW", 1_000_000)
    assert found == [d.id for d in (await search_log(db, where, limit=50)).items]


async def test_a_webhooks_window_counts_its_own_deliveries(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = await fill(db)
    monkeypatch.setattr(log, "SEARCH_WINDOW", 4)
    page = await search_log(
        db, LogFilter(webhook_id=second, state=DeliveryState.SUCCEEDED), limit=50
    )
    # The second webhook's four newest deliveries are read, whatever lies between them.
    assert page.searched_down_to is not None
    assert len(page.items) == 3  # of those four, one failed
    assert (await search_log(db, LogFilter(webhook_id=second), limit=50)).searched_down_to is None


async def test_an_empty_log(db: Database) -> None:
    page = await search_log(db, LogFilter(state=DeliveryState.FAILED), limit=10)
    assert page.items == [] and page.older is None and page.newer is None


async def test_a_delivery_with_its_attempts_and_body(db: Database) -> None:
    hook = await webhooks.create_webhook(db, "device", WebhookFields("http://a/", ("t",)))
    await publish(db, [NewEvent("evt-x", "t", b'{"id": "evt-x"}')], START)
    found = await log.delivery_detail(db, 1)
    assert found is not None
    assert found.delivery.webhook_id == hook.id and found.event_body == b'{"id": "evt-x"}'
    assert found.delivery.attempt_log == []
    assert await log.delivery_detail(db, 2) is None


async def test_recover_queues_only_failed_deliveries_of_the_webhook_since(db: Database) -> None:
    first, _ = await fill(db)
    woken = []
    db.on_wake(lambda: woken.append(True))
    queued = await log.recover(db, first, START + 60 * 15, now=START + 10_000)
    # Events 15…29 of the first webhook that failed: every third event (seq 16, 19, …, 28).
    assert queued == 5
    assert woken
    pending = await search_log(
        db, LogFilter(state=DeliveryState.PENDING, webhook_id=first), limit=50
    )
    assert len(pending.items) == 5
    assert all(d.next_attempt_at == START + 10_000 for d in pending.items)
    assert await log.recover(db, first, START + 60 * 15, now=START + 10_001) == 0
    assert len((await search_log(db, LogFilter(state=DeliveryState.FAILED), limit=50)).items) == 10
