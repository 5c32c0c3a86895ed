"""The live feed's two lanes: alarms never wait behind device updates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.live.hub import LiveHub, SubscriberTooSlow
from rules.model import DeviceRef


def view(ref: DeviceRef) -> dict[str, Any]:
    return {"site": ref.site, "device": ref.device}


def refs(n: int, site: str = "s") -> list[DeviceRef]:
    return [DeviceRef(site, f"d{i}") for i in range(n)]


async def test_an_alarm_goes_before_every_waiting_device_update() -> None:
    hub = LiveHub(view)
    sub = hub.subscribe(None)
    for ref in refs(500):
        hub.device_changed(ref)
    hub.flush_devices()
    hub.alarm_changed("s", {"kind": "alarm", "alarm": {"id": "a1"}})
    batch = await sub.next()
    assert batch[0] == {"kind": "alarm", "alarm": {"id": "a1"}}
    assert all(m["kind"] == "device" for m in batch[1:])


async def test_device_updates_coalesce_to_the_newest_per_device() -> None:
    values = {"v": 1}
    hub = LiveHub(lambda ref: {"device": ref.device, **values})
    sub = hub.subscribe(None)
    ref = DeviceRef("s", "d0")
    for v in range(5):
        values["v"] = v
        hub.device_changed(ref)
        hub.flush_devices()
    assert await sub.next() == [{"kind": "device", "device": {"device": "d0", "v": 4}}]
    assert hub.coalesced_device_updates == 4


async def test_device_updates_are_paced_and_alarms_are_not() -> None:
    hub = LiveHub(view)
    sub = hub.subscribe(None)
    sub.device_rate = 100.0
    for ref in refs(120):
        hub.device_changed(ref)
    hub.flush_devices()
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = 0
    while got < 120:
        got += len(await sub.next())
    # 50 at once (the burst), the other 70 at 100 a second: about 0.7 s
    assert loop.time() - started >= 0.5
    hub.device_changed(refs(1)[0])
    hub.flush_devices()
    await sub.next()  # uses up the token that refilled
    hub.alarm_changed("s", {"kind": "alarm"})
    assert await asyncio.wait_for(sub.next(), 0.05) == [{"kind": "alarm"}]


async def test_a_subscriber_whose_alarm_lane_overflows_is_told_to_reconnect() -> None:
    hub = LiveHub(view)
    hub.QUEUE_SIZE = 3
    sub = hub.subscribe(None)
    for i in range(4):
        hub.alarm_changed("s", {"kind": "alarm", "n": i})
    assert hub.disconnected_slow == 1 and hub.subscribers == 0
    with pytest.raises(SubscriberTooSlow):
        await sub.next()


async def test_a_subscriber_sees_only_its_sites() -> None:
    hub = LiveHub(view)
    sub = hub.subscribe(frozenset({"a"}))
    hub.device_changed(DeviceRef("b", "x"))
    hub.device_changed(DeviceRef("a", "y"))
    hub.flush_devices()
    hub.alarm_changed("b", {"kind": "alarm", "site": "b"})
    assert await sub.next() == [{"kind": "device", "device": {"site": "a", "device": "y"}}]
