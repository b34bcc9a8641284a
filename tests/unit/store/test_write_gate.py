"""`WriteGate`: transactions on the store's thread go through together; one through the async
driver goes alone, after those in flight, and holds new ones back until it ends."""

from __future__ import annotations

import asyncio

from hookd.store.write_gate import WriteGate


async def test_threaded_transactions_do_not_wait_for_each_other() -> None:
    gate = WriteGate()
    inside = 0
    most = 0
    release = asyncio.Event()

    async def threaded() -> None:
        nonlocal inside, most
        async with gate.threaded():
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(threaded()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert most == 5
    release.set()
    await asyncio.gather(*tasks)


async def test_one_going_alone_waits_for_those_in_flight_and_holds_back_new_ones() -> None:
    gate = WriteGate()
    order: list[str] = []
    first_done = asyncio.Event()
    alone_done = asyncio.Event()

    async def threaded(name: str, until: asyncio.Event) -> None:
        async with gate.threaded():
            order.append(f"{name} in")
            await until.wait()
            order.append(f"{name} out")

    async def alone() -> None:
        async with gate.alone():
            order.append("alone in")
            await asyncio.sleep(0.01)
            order.append("alone out")
        alone_done.set()

    first = asyncio.create_task(threaded("first", first_done))
    await asyncio.sleep(0)
    going_alone = asyncio.create_task(alone())
    await asyncio.sleep(0.01)
    later = asyncio.create_task(threaded("later", alone_done))
    await asyncio.sleep(0.01)
    assert order == ["first in"]  # alone waits for first; later waits for alone
    first_done.set()
    await asyncio.gather(first, going_alone, later)
    assert order == ["first in", "first out", "alone in", "alone out", "later in", "later out"]


async def test_those_going_alone_go_one_at_a_time() -> None:
    gate = WriteGate()
    inside = 0
    most = 0

    async def alone() -> None:
        nonlocal inside, most
        async with gate.alone():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(alone() for _ in range(4)))
    assert most == 1


async def test_a_cancelled_threaded_transaction_leaves_the_gate() -> None:
    gate = WriteGate()
    hold = asyncio.Event()

    async def threaded() -> None:
        async with gate.threaded():
            await hold.wait()

    task = asyncio.create_task(threaded())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(1):
        async with gate.alone():
            pass
