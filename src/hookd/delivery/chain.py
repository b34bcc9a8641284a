"""Synchronous calls: webhooks called one after another while a request waits, any of which may
veto (validation hooks).

Each webhook is called within its own timeout through the `Validator`'s own client pool (so that
validation never waits for connections that deliveries or test sends hold); a timeout,
connection error or 5xx is tried again at once, at most `retries` more times. The first non-2xx
answer or final failure vetoes and ends the chain. A chain runs within an overall deadline, and
at most `per_group` chains of one group (a repository) run at once, so that one group's slow
hooks take neither the pool nor the time of another's. A chain whose caller went away is
cancelled; what it called is kept (`Chain.calls`). The calls are written to the delivery log
afterwards through a `CallLog`, like queued deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from hookd.delivery import metrics
from hookd.delivery.sender import Attempt, Result, Sender
from hookd.domain.states import DeliveryState
from hookd.domain.webhook import Webhook
from hookd.store.availability import StoreUnavailable
from hookd.store.database import Database
from hookd.store.deliveries import AttemptRecord, CalledEvent, SentNow, record_synchronous

log = logging.getLogger("hookd.chain")

# How long the call log lets entries gather before it writes them (one commit per batch).
LOG_LINGER = 0.05
CALLER_GONE = "cancelled: the caller went away"
# A try that ends this close to the chain's deadline ended because of it (its timeout was cut
# to the whole milliseconds left).
_DEADLINE_SLACK = 0.005


@dataclass(slots=True, frozen=True)
class Hook:
    """A webhook to call synchronously, with what its calls need."""

    webhook_id: int
    url: str
    timeout_ms: int
    bearer_token: str | None
    retries: int
    dialect: str = ""

    @classmethod
    def of(cls, webhook: Webhook) -> Hook:
        return cls(
            webhook_id=webhook.id,
            url=webhook.url,
            timeout_ms=webhook.timeout_ms,
            bearer_token=webhook.bearer_token,
            retries=webhook.max_retries,
            dialect=webhook.dialect,
        )


@dataclass(slots=True)
class Call:
    """One webhook's part in the chain: every try, and how long they took together."""

    hook: Hook
    tries: list[Result]
    duration_ms: float
    # Whether a request went out (a call the deadline or the repository's limit kept from
    # starting did not, and is not logged).
    sent: bool = True

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


@dataclass(slots=True)
class Chain:
    """A chain's calls as they are made: what was called is known even if it is cancelled."""

    calls: list[Call] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return Verdict(bool(self.calls) and all(c.ok for c in self.calls), self.calls)


def retryable(result: Result) -> bool:
    """A timeout, a connection error or a 5xx may go away if tried again; a 4xx will not."""
    return result.status_code is None or result.status_code >= 500


def _not_called(reason: str) -> Result:
    return Result(time.time(), 0.0, error=reason)


class Validator:
    """Runs chains of synchronous calls: one client pool of its own, at most `per_group`
    chains at once per group, each within `deadline` seconds (see the module's docstring)."""

    def __init__(self, sender: Sender, *, per_group: int, deadline: float) -> None:
        self.sender = sender
        self.per_group = per_group
        self.deadline = deadline
        # Per group: its slots, and how many chains hold or wait for one (dropped at none).
        self._groups: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    async def run(
        self, group: str, hooks: list[Hook], event_id: str, body: bytes, chain: Chain
    ) -> Verdict:
        """Call `hooks` in order into `chain`; its verdict. An empty chain allows."""
        if not hooks:
            return Verdict(True, [])
        started = time.perf_counter()
        verdict = "cancelled"
        try:
            found = await self._run(group, hooks, event_id, body, chain)
            verdict = "allowed" if found.allowed else "vetoed"
            return found
        finally:
            metrics.VALIDATIONS.labels(verdict).inc()
            metrics.VALIDATION_SECONDS.observe(time.perf_counter() - started)

    async def _run(
        self, group: str, hooks: list[Hook], event_id: str, body: bytes, chain: Chain
    ) -> Verdict:
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + self.deadline
        found = self._groups.get(group)
        if found is None:
            found = self._groups[group] = (asyncio.Semaphore(self.per_group), [0])
        slots, users = found
        users[0] += 1
        try:
            try:
                if slots.locked():
                    await asyncio.wait_for(slots.acquire(), self.deadline)
                else:
                    await slots.acquire()  # at once (wait_for would cost a task)
            except TimeoutError:
                chain.calls.append(Call(hooks[0], [_not_called(self._no_slot())], 0.0, False))
                return chain.verdict
            if loop.time() >= deadline_at:  # a slot, but no time left
                slots.release()
                chain.calls.append(Call(hooks[0], [_not_called(self._no_slot())], 0.0, False))
                return chain.verdict
            try:
                for hook in hooks:
                    done = await self._call(hook, event_id, body, deadline_at, chain)
                    if not done.ok:
                        break
            finally:
                slots.release()
        finally:
            users[0] -= 1
            if not users[0]:
                del self._groups[group]
        return chain.verdict

    @property
    def _deadline_ms(self) -> int:
        return round(self.deadline * 1000)

    def _no_slot(self) -> str:
        return (
            f"not called: {self.per_group} validations of this repository were running until "
            f"the trigger's deadline of {self._deadline_ms} ms (HOOKD_VALIDATION_PER_REPOSITORY)"
        )

    async def _call(
        self, hook: Hook, event_id: str, body: bytes, deadline_at: float, chain: Chain
    ) -> Call:
        """Call one webhook (and try again as `retries` allows) within the chain's deadline;
        the call joins `chain` as soon as it starts."""
        loop = asyncio.get_running_loop()
        clock = time.perf_counter()
        done = Call(hook, [], 0.0, sent=False)
        chain.calls.append(done)
        try:
            for number in range(1, hook.retries + 2):
                left_ms = int((deadline_at - loop.time()) * 1000)
                if left_ms <= 0:
                    done.tries.append(_not_called(self._deadline_passed("before")))
                    break
                timeout_ms = min(hook.timeout_ms, left_ms)
                started = loop.time()
                done.sent = True
                try:
                    result = await self.sender.send(
                        Attempt(
                            url=hook.url,
                            body=body,
                            event_id=event_id,
                            number=number,
                            timeout_ms=timeout_ms,
                            bearer_token=hook.bearer_token,
                        )
                    )
                except asyncio.CancelledError:
                    elapsed = (loop.time() - started) * 1000
                    done.tries.append(Result(time.time(), elapsed, error=CALLER_GONE))
                    raise
                out_of_time = deadline_at - loop.time() < _DEADLINE_SLACK
                if result.error is not None and timeout_ms < hook.timeout_ms and out_of_time:
                    result.error = result.error_summary = self._deadline_passed("during")
                done.tries.append(result)
                if result.ok or not retryable(result) or number > hook.retries or out_of_time:
                    break
                metrics.attempt_finished(hook.dialect, DeliveryState.RETRYING, result.duration_ms)
        finally:
            done.duration_ms = (time.perf_counter() - clock) * 1000
            if done.tries:
                final = DeliveryState.SUCCEEDED if done.ok else DeliveryState.FAILED
                metrics.attempt_finished(hook.dialect, final, done.tries[-1].duration_ms)
        return done

    def _deadline_passed(self, when: str) -> str:
        return (
            f"the trigger's deadline of {self._deadline_ms} ms ran out {when} this call "
            "(HOOKD_VALIDATION_DEADLINE)"
        )


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
            if done.sent
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
            except StoreUnavailable as error:  # the store logs the outage itself, once
                log.warning("%d synchronous calls not logged: %s", len(batch), error.reason)
            except Exception:
                log.exception("logging %d synchronous calls failed", len(batch))
            for _, written in batch:
                if not written.done():
                    written.set_result(None)
