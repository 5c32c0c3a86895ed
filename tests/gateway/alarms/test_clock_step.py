"""A step of the wall clock through the real gateway (router, engine, dispatcher, book) over
a real Mosquitto: deadlines run on the monotonic clock, stored times on the wall clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.config.loading import parse_config
from rules.model import DeviceRef
from tests.conftest import (
    FakeClock,
    Mosquitto,
    Probe,
    RunningGateway,
    running_gateway,
    site_config,
    until,
)

HOUR = 3600.0


def open_alarms(rg: RunningGateway, type_: str) -> list[Any]:
    return [a for a in rg.gw.book.open_alarms() if a.type.value == type_]


async def test_an_hour_forward_marks_no_device_offline(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    config = parse_config(site_config(tmp_path / "data", broker.port))
    async with running_gateway(config, clock=clock) as rg:
        gas = DeviceRef("xingfu", "gas-kitchen")
        await probe.telemetry("gas-kitchen", {"lel": 1.0})
        await until(lambda: rg.gw.engine.status(gas).last_seen is not None, what="reading")
        clock.step(HOUR)
        rg.gw.tick()  # the supervisor's own tick: both clocks read once, then the engine
        assert open_alarms(rg, "device_offline") == []
        await probe.telemetry("gas-kitchen", {"lel": 1.0})
        await until(lambda: rg.gw.engine.status(gas).last_seen == clock.now, what="reading")
        shown = (await rg.api.get("/api/devices/gas-kitchen", params={"site": "xingfu"})).json()
        assert shown["status"] == "online"
        assert shown["last_seen"] == rg.gw.clockface.iso(clock.now), "shown in wall time"


async def test_an_hour_back_after_close_valve_does_not_delay_valve_failure(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    config = parse_config(site_config(tmp_path / "data", broker.port))
    # valve_confirm_timeout is 2 s in the test configuration; this valve never answers.
    async with running_gateway(config, clock=clock) as rg:
        await probe.telemetry("gas-kitchen", {"lel": 30.0})
        await probe.wait_for("valve-kitchen/cmd")
        clock.step(-HOUR)  # right after the close, as in the report
        clock.advance(1)
        rg.gw.tick()
        assert open_alarms(rg, "valve_failure") == []
        clock.advance(1)
        rg.gw.tick()
        (failure,) = open_alarms(rg, "valve_failure")
        assert failure.reason == "valve_not_confirmed"
        assert failure.raised_at == clock.now, "stored in wall time, as the clock now says"
        await until(lambda: len(probe.messages("valve-kitchen/cmd")) >= 2, what="close re-sent")


async def test_rejects_are_logged_once_a_minute_of_monotonic_time(
    tmp_path: Any, broker: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    config = parse_config(site_config(tmp_path / "data", broker.port))
    topic = "safety/xingfu/gas-kitchen/telemetry"

    def logged() -> int:
        return sum(1 for r in caplog.records if r.name == "gateway.rejected")

    with caplog.at_level(logging.WARNING, logger="gateway.rejected"):
        async with running_gateway(config, clock=clock):
            await probe.publish(topic, b"{not json")
            await until(lambda: logged() == 1, what="first reject logged")
            clock.step(-HOUR)
            clock.advance(61)  # a minute has passed: the device's next reject is logged
            await probe.publish(topic, b"{not json")
            await until(lambda: logged() == 2, what="second reject logged")
