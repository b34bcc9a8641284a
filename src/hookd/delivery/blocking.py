"""Blocking events (validation hooks): call the event's webhooks now and let any of them veto.

Enabled `STATUS`/`STATUS_AND_BODY` webhooks are called one after another in creation order,
each within its own timeout through the shared `Sender`; with `retry` a timeout, connection error
or 5xx is tried again at once, at most `RETRIES` more times. The first non-2xx answer or final
failure vetoes and ends the chain. `NONE` webhooks are queued like any delivery (concurrently
with the chain) and never veto. The calls are logged afterwards through a `CallLog`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from hookd.delivery import metrics
from hookd.delivery.sender import Attempt, Result, Sender
from hookd.domain.repository import STATUS_AND_BODY, SYNCHRONOUS, matches_category
from hookd.domain.webhook import ACTIVE, Webhook
from hookd.store.database import Database
from hookd.store.deliveries import Attempt as LoggedAttempt
from hookd.store.deliveries import CalledEvent, SentNow, record_synchronous
from hookd.store.events import NewEvent, publish

log = logging.getLogger("hookd.blocking")

# How long the call log lets entries gather before it writes them (one commit per batch).
LOG_LINGER = 0.05


@dataclass(slots=True, frozen=True)
class Hook:
    """A webhook to call synchronously, with what its calls need."""

    webhook_id: int
    public_id: str
    url: str
    timeout_ms: int
    api_key: str | None
    retries: int
    with_body: bool

    @classmethod
    def of(cls, webhook: Webhook) -> Hook:
        return cls(
            webhook_id=webhook.id,
            public_id=webhook.public_id or "",
            url=webhook.url,
            timeout_ms=webhook.timeout_ms,
            api_key=webhook.api_key,
            retries=webhook.max_retries,
            with_body=webhook.handle_response == STATUS_AND_BODY,
        )


@dataclass(slots=True)
class Call:
    """One webhook's part in the chain: every try, and how long they took together."""

    hook: Hook
    tries: list[Result]
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.tries[-1].ok

    def view(self) -> dict[str, Any]:
        last = self.tries[-1]
        view: dict[str, Any] = {"webhook": self.hook.public_id, "status_code": last.status_code}
        if self.hook.with_body:
            view["body"] = response_body(last.body)
        if last.error is not None:
            view["error"] = last.error
        view["duration_ms"] = round(self.duration_ms, 3)
        view["attempts"] = len(self.tries)
        return view


@dataclass(slots=True)
class Verdict:
    allowed: bool
    calls: list[Call]

    def view(self, event_id: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "allowed": self.allowed,
            "results": [call.view() for call in self.calls],
        }


def response_body(text: str | None) -> Any:
    """A receiver's answer: parsed when it is JSON, else the text (None when none came)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def retryable(result: Result) -> bool:
    """A timeout, a connection error or a 5xx may go away if tried again; a 4xx will not."""
    return result.status_code is None or result.status_code >= 500


async def call(sender: Sender, hook: Hook, event_id: str, body: bytes) -> Call:
    clock = time.perf_counter()
    tries: list[Result] = []
    for number in range(1, hook.retries + 2):
        result = await sender.send(
            Attempt(
                url=hook.url,
                body=body,
                event_id=event_id,
                number=number,
                timeout_ms=hook.timeout_ms,
                api_key=hook.api_key,
            )
        )
        tries.append(result)
        if result.ok or not retryable(result) or number > hook.retries:
            metrics.attempt_finished("succeeded" if result.ok else "failed", result.duration_ms)
            break
        metrics.attempt_finished("retrying", result.duration_ms)
    return Call(hook, tries, (time.perf_counter() - clock) * 1000)


async def run_chain(sender: Sender, hooks: list[Hook], event_id: str, body: bytes) -> Verdict:
    calls: list[Call] = []
    for hook in hooks:
        done = await call(sender, hook, event_id, body)
        calls.append(done)
        if not done.ok:
            return Verdict(False, calls)
    return Verdict(True, calls)


async def validate(
    db: Database, sender: Sender, event: NewEvent, webhooks: list[Webhook], now: float
) -> Verdict:
    """Fire a blocking event at its enabled `webhooks` (in creation order): queue the NONE
    ones, call the others, return the verdict."""
    firing = [
        webhook
        for webhook in webhooks
        if webhook.status == ACTIVE and matches_category(webhook.categories, event.category)
    ]
    hooks = [Hook.of(webhook) for webhook in firing if webhook.handle_response in SYNCHRONOUS]
    queued = frozenset(w.id for w in firing if w.handle_response not in SYNCHRONOUS)
    if not queued:
        return await run_chain(sender, hooks, event.id, event.body)
    event.only_webhooks = queued
    publishing = asyncio.create_task(publish(db, [event], now))
    try:
        return await run_chain(sender, hooks, event.id, event.body)
    finally:
        await publishing


def called_event(verdict: Verdict, event: NewEvent, created_at: float) -> CalledEvent:
    """The chain's calls as delivery-log entries."""
    return CalledEvent(
        id=event.id,
        type=event.topic,
        body=event.body,
        created_at=created_at,
        sent=[
            SentNow(
                webhook_id=done.hook.webhook_id,
                state="succeeded" if done.ok else "failed",
                attempts=[
                    LoggedAttempt(
                        number,
                        result.started_at,
                        result.duration_ms,
                        result.status_code,
                        result.body,
                        result.error,
                    )
                    for number, result in enumerate(done.tries, start=1)
                ],
            )
            for done in verdict.calls
        ],
    )


class CallLog:
    """Writes validation calls to the delivery log after their answers went out.

    Entries gather for `LOG_LINGER` (and while a write runs) and are written together in one
    transaction, so the log keeps up with any trigger rate at one commit (one fsync on SQLite)
    per batch instead of piling up a write per trigger, and takes little from the triggers that
    follow. `record` returns once its entry is written, so the request's background task (and a
    graceful shutdown) waits for it.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[CalledEvent, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, verdict: Verdict, event: NewEvent, created_at: float) -> None:
        if not verdict.calls:
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((called_event(verdict, event, created_at), written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await asyncio.shield(written)

    async def flush(self) -> None:
        """Wait until everything recorded so far is written (at shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        while self._pending:
            await asyncio.sleep(LOG_LINGER)  # let a batch gather
            batch, self._pending = self._pending, []
            try:
                await record_synchronous(self.db, [entry for entry, _ in batch], time.time())
            except Exception:
                log.exception("logging %d validation calls failed", len(batch))
            for _, written in batch:
                if not written.done():
                    written.set_result(None)
