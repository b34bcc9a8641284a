"""The worker loop: claim due deliveries, send them concurrently, record outcomes in batches.

Three cooperating parts run in one event loop:
- the claim loop keeps up to a batch of claimed deliveries (at most `capacity`) waiting for a
  sender, so senders never wait for a claim's round trip;
- `capacity` senders take claimed deliveries from a queue, make the HTTP attempt and decide
  what becomes of each (a fixed pool: a task per delivery cost more CPU than the send itself);
- the recorder writes all outcomes gathered so far in one transaction.
Sending and recording overlap: the next batch is claimed and sent while the last one's outcomes
are written; only when the database falls far behind does claiming wait for it. The loop sleeps
when nothing is due and wakes on a publish (in-process, or PostgreSQL NOTIFY), at the next retry
it knows of, or after `poll_interval` as the safety net.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

import asyncpg

from hookd.config import Settings
from hookd.delivery import metrics, outcomes
from hookd.delivery.retry import RetryPolicy
from hookd.delivery.sender import Attempt, Sender
from hookd.delivery.ssrf import TargetGuard
from hookd.domain.states import DeliveryState
from hookd.store.availability import StoreUnavailable
from hookd.store.database import NOTIFY_CHANNEL, Database, libpq_dsn
from hookd.store.queue import (
    Claimed,
    Outcome,
    Recorded,
    Sharing,
    claim,
    record_outcomes,
    release,
    release_abandoned,
)
from hookd.store.retention import prune_finished

log = logging.getLogger("hookd.worker")

PRUNE_EVERY = 60.0
# Outcomes are written after lingering this long for others to join them in one transaction.
RECORD_LINGER = 0.005
# On stop, how long to keep trying to record what was sent before giving up on the store.
SHUTDOWN_RECORD_SECONDS = 30.0
# A receiver answering this has removed the endpoint: its webhook is disabled at once.
GONE = 410


class Worker:
    def __init__(self, db: Database, settings: Settings, *, sender: Sender | None = None) -> None:
        self.db = db
        self.capacity = settings.worker_concurrency
        self.batch_size = settings.worker_batch_size
        self.poll_interval = settings.poll_interval
        self.lease = settings.worker_lease
        self.disable_after = settings.disable_after
        self.suspend_after = settings.suspend_after
        self.per_webhook = settings.webhook_concurrency
        self.retention = settings.retention
        self.policy = RetryPolicy(settings.retry_schedule)
        self.sender = sender or Sender(
            TargetGuard(settings.allow_networks, enabled=settings.ssrf_guard),
            connections=self.capacity,
        )
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        # Each outcome with the delivery it is of (its ids for the log, its dialect for counts).
        self._outcomes: list[tuple[Outcome, Claimed]] = []
        self._outcomes_ready = asyncio.Event()
        self._unrecorded = 0  # claimed and not yet recorded: being sent, or waiting to be written
        self._to_send: asyncio.Queue[Claimed] = asyncio.Queue()
        self._busy = 0  # senders making an attempt now
        self._sending: dict[int, int] = {}  # per webhook
        # Claimed deliveries of a webhook whose share of senders is busy, in claim order.
        self._parked: dict[int, collections.deque[Claimed]] = {}
        # Claimed deliveries wait for a sender at most one round of sends: with every sender
        # stuck on a slow receiver, a waiting delivery still goes out well inside its lease.
        self._prefetch = min(self.batch_size, self.capacity)
        # Claimed but not yet recorded; past this, claiming waits for the database to catch up.
        self._max_unrecorded = 2 * (self.capacity + self.batch_size)
        self._next_due: float | None = None
        self._stopping = False
        # Claimed and not yet sent, per webhook: what fair sharing counts against each webhook.
        self._held: dict[int, int] = {}
        self._holding = 0  # all of them
        # Webhooks this worker saw suspended, and when: what it claimed for them before that
        # is given back unsent.
        self._suspended_at: dict[int, float] = {}
        self._fifo_pending: set[int] = set()  # fifo deliveries claimed, outcome not yet written

    def wake(self) -> None:
        self._wake.set()
        self._room.set()  # a claim loop waiting for room looks again too

    def stop(self) -> None:
        """Stop claiming; claimed deliveries not yet started are given back, in-flight ones
        finish and are recorded before run() returns."""
        self._stopping = True
        self._wake.set()
        self._room.set()

    async def run(self) -> None:
        self.db.on_wake(self.wake)
        if self.db.is_sqlite:  # the only process of this store: any claim left is a crash's
            released = await release_abandoned(self.db, time.time())
            if released:
                log.warning("gave back %d deliveries a stopped process had claimed", released)
        await self.sender.open()
        recorder = asyncio.create_task(self._record_loop(), name="hookd-recorder")
        listener = None if self.db.is_sqlite else asyncio.create_task(self._listen())
        pruner = asyncio.create_task(self._prune_loop()) if self.retention > 0 else None
        senders = [asyncio.create_task(self._send_loop()) for _ in range(self.capacity)]
        try:
            await self._claim_loop()
            await self._release_waiting()
            await self._to_send.join()
            try:
                await asyncio.wait_for(self._recorded_all(), SHUTDOWN_RECORD_SECONDS)
            except TimeoutError:  # the store is away: their leases will bring them back
                log.warning("stopping with %d outcomes unrecorded", self._unrecorded)
        finally:
            recorder.cancel()
            for helper in (listener, pruner, *senders):
                if helper is not None:
                    helper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self.sender.close()

    async def _release_waiting(self) -> None:
        """On stop, give back what no sender has taken yet, so that it goes out elsewhere now."""
        waiting = [claimed for parked in self._parked.values() for claimed in parked]
        self._parked.clear()
        while not self._to_send.empty():
            waiting.append(self._to_send.get_nowait())
        for claimed in waiting:
            self._to_send.task_done()
            self._let_go(claimed)
        self._unrecorded -= len(waiting)
        try:
            await release(self.db, waiting, time.time())
        except Exception:  # the store is away: their leases will bring them back
            log.warning("stopping with %d claimed deliveries not given back", len(waiting))

    async def _recorded_all(self) -> None:
        while self._unrecorded:
            self._outcomes_ready.set()
            await self._room_freed()

    async def _room_freed(self) -> None:
        self._room.clear()
        await self._room.wait()

    async def _claim_loop(self) -> None:
        while not self._stopping:
            waiting = self._holding - self._busy  # claimed, not yet taken by a sender
            # Top up when half the prefetch is gone, so that claims come in batches.
            if waiting > self._prefetch // 2 or self._unrecorded >= self._max_unrecorded:
                await self._room_freed()
                continue
            self._wake.clear()
            limit = self._prefetch - waiting
            sharing = Sharing(
                held=self._held, slots=self.capacity + self._prefetch, per_webhook=self.per_webhook
            )
            try:
                taken = await claim(self.db, limit, time.time(), self.lease, sharing)
            except StoreUnavailable:  # the store logs once that it went away
                await self._sleep(self.poll_interval)
                continue
            except Exception:
                log.exception("claiming deliveries failed; trying again shortly")
                await self._sleep(self.poll_interval)
                continue
            claimed = taken.deliveries
            if claimed:
                metrics.CLAIM_BATCH.observe(len(claimed))
            self._due_at(taken.next_due)
            self._unrecorded += len(claimed)
            self._holding += len(claimed)
            for delivery in claimed:
                self._held[delivery.webhook_id] = self._held.get(delivery.webhook_id, 0) + 1
                if delivery.fifo:
                    self._fifo_pending.add(delivery.id)
                self._to_send.put_nowait(delivery)
            if len(claimed) < limit:
                if taken.more_due:
                    # More may be due: claim again once half of what is held has been sent
                    # (or on a wake-up), so that claims stay batches.
                    await self._holding_drops_to(
                        self._holding - min(self._prefetch, self._holding) // 2
                    )
                else:
                    await self._sleep(self._idle_timeout())

    async def _holding_drops_to(self, target: int) -> None:
        while self._holding > target and not self._stopping and not self._wake.is_set():
            await self._room_freed()

    async def _send_loop(self) -> None:
        while True:
            claimed: Claimed | None = await self._to_send.get()
            self._room.set()  # the waiting queue shrank: the claim loop may top it up
            while claimed is not None:
                webhook_id = claimed.webhook_id
                if self._sending.get(webhook_id, 0) >= self._send_share():
                    # This webhook has its share of the senders busy: the delivery waits for
                    # one of them, which takes it next.
                    self._parked.setdefault(webhook_id, collections.deque()).append(claimed)
                    break
                await self._send_one(claimed)
                claimed = self._unpark(webhook_id)

    def _send_share(self) -> int:
        """The senders one webhook may keep busy: an even share among the webhooks this worker
        holds deliveries of."""
        return max(1, -(-self.capacity // max(1, len(self._held))))  # rounded up

    def _unpark(self, webhook_id: int) -> Claimed | None:
        parked = self._parked.get(webhook_id)
        if not parked or self._sending.get(webhook_id, 0) >= self._send_share():
            return None
        claimed = parked.popleft()
        if not parked:
            del self._parked[webhook_id]
        return claimed

    async def _send_one(self, claimed: Claimed) -> None:
        webhook_id = claimed.webhook_id
        self._busy += 1
        self._sending[webhook_id] = self._sending.get(webhook_id, 0) + 1
        try:
            if self._suspended_since_claimed(claimed):
                await release(self.db, [claimed], time.time())
                self._fifo_pending.discard(claimed.id)
                self._unrecorded -= 1
                return
            try:
                outcome = await self._deliver(claimed)
            except Exception as exc:  # never lose a sender, never leave a delivery stuck
                log.exception("delivering %s failed unexpectedly", claimed.id)
                outcome = self._failed_attempt(claimed, f"{type(exc).__name__}: {exc}")
            # Append only now: the recorder swaps in a new list while we were sending.
            self._outcomes.append((outcome, claimed))
            self._outcomes_ready.set()
        finally:
            left = self._sending[webhook_id] - 1
            if left:
                self._sending[webhook_id] = left
            else:
                del self._sending[webhook_id]
            self._let_go(claimed)
            self._busy -= 1
            self._to_send.task_done()
            self._room.set()

    def _let_go(self, claimed: Claimed) -> None:
        self._holding -= 1
        left = self._held.get(claimed.webhook_id, 0) - 1
        if left > 0:
            self._held[claimed.webhook_id] = left
        else:
            self._held.pop(claimed.webhook_id, None)

    def _suspended_since_claimed(self, claimed: Claimed) -> bool:
        suspended_at = self._suspended_at.get(claimed.webhook_id)
        return suspended_at is not None and claimed.lease - self.lease < suspended_at

    def _due_at(self, when: float | None) -> None:
        if when is not None and (self._next_due is None or when < self._next_due):
            self._next_due = when

    def _idle_timeout(self) -> float:
        timeout = self.poll_interval
        if self._next_due is not None:
            timeout = min(timeout, max(self._next_due - time.time(), 0.0))
            self._next_due = None
        return timeout

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _deliver(self, claimed: Claimed) -> Outcome:
        if not claimed.webhook_active:
            now = time.time()
            outcome = Outcome(
                claimed.id,
                claimed.webhook_id,
                DeliveryState.FAILED,
                now,
                None,
                now,
                0.0,
                None,
                None,
                "not sent: the webhook is disabled or was deleted",
                claimed.lease,
            )
        else:
            result = await self.sender.send(
                Attempt(
                    url=claimed.url,
                    body=claimed.body,
                    event_id=claimed.event_id,
                    number=claimed.attempt,
                    timeout_ms=claimed.timeout_ms,
                    secret=claimed.secret,
                    headers=claimed.headers,
                    bearer_token=claimed.bearer_token,
                    previous_secret=claimed.previous_secret,
                )
            )
            now = time.time()
            gone = result.status_code == GONE
            if result.ok:
                state, due_at = DeliveryState.SUCCEEDED, now
            elif gone:  # the receiver says the endpoint is gone for good
                state, due_at = DeliveryState.FAILED, now
            else:
                state, due_at = self.policy.after_failure(
                    claimed.attempt, claimed.max_retries, now, result.retry_after
                )
            outcome = Outcome(
                claimed.id,
                claimed.webhook_id,
                state,
                due_at,
                claimed.attempt,
                result.started_at,
                result.duration_ms,
                result.status_code,
                result.body,
                result.error,
                claimed.lease,
                gone,
                claimed.probe,
            )
        return outcome

    def _failed_attempt(self, claimed: Claimed, error: str) -> Outcome:
        """An attempt that went wrong inside hookd: failed like any other, so that it is
        retried on the schedule and counts towards the webhook's retries."""
        now = time.time()
        state, due_at = self.policy.after_failure(claimed.attempt, claimed.max_retries, now, None)
        return Outcome(
            claimed.id, claimed.webhook_id, state, due_at, claimed.attempt, now, 0.0, None, None,
            f"hookd could not make the request: {error}", claimed.lease, probe=claimed.probe,
        )  # fmt: skip

    async def _record_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            if self._busy and len(self._outcomes) < self.batch_size and not self._stopping:
                await asyncio.sleep(RECORD_LINGER)
            self._outcomes_ready.clear()
            if not self._outcomes:
                continue
            batch, self._outcomes = self._outcomes, []
            try:
                recorded = await record_outcomes(
                    self.db,
                    [outcome for outcome, _ in batch],
                    time.time(),
                    self.disable_after,
                    suspend_after=self.suspend_after,
                    probe_delay=self.policy.delay,
                )
            except Exception as error:
                if not isinstance(error, StoreUnavailable):  # that, the store logs once
                    log.exception("recording %d outcomes failed; trying again", len(batch))
                self._outcomes[:0] = batch
                await asyncio.sleep(min(self.poll_interval, 1.0))
                self._outcomes_ready.set()
                continue
            self._note(recorded)
            outcomes.recorded(batch)
            if any(o.delivery_id in self._fifo_pending for o, _ in batch):
                # Each fifo outcome lets that webhook's next delivery go: claim it now.
                self._fifo_pending.difference_update(o.delivery_id for o, _ in batch)
                self._wake.set()
            retry_times = [o.due_at for o, _ in batch if o.state == DeliveryState.RETRYING]
            if retry_times:
                earliest = min(retry_times)
                if self._next_due is None or earliest < self._next_due:
                    self._next_due = earliest
                self._wake.set()
            self._unrecorded -= len(batch)
            self._room.set()

    def _note(self, recorded: Recorded) -> None:
        gone = set(recorded.gone)
        for webhook_id in recorded.disabled:
            reason = "gone" if webhook_id in gone else "failing"
            log.warning(
                "webhook %s disabled: %s",
                webhook_id,
                "410 Gone" if reason == "gone" else "its attempts kept failing",
                extra={"webhook_id": webhook_id, "reason": reason},
            )
        metrics.webhooks_disabled(recorded.gone, [w for w in recorded.disabled if w not in gone])
        now = time.time()
        for webhook_id in recorded.suspended:
            log.warning("webhook %s suspended: failing continuously; probing", webhook_id)
            self._suspended_at[webhook_id] = now
        for webhook_id in recorded.recovered:
            log.info("webhook %s recovered: its waiting deliveries go now", webhook_id)
            self._suspended_at.pop(webhook_id, None)
        if recorded.recovered:
            self._wake.set()
        if recorded.announced:
            log.info("queued %d deliveries of hookd's own events", recorded.announced)
        if recorded.stale:
            log.warning(
                "%d outcomes not recorded: their lease ran out and another worker took them",
                recorded.stale,
            )

    async def _listen(self) -> None:
        """Wake on PostgreSQL NOTIFY; reconnect if the connection drops."""
        connected = True  # as far as the log said
        while True:
            try:
                conn = await asyncpg.connect(libpq_dsn(self.db.url))
            except Exception as error:
                if connected:
                    log.warning("LISTEN connection failed (%s); polling until it is back", error)
                    connected = False
                await asyncio.sleep(5)
                continue
            if not connected:
                log.info("LISTEN connection is back")
                connected = True
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            try:
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
                self.wake()  # anything published while we were not listening
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _prune_loop(self) -> None:
        """Delete finished events older than the retention, a thousand at a time."""
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            try:
                cutoff = time.time() - self.retention
                for _ in range(10):
                    if await prune_finished(self.db, cutoff) < 1000:
                        break
            except StoreUnavailable:
                pass  # the store logs once that it went away; pruning waits for the next round
            except Exception:
                log.exception("pruning old events failed")
