"""Automatic trip over a real Mosquitto (the device answers on `cmd/ack`), `reset` refused
while an alarm is open, and the configuration of `auto_trip` checked at load. The gateway
runs on a fake clock: the test moves time and calls the supervisor's tick itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.errors import ConfigError
from gateway.config.loading import parse_config
from tests.conftest import (
    FakeClock,
    Mosquitto,
    Probe,
    RunningGateway,
    running_gateway,
    site_config,
    until,
)

EFM = "efm-auto"
CLOSE = {"by": "王值班", "disposition": "real", "note": "断电检修"}


def auto_trip_device(**auto_trip: Any) -> dict[str, Any]:
    return {
        "id": EFM,
        "type": "electrical_fire_monitor",
        "location": "二楼配电箱",
        # No on-delay (the default 10 s filters spikes) so that the test runs in seconds.
        "thresholds": {"residual_current": {"on_delay": 0, "off_delay": "0.5 s"}},
        "auto_trip": {"on": ["residual_current"], "confirm_timeout": "1 s", **auto_trip},
    }


def open_of(rg: RunningGateway, type_: str) -> list[Any]:
    return [a for a in rg.gw.book.open_alarms() if a.type.value == type_ and a.device == EFM]


async def test_auto_trip_over_mqtt_unconfirmed_then_confirmed_and_reset(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    data = site_config(tmp_path / "data", broker.port, extra_devices=[auto_trip_device()])
    async with running_gateway(parse_config(data), clock=clock) as rg:
        api = rg.api
        await probe.telemetry(EFM, {"residual_ma": 480})
        cmd = await probe.wait_for(f"{EFM}/cmd")
        assert cmd["cmd"] == "trip"
        (alarm,) = await until(lambda: open_of(rg, "residual_current"), what="alarm")
        assert cmd["reason"] == alarm.id, "the trip names the alarm that caused it"
        sent = await until(
            lambda: [e for e in alarm.timeline if e.action.value == "command_sent"],
            what="trip on the alarm's timeline",
        )
        assert sent[0].detail["cmd"] == "trip"
        assert sent[0].detail["reason"] == "auto_trip"
        assert sent[0].detail["why"].startswith("residual_current active")

        # The device never answers: trip_failure at the 1 s deadline, latched.
        clock.advance(0.9)
        rg.gw.tick()
        assert open_of(rg, "trip_failure") == []
        clock.advance(0.1)
        rg.gw.tick()
        (failure,) = open_of(rg, "trip_failure")
        assert failure.latched and failure.reason == "trip_not_confirmed"
        assert [m["cmd"] for m in probe.messages(f"{EFM}/cmd")] == ["trip"], "sent once"

        # Reset is refused while the device has an open alarm, in any state.
        r = await api.post(f"/api/devices/{EFM}/commands", json={"by": "王值班", "cmd": "reset"})
        assert r.status_code == 409, r.text
        assert "closed" in r.json()["error"]

        # The current falls back; a person closes both alarms; now reset goes out.
        await probe.telemetry(EFM, {"residual_ma": 5})
        await until(lambda: rg.gw.engine.status(alarm.key.ref).values["residual_ma"][0] == 5)
        clock.advance(0.5)  # the off-delay
        rg.gw.tick()
        assert alarm.state.value == "cleared"
        for a in (alarm, failure):
            r = await api.post(f"/api/alarms/{a.id}/close", json=CLOSE)
            assert r.status_code == 200, r.text
        r = await api.post(f"/api/devices/{EFM}/commands", json={"by": "王值班", "cmd": "reset"})
        assert r.status_code == 202, r.text
        reset = await probe.wait_for(f"{EFM}/cmd", lambda m: m["cmd"] == "reset")
        assert reset["id"] == r.json()["id"]
        await probe.publish(f"safety/xingfu/{EFM}/cmd/ack", {"id": reset["id"], "ok": True})
        await probe.wait_for(
            "xingfu/commands", lambda m: m["id"] == reset["id"] and m["result"] == "ok"
        )

        # A new episode trips again; this time the device acknowledges within the deadline.
        await probe.telemetry(EFM, {"residual_ma": 520})
        again = await probe.wait_for(f"{EFM}/cmd", lambda m: m["cmd"] == "trip" and m != cmd)
        await probe.publish(f"safety/xingfu/{EFM}/cmd/ack", {"id": again["id"], "ok": True})
        await probe.wait_for(
            "xingfu/commands", lambda m: m["id"] == again["id"] and m["result"] == "ok"
        )
        clock.advance(5)  # well past the deadline
        rg.gw.tick()
        assert open_of(rg, "trip_failure") == []
        assert "open_valve" not in {m["cmd"] for m in probe.messages("/cmd")}


def _problems(device: dict[str, Any], tmp_path: Path) -> list[tuple[str, str]]:
    data = site_config(tmp_path, 1883, extra_devices=[device])
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [(p.path, p.message) for p in info.value.problems]


def test_auto_trip_configuration_is_checked_at_load(tmp_path: Path) -> None:
    gas = {
        "id": "gas-2",
        "type": "gas_detector",
        "location": "厨房",
        "auto_trip": {"on": ["residual_current"]},
    }
    assert any("electrical_fire_monitor" in m for _, m in _problems(gas, tmp_path))
    stranger = auto_trip_device(agree={"device": "nobody", "alarm": "overtemperature"})
    assert (
        "sites[0].devices[5].auto_trip.agree.device",
        "nobody is not another device of this site",
    ) in _problems(stranger, tmp_path)
    button = auto_trip_device(agree={"device": "btn-lobby"})
    assert any("no measured alarm" in m for _, m in _problems(button, tmp_path))
    itself = auto_trip_device(agree={"alarm": "residual_current"})
    assert any(p.endswith("auto_trip.agree") for p, _ in _problems(itself, tmp_path))
    no_overcurrent = auto_trip_device(on=["overcurrent"])
    assert any(p.endswith("auto_trip.on") for p, _ in _problems(no_overcurrent, tmp_path))
    polled = auto_trip_device()
    polled |= {"transport": "modbus", "modbus": {"host": "10.0.0.9", "profile": "rotork_iq_pro"}}
    polled["type"] = "electrical_fire_monitor"
    assert any("has no trip command" in m for _, m in _problems(polled, tmp_path))
    # and a valid one: overtemperature confirmed by residual current on efm-1
    ok = auto_trip_device(on=["overtemperature"], agree={"device": "efm-1"}, delay="30 s")
    parse_config(site_config(tmp_path, 1883, extra_devices=[ok]))
