"""Synchronous calls: what is tried again."""

from __future__ import annotations

import asyncio
import contextlib

from hookd.delivery.chain import CALLER_GONE, Chain, Hook, Validator, Verdict, retryable
from hookd.delivery.sender import Attempt, Result


def test_what_is_tried_again() -> None:
    assert retryable(Result(0.0, 1.0, error="timed out after 300 ms"))
    assert retryable(Result(0.0, 1.0, status_code=500))
    assert retryable(Result(0.0, 1.0, status_code=503))
    assert not retryable(Result(0.0, 1.0, status_code=422))
    assert not retryable(Result(0.0, 1.0, status_code=302))


class HeldSender:
    """A sender whose attempts wait until released, counting how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()

    async def send(self, attempt: Attempt) -> Result:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return Result(0.0, 1.0, status_code=200)


HOOK = Hook(webhook_id=1, url="http://127.0.0.1:9/", timeout_ms=5000, bearer_token=None, retries=0)


async def test_at_most_per_group_chains_of_a_group_run_at_once() -> None:
    sender = HeldSender()
    validator = Validator(sender, per_group=3, deadline=5.0)  # type: ignore[arg-type]

    def run(group: str) -> asyncio.Task[Verdict]:
        return asyncio.create_task(validator.run(group, [HOOK], "evt", b"{}", Chain()))

    crowded = [run("a") for _ in range(10)]
    other = run("b")
    await asyncio.sleep(0.1)
    assert sender.running == 4  # three of group a, and group b's
    sender.release.set()
    verdicts = await asyncio.gather(*crowded, other)
    assert all(verdict.allowed for verdict in verdicts)
    assert sender.most == 4
    assert validator._groups == {}  # nothing kept for groups no chain runs in


async def test_a_cancelled_chain_keeps_what_it_called() -> None:
    sender = HeldSender()
    validator = Validator(sender, per_group=3, deadline=5.0)  # type: ignore[arg-type]
    chain = Chain()
    running = asyncio.create_task(validator.run("a", [HOOK, HOOK], "evt", b"{}", chain))
    await asyncio.sleep(0.05)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    [call] = chain.calls
    assert call.last.error == CALLER_GONE
    assert not chain.verdict.allowed
    assert validator._groups == {}
