"""One delivery from publish to a real receiver, on each backend."""

from support import Api, Receiver


async def test_publish_reaches_receiver(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url())
    published = await api.publish({"type": "log.door_was_opened", "data": {"door": 1}})
    assert published["deliveries"] == 1
    await receiver.wait_for(1)
    assert receiver.requests[0].json()["data"] == {"door": 1}
    items = await api.wait_for_deliveries(hook["uid"], 1)
    assert items[0]["status"] == "succeeded"
