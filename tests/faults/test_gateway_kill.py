"""The gateway SIGKILLed in the middle of a telemetry stream, with open alarms, an escalation
step not yet due, and the time-series server down (its points waiting in the on-disk outbox).
After the restart: the alarms as they were, the step sent once at its time, and every reading
accepted before or after the kill delivered once the server is back."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import (
    GatewayProcess,
    Mosquitto,
    Probe,
    VictoriaMetrics,
    answer_valve,
    until,
    write_config,
)
from tests.faults.rig import (
    ADMIN_TOKEN,
    Publisher,
    gas_ids,
    process_config,
    telemetry_processed,
)
from tests.support.providers import LEGAL, SAFETY, Received, notify_config, providers

pytestmark = pytest.mark.usefixtures("provider_secrets")

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READINGS = 2000
DETECTORS = 10
STEP_AFTER_S = 10.0  # the second escalation step: due after the restart


async def get(base: str, path: str, **params: Any) -> Any:
    # async: the provider stand-ins answer on this test's event loop
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as c:
        r = await c.get(path, params=params)
        r.raise_for_status()
        return r.json()


def mentions(sms: list[Received]) -> Counter[str]:
    """How often each alarm name was in these SMS (a grouped one names several)."""
    names: Counter[str] = Counter()
    for r in sms:
        names.update(orjson.loads(r.form()["TemplateParam"])["alarm"].split("、"))
    return names


async def up(base: str) -> bool:
    try:
        return bool((await get(base, "/api/health"))["broker"]["connected"])
    except httpx.HTTPError:
        return False


async def test_kill_9_keeps_alarms_escalation_and_the_outbox(
    tmp_path: Path,
    broker: Mosquitto,
    probe: Probe,
    vm: VictoriaMetrics,
    gateway_process: GatewayProcess,
) -> None:
    async with providers() as p:
        data, port = process_config(tmp_path, broker.port, detectors=DETECTORS, influx_url=vm.url)
        data["notify"] = notify_config(
            p,
            default_policy=False,
            policies={
                "critical": [
                    {"after": "0 s", "to": ["safety_manager"], "channels": ["sms-aliyun"]},
                    {
                        "after": f"{STEP_AFTER_S:g} s",
                        "to": ["legal_representative"],
                        "channels": ["sms-aliyun"],
                    },
                ]
            },
        )
        cfg = write_config(tmp_path / "gateway.yaml", data)
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "gateway.log"
        devices = gas_ids(DETECTORS)
        t0 = int(time.time() * 1000) - 60_000

        with gateway_process(cfg, port, log) as proc:
            for _ in range(400):
                if await up(base):
                    break
                await asyncio.sleep(0.05)
            # The bulk lane may subscribe after the API answers: a first reading, taken,
            # says the stream will be.
            pub = Publisher(broker.port)
            try:
                pub.publish("safety/xingfu/gas-kitchen/telemetry", b'{"values": {"lel": 0.5}}')
                for _ in range(400):
                    if telemetry_processed(base):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the first reading was never taken")
                vm.stop()  # the time-series server is down from here on
                await probe.event("btn-lobby", "pressed")
                pressed = time.monotonic()
                await probe.telemetry("gas-kitchen", {"lel": 28.0})
                await answer_valve(probe)
                start = time.monotonic()
                for i in range(READINGS):
                    payload = orjson.dumps({"ts": t0 + i, "values": {"lel": 1.0 + i % 5 / 10}})
                    pub.publish(f"safety/xingfu/{devices[i % DETECTORS]}/telemetry", payload)
                    if i % 100 == 99:  # paced at 1,000 a second
                        await asyncio.sleep(max(0.0, start + (i + 1) / 1000 - time.monotonic()))
                    if i == READINGS // 2:
                        await probe.event("btn-lobby", "pressed")  # a repeat: count 2
                await until(lambda: pub.acked > READINGS, 30, "the stream at the broker")
            finally:
                pub.close()
            await until(lambda: p.sms_to(SAFETY), 10, "the first step's SMS")

            async def queued() -> dict[str, Any]:
                ts: dict[str, Any] = (await get(base, "/api/health"))["timeseries"]
                return ts

            for _ in range(300):  # the stream taken and in the outbox on disk
                ts = await queued()
                if ts["outbox_points"] >= READINGS and ts["buffered"] == 0:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"outbox never held the stream: {ts}")
            before = {a["id"]: a for a in await get(base, "/api/alarms", state="active")}
            assert {a["type"] for a in before.values()} == {"fire_button", "gas_leak"}
            assert not p.sms_to(LEGAL), "the second step went out early"
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
            killed = time.monotonic()
        assert killed - pressed < STEP_AFTER_S - 3, "too slow to test a pending step"

        with gateway_process(cfg, port, log):
            for _ in range(400):
                if await up(base):
                    break
                await asyncio.sleep(0.05)
            after = {a["id"]: a for a in await get(base, "/api/alarms", state="active")}
            assert set(after) == set(before)
            for alarm_id, alarm in before.items():
                for key in ("type", "state", "count", "peak", "severity", "acked"):
                    assert after[alarm_id][key] == alarm[key], (key, after[alarm_id], alarm)
            button = next(a for a in after.values() if a["type"] == "fire_button")
            assert button["count"] == 2
            outbox = (await get(base, "/api/health"))["timeseries"]["outbox_points"]
            assert outbox >= READINGS, "the outbox lost points in the kill"

            # the pending step fires at its time, once
            await until(lambda: p.sms_to(LEGAL), STEP_AFTER_S + 10, "the second step")
            sent_after = time.monotonic() - pressed
            assert sent_after >= STEP_AFTER_S - 0.5, f"second step after {sent_after:.1f} s"
            assert mentions(p.sms_to(SAFETY))["一键报警"] == 1, "the first step was sent again"

            vm.start()  # the server is back: the outbox drains
            for _ in range(600):
                if (await get(base, "/api/health"))["timeseries"]["outbox_points"] == 0:
                    break
                await asyncio.sleep(0.05)
            stamps = [s[2] for s in vm.samples('reading_lel{site="xingfu"}')]
            wanted = set(range(t0, t0 + READINGS))
            assert len(wanted - set(stamps)) == 0, f"{len(wanted - set(stamps))} readings lost"
            # the second step once: one SMS, naming the gas leak too when both fell due
            # together, else the gas leak's waits for the end of the group window
            await asyncio.sleep(1.0)  # a bounded look for a repeat
            assert len(p.sms_to(LEGAL)) == 1
            assert mentions(p.sms_to(LEGAL))["一键报警"] == 1
            legal = [orjson.loads(r.form()["TemplateParam"]) for r in p.sms_to(LEGAL)]
    print(
        f"restarted after {killed - pressed:.1f} s; second step after {sent_after:.1f} s; "
        f"outbox held {outbox} points; time series {len(stamps)} samples "
        f"({len(stamps) - len(set(stamps))} doubled); second-step SMS {legal}"
    )
    assert "Traceback" not in log.read_text()
