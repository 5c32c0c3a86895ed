"""Phones and escalation end to end: real Mosquitto, the gateway on a fake clock, and local
HTTP servers that speak Aliyun's and Tencent's APIs and re-check every request's signature.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

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
from tests.support.providers import (
    BUREAU,
    LEGAL,
    SAFETY,
    Providers,
    answer,
    notify_config,
    providers,
)

pytestmark = pytest.mark.usefixtures("provider_secrets")


def config(tmp_path: Path, broker: Mosquitto, p: Providers, **extra: Any) -> Any:
    data = site_config(tmp_path / "data", broker.port)
    data["notify"] = notify_config(p, **extra)
    return parse_config(data)


def timeline(rg: RunningGateway, alarm_id: str, action: str) -> list[dict[str, Any]]:
    alarm = rg.gw.book.get(alarm_id)
    assert alarm is not None
    return [e.detail or {} for e in alarm.timeline if e.action.value == action]


async def gas_alarm(rg: RunningGateway, probe: Probe) -> str:
    """A gas leak whose valve closes as it should (so no valve_failure joins in)."""
    await probe.telemetry("gas-kitchen", {"lel": 30.0})
    cmd = await probe.wait_for("valve-kitchen/cmd")
    await probe.publish("safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True})
    alarm = await until(
        lambda: next((a for a in rg.gw.book.open_alarms() if a.type.value == "gas_leak"), None),
        what="gas alarm",
    )
    await until(
        lambda: "command_result" in [e.action.value for e in alarm.timeline], what="valve ok"
    )
    return alarm.id


async def test_critical_alarm_sms_both_phones_then_voice_after_five_minutes(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    async with providers() as p, running_gateway(config(tmp_path, broker, p), clock=clock) as rg:
        alarm_id = await gas_alarm(rg, probe)
        await until(lambda: p.sms_to(LEGAL) and p.sms_to(SAFETY), what="SMS to both phones")
        sms = p.sms_to(LEGAL)[0].form()
        assert sms["SignName"] == "民政安全"
        assert sms["TemplateCode"] == "SMS_900001"
        params = orjson.loads(sms["TemplateParam"])
        assert params["site"].startswith("城区幸福养老")
        assert params["location"] == "一楼厨房"
        assert params["alarm"] == "燃气泄漏"
        attempts = await until(
            lambda: len(timeline(rg, alarm_id, "notify_attempt")) >= 2, what="timeline"
        )
        assert attempts
        done = timeline(rg, alarm_id, "notify_attempt")
        assert {(d["to"], d["channel"], d["ok"]) for d in done} == {
            ("张杰荣", "sms-aliyun", True),
            ("李四应", "sms-aliyun", True),
        }
        assert p.voice.requests == [], "no call before five minutes"
        assert p.tencent.requests == [], "the fallback was not needed"

        clock.advance(301)  # nobody acknowledged
        await until(lambda: p.calls_to(LEGAL) and p.calls_to(SAFETY), what="voice calls")
        call = p.calls_to(LEGAL)[0].form()
        assert call["TtsCode"] == "TTS_900002"
        assert orjson.loads(call["TtsParam"])["alarm"] == "燃气泄漏"
        await until(lambda: p.sms_to(BUREAU), what="bureau duty SMS")
        assert len(p.sms_to(LEGAL)) == 1, "the first SMS is not repeated"

        # Acknowledged: the reminders stop.
        r = await rg.api.post(f"/api/alarms/{alarm_id}/ack", json={"by": "王值班"})
        assert r.status_code == 200
        await until(lambda: timeline(rg, alarm_id, "notify_cancelled"), what="reminders cancelled")
        clock.advance(3600)
        await asyncio.sleep(1.5)  # no reminder may come: a bounded look, the behaviour tested
        assert len(p.calls_to(LEGAL)) == 1

        # A stub records a request before it answers; the attempt is on the timeline once
        # the answer is back: wait for the steps rather than read them at once.
        async def steps() -> set[int]:
            entries = (await rg.api.get(f"/api/alarms/{alarm_id}")).json()["timeline"]
            return {e["detail"]["step"] for e in entries if e["action"] == "notify_attempt"}

        deadline = time.monotonic() + 10
        while (got := await steps()) != {0, 1, 2} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert got == {0, 1, 2}, "every send attempt is on the alarm's timeline"


async def test_failing_provider_falls_back_to_the_next_channel(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    async with providers() as p:
        p.aliyun.respond = answer(200, {"Code": "Throttling.User", "Message": "slow down"})
        async with running_gateway(config(tmp_path, broker, p), clock=clock) as rg:
            alarm_id = await gas_alarm(rg, probe)
            await until(lambda: len(p.tencent.requests) >= 2, what="Tencent fallback used")
            body = orjson.loads(p.tencent.requests[0].body)
            assert body["SmsSdkAppId"] == "1400000001"
            phones = {n for r in p.tencent.requests for n in orjson.loads(r.body)["PhoneNumberSet"]}
            assert phones == {LEGAL, SAFETY}
            attempts = await until(
                lambda: [
                    d
                    for d in timeline(rg, alarm_id, "notify_attempt")
                    if d["channel"] == "sms-tencent"
                ],
                what="fallback on the timeline",
            )
            assert attempts
            aliyun = [
                d for d in timeline(rg, alarm_id, "notify_attempt") if d["channel"] == "sms-aliyun"
            ]
            assert len(aliyun) == 4, "two attempts per phone with backoff, then the fallback"
            assert all(not d["ok"] and "Throttling" in d["detail"] for d in aliyun)


async def test_restart_during_escalation_sends_each_step_exactly_once(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    async with providers() as p:
        cfg = config(tmp_path, broker, p)
        async with running_gateway(cfg, clock=clock) as rg:
            alarm_id = await gas_alarm(rg, probe)
            await until(lambda: p.sms_to(LEGAL) and p.sms_to(SAFETY), what="first SMS")
        # The gateway is down for ten minutes: the 5-minute steps fall due meanwhile.
        clock.advance(600)
        async with running_gateway(cfg, clock=clock) as rg:
            await until(
                lambda: p.calls_to(LEGAL) and p.calls_to(SAFETY) and p.sms_to(BUREAU),
                what="the steps that fell due while down",
            )
            await asyncio.sleep(1.5)  # no step may be repeated: a bounded look
            assert len(p.sms_to(LEGAL)) == 1, "the step sent before the restart is not repeated"
            assert len(p.calls_to(LEGAL)) == 1
            assert len(p.sms_to(BUREAU)) == 1
            assert rg.gw.book.get(alarm_id) is not None
        async with running_gateway(cfg, clock=clock):
            await asyncio.sleep(1.5)  # a third start must send nothing: a bounded look
        assert (len(p.sms_to(LEGAL)), len(p.calls_to(LEGAL)), len(p.sms_to(BUREAU))) == (1, 1, 1)


async def test_maintenance_records_alarms_but_does_not_push_them(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    async with providers() as p, running_gateway(config(tmp_path, broker, p), clock=clock) as rg:
        r = await rg.api.put(
            "/api/devices/gas-kitchen/maintenance",
            json={"by": "维保", "minutes": 60, "note": "校准"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["until"].endswith("+08:00")
        assert [m["device"] for m in (await rg.api.get("/api/maintenance")).json()] == [
            "gas-kitchen"
        ]
        alarm_id = await gas_alarm(rg, probe)
        await probe.wait_for("valve-kitchen/cmd")  # safety actions still happen
        suppressed = await until(
            lambda: timeline(rg, alarm_id, "notify_suppressed"), what="suppressed"
        )
        assert suppressed[0]["why"] == "suppressed_maintenance"
        view = (await rg.api.get(f"/api/alarms/{alarm_id}")).json()
        assert view["maintenance"] is True and view["state"] == "active"
        clock.advance(600)
        await asyncio.sleep(1.5)  # nothing may be sent in maintenance: a bounded look
        assert p.aliyun.requests == [] and p.voice.requests == []
        # Maintenance over: the next alarm is pushed again.
        assert (await rg.api.delete("/api/devices/gas-kitchen/maintenance")).json()[
            "cleared"
        ] is True
        await probe.event("btn-lobby", "pressed")
        await until(lambda: p.sms_to(LEGAL), what="SMS after maintenance")
        bad = await rg.api.put(
            "/api/devices/gas-kitchen/maintenance", json={"by": "x", "minutes": 0}
        )
        assert bad.status_code == 422


async def test_alarms_from_one_site_are_grouped_without_delaying_the_first(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    async with providers() as p, running_gateway(config(tmp_path, broker, p), clock=clock) as rg:
        await gas_alarm(rg, probe)
        await until(lambda: p.sms_to(LEGAL), what="the first critical alarm at once")
        await probe.event("btn-lobby", "pressed")
        await probe.telemetry("co-boiler", {"co_ppm": 2.0})
        await probe.publish("safety/xingfu/btn-lobby/event", {"event": "smoke"})
        await until(lambda: len(list(rg.gw.book.open_alarms())) >= 3, what="two more alarms")
        await asyncio.sleep(1.5)  # held, not sent: a bounded look, the behaviour under test
        assert len(p.sms_to(LEGAL)) == 1, "held inside the 30 s window"
        clock.advance(31)
        await until(lambda: len(p.sms_to(LEGAL)) == 2, what="one grouped message")
        params = orjson.loads(p.sms_to(LEGAL)[1].form()["TemplateParam"])
        assert params["location"] == "大厅等2处"
        assert set(params["alarm"].split("、")) == {"一键报警", "烟雾报警"}


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forward", "backward"])
async def test_a_wall_clock_step_neither_hastens_nor_delays_the_voice_call(
    tmp_path: Path, broker: Mosquitto, probe: Probe, step: float
) -> None:
    clock = FakeClock()
    async with providers() as p, running_gateway(config(tmp_path, broker, p), clock=clock) as rg:
        await gas_alarm(rg, probe)
        await until(lambda: p.sms_to(LEGAL) and p.sms_to(SAFETY), what="SMS to both phones")
        clock.step(step)  # NTP, or a person setting the time, right after the SMS
        assert rg.gw.notifications.escalations.due(rg.gw.clocks.now()) == [], "no call yet"
        clock.advance(301)  # five minutes pass, nobody acknowledges
        await until(lambda: p.calls_to(LEGAL) and p.calls_to(SAFETY), what="voice calls")


async def test_an_alarm_due_while_the_first_sms_is_in_flight_is_held(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    clock = FakeClock()
    async with providers() as p, running_gateway(config(tmp_path, broker, p), clock=clock) as rg:
        p.aliyun.hang = True  # the first SMS stays in flight
        await gas_alarm(rg, probe)
        await until(lambda: p.sms_to(LEGAL), what="the first critical alarm at once")
        await probe.event("btn-lobby", "pressed")
        await until(lambda: len(list(rg.gw.book.open_alarms())) >= 2, what="the press")
        await asyncio.sleep(1.5)  # held, not sent: a bounded look, the behaviour under test
        assert len(p.sms_to(LEGAL)) == 1, "sent beside the first instead of held"
