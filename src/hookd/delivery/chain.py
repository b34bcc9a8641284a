"""Synchronous calls: webhooks called one after another while a request waits, any of which may
veto (validation hooks).

Each webhook is called within its own timeout through the given `Sender`; a timeout, connection
error or 5xx is tried again at once, at most `retries` more times. The first non-2xx answer or
final failure vetoes and ends the chain. The calls are written to the delivery log afterwards
through a `CallLog`, like queued deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from hookd.delivery import metrics
from hookd.delivery.sender import Attempt, Result, Sender
from hookd.domain.states import DeliveryState
from hookd.domain.webhook import Webhook
from hookd.store.database import Database
from hookd.store.deliveries import AttemptRecord, CalledEvent, SentNow, record_synchronous

log = logging.getLogger("hookd.chain")

# How long the call log lets entries gather before it writes them (one commit per batch).
LOG_LINGER = 0.05


@dataclass(slots=True, frozen=True)
class Hook:
    """A webhook to call synchronously, with what its calls need."""

    webhook_id: int
    url: str
    timeout_ms: int
    bearer_token: str | None
    retries: int

    @classmethod
    def of(cls, webhook: Webhook) -> Hook:
        return cls(
            webhook_id=webhook.id,
            url=webhook.url,
            timeout_ms=webhook.timeout_ms,
            bearer_token=webhook.bearer_token,
            retries=webhook.max_retries,
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

    @property
    def last(self) -> Result:
        return self.tries[-1]


@dataclass(slots=True)
class Verdict:
    """Whether every webhook called allowed it, and the calls made (in order; a veto ends
    the chain, so the webhooks after it were not called)."""

    allowed: bool
    calls: list[Call]


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
                bearer_token=hook.bearer_token,
            )
        )
        tries.append(result)
        if result.ok or not retryable(result) or number > hook.retries:
            final = DeliveryState.SUCCEEDED if result.ok else DeliveryState.FAILED
            metrics.attempt_finished(final, result.duration_ms)
            break
        metrics.attempt_finished(DeliveryState.RETRYING, result.duration_ms)
    return Call(hook, tries, (time.perf_counter() - clock) * 1000)


async def run_chain(sender: Sender, hooks: list[Hook], event_id: str, body: bytes) -> Verdict:
    calls: list[Call] = []
    for hook in hooks:
        done = await call(sender, hook, event_id, body)
        calls.append(done)
        if not done.ok:
            return Verdict(False, calls)
    return Verdict(True, calls)


def called_event(
    verdict: Verdict, event_id: str, event_type: str, body: bytes, created_at: float
) -> CalledEvent:
    """The chain's calls as delivery-log entries."""
    return CalledEvent(
        id=event_id,
        type=event_type,
        body=body,
        created_at=created_at,
        sent=[
            SentNow(
                webhook_id=done.hook.webhook_id,
                state=DeliveryState.SUCCEEDED if done.ok else DeliveryState.FAILED,
                attempts=[
                    AttemptRecord(
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
    """Writes synchronous calls to the delivery log after their answers went out.

    Entries gather for `LOG_LINGER` (and while a write runs) and are written together in one
    transaction, so the log keeps up with any call rate at one commit (one fsync on SQLite)
    per batch instead of piling up a write per request, and takes little from the requests that
    follow. `record` returns once its entry is written, so the request's background task (and a
    graceful shutdown) waits for it.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[CalledEvent, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, entry: CalledEvent) -> None:
        if not entry.sent:
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, written))
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
                log.exception("logging %d synchronous calls failed", len(batch))
            for _, written in batch:
                if not written.done():
                    written.set_result(None)
