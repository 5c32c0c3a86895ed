"""Issue 13 end to end through Mosquitto: a vendor's extra fields never drop a reading, and
4G/NB-IoT detectors posting their own JSON shapes are read by the shipped payload mappings."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.app.reload import reload_config
from gateway.config.loading import parse_config
from rules.model import Instant, Outcome, Reading
from tests.conftest import (
    Mosquitto,
    probe_client,
    running_gateway,
    site_config,
    until,
    write_config,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def is_alarm(device: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["device"] == device and m["type"] == kind and m["state"] == "active"


async def test_extra_fields_and_mapped_payloads_reach_the_rules(
    tmp_path: Path, broker: Mosquitto
) -> None:
    data = site_config(
        tmp_path / "data",
        broker.port,
        extra_devices=[
            {
                "id": "gas-4g",
                "type": "gas_detector",
                "location": "二楼厨房",
                "codec": "generic_4g_gas",
            },
            {
                "id": "gas-nb",
                "type": "gas_detector",
                "location": "三楼厨房",
                "codec": "lian_nb_gas",
            },
            {
                "id": "gas-dtu",
                "type": "gas_detector",
                "location": "锅炉房",
                "codec": "dtu_variant_gas",
            },
        ],
    )
    async with (
        running_gateway(parse_config(data)) as running,
        probe_client(broker.port) as probe,
    ):
        gw = running.gw
        # What the rules are given (the reading's time is not in the API: it shows receipt).
        taken: list[Reading] = []
        on_reading = gw.engine.on_reading

        def spy(reading: Reading, now: Instant) -> Outcome:
            taken.append(reading)
            return on_reading(reading, now)

        gw.engine.on_reading = spy  # type: ignore[method-assign]
        # 1. The native contract with a vendor's `seq` and `rssi`: the 30 %LEL reaches the rules.
        await probe.publish(
            "safety/xingfu/gas-kitchen/telemetry", {"values": {"lel": 30}, "seq": 1, "rssi": -71}
        )
        await probe.wait_for("xingfu/alarms", is_alarm("gas-kitchen", "gas_leak"))
        await until(lambda: gw.metrics.ignored_fields.value == 2, what="2 fields counted")

        # 2. The 4G shape: readings under `data`, the site's wall-clock time, its status.
        sent_at = int(time.time()) - 60
        local = datetime.fromtimestamp(sent_at, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        await probe.publish(
            "safety/xingfu/gas-4g/telemetry",
            {
                "imei": "866123045678901",
                "seq": 17,
                "time": local,
                "status": "online",
                "data": {"gas": "23", "fault": 0, "battery": 96},
            },
        )
        alarm = await probe.wait_for("xingfu/alarms", is_alarm("gas-4g", "gas_leak"))
        assert alarm["value"] == 23.0
        assert (await running.api.get("/api/devices/gas-4g")).json()["values"] == {"lel": 23.0}
        # The device's time, read in the site's zone, is the reading's time for the rules.
        assert [r.ts for r in taken if r.ref.device == "gas-4g"] == [sent_at]
        assert gw.metrics.ignored_fields.value == 4  # imei, seq

        # 3. Its required concentration missing: rejected with the path, counted, nothing else.
        missing = gw.metrics.rejected.labels("missing_field")
        before = missing._value.get()
        await probe.publish("safety/xingfu/gas-4g/telemetry", {"time": local, "data": {"fault": 1}})
        await until(lambda: missing._value.get() == before + 1, what="missing_field counted")

        # 4. The NB-IoT platform's shape: concentration and fault code under `payload`.
        await probe.publish(
            "safety/xingfu/gas-nb/telemetry",
            {
                "deviceCode": "869162052818257",
                "productId": "15017088",
                "IMEI": "869162052818257",
                "protocol": "LWM2M",
                "payload": {"gas_value": 25, "gas_sensor_state": 1, "error_code": 3},
            },
        )
        await probe.wait_for("xingfu/alarms", is_alarm("gas-nb", "gas_leak"))
        await probe.wait_for("xingfu/alarms", is_alarm("gas-nb", "device_fault"))
        assert (await running.api.get("/api/devices/gas-nb")).json()["values"] == {"lel": 25.0}
        assert gw.metrics.ignored_fields.value == 8
        metrics = (await running.api.get("/metrics")).text
        assert "gateway_ignored_fields_total 8.0" in metrics

        # 4b. A 4G DTU's "variant_data": the variables under `params`, time in milliseconds.
        dtu_at = int(time.time() * 1000) - 5_000
        await probe.publish(
            "safety/xingfu/gas-dtu/telemetry",
            {"type": "variant_data", "version": "1.0", "time": dtu_at,
             "params": {"燃气浓度": 26, "故障": 0}},
        )  # fmt: skip
        await probe.wait_for("xingfu/alarms", is_alarm("gas-dtu", "gas_leak"))
        assert [r.ts for r in taken if r.ref.device == "gas-dtu"] == [dtu_at / 1000]
        assert gw.metrics.ignored_fields.value == 10  # type, version

        # 5. Reloaded with gas-nb on the native codec: its messages are read natively at once.
        nb = next(d for d in data["sites"][0]["devices"] if d["id"] == "gas-nb")
        nb["codec"] = "native"
        assert (await reload_config(gw, write_config(tmp_path / "gateway.yaml", data))).ok
        await probe.publish("safety/xingfu/gas-nb/telemetry", {"values": {"lel": 26}})
        await until(
            lambda: [r.values for r in taken if r.ref.device == "gas-nb"][-1] == {"lel": 26.0},
            what="gas-nb read natively after the reload",
        )
