"""The bureau feed through the whole gateway: real Mosquitto, real VictoriaMetrics.

Every point is verified by reading it back through VictoriaMetrics' export API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config.loading import parse_config
from rules.model import DeviceRef
from tests.conftest import Mosquitto, Probe, VictoriaMetrics, running_gateway, site_config, until
from tests.support.bureau import bureau


def influx(vm: VictoriaMetrics, **extra: Any) -> dict[str, Any]:
    return {"url": vm.url, "org": "minzheng", "bucket": "safety", "batch_size": 50,
            "flush_interval": "100 ms", **extra}  # fmt: skip


def lel_values(vm: VictoriaMetrics, expect: int, site: str = "xingfu") -> list[float]:
    """The stored gas readings, once `expect` are visible (VictoriaMetrics makes a new series
    searchable a moment after it is written); extras would show as duplicates."""
    match = f'reading_lel{{site="{site}",device="gas-kitchen"}}'
    deadline = time.monotonic() + 10
    while True:
        values = [s[3] for s in vm.samples(match)]
        if len(values) >= expect or time.monotonic() > deadline:
            time.sleep(0.5)  # and a little longer, so that a duplicate would show too
            return [s[3] for s in vm.samples(match)]
        time.sleep(0.1)


async def test_readings_alarms_and_status_reach_the_server(
    tmp_path: Path, broker: Mosquitto, probe: Probe, vm: VictoriaMetrics
) -> None:
    data = site_config(tmp_path / "data", broker.port)
    data["influx"] = influx(vm)
    async with running_gateway(parse_config(data)) as rg:
        for i in range(10):
            await probe.telemetry("gas-kitchen", {"lel": float(i)})
        await probe.telemetry("efm-1", {"residual_ma": 55.0, "temp_c_2": 31.5})
        await probe.telemetry("gas-kitchen", {"lel": 30.0})
        await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
        await until(
            lambda: rg.gw.timeseries is not None and rg.gw.timeseries.stats()["written"] >= 13,
            what="written",
        )
        health = (await rg.api.get("/api/health")).json()
        assert health["timeseries"]["connected"] is True
    assert sorted(lel_values(vm, 11)) == [float(i) for i in range(10)] + [30.0]
    efm = vm.samples('{__name__=~"reading_(residual_ma|temp_c_2)",device="efm-1"}')
    assert {(s[0], s[3]) for s in efm} == {
        ("reading_residual_ma", 55.0),
        ("reading_temp_c_2", 31.5),
    }
    assert dict(efm[0][1])["type"] == "electrical_fire_monitor"
    alarms = vm.samples('alarm_state_code{alarm_type="gas_leak"}')
    assert alarms and alarms[0][3] == 2.0  # active
    assert vm.samples('alarm_value{alarm_type="gas_leak"}')[0][3] == 30.0
    assert vm.samples('device_status_online{device="gas-kitchen"}'), "status points written"


async def test_outage_across_a_gateway_restart_loses_nothing(
    tmp_path: Path, broker: Mosquitto, probe: Probe, vm: VictoriaMetrics
) -> None:
    data = site_config(tmp_path / "data", broker.port)
    data["influx"] = influx(vm, timeout="1 s")
    config = parse_config(data)
    sent: list[float] = []

    async def stream(n: int) -> None:
        for _ in range(n):
            value = round(len(sent) * 0.1, 1)
            sent.append(value)
            await probe.telemetry("gas-kitchen", {"lel": value})
            await asyncio.sleep(0.01)

    async with running_gateway(config) as rg:
        await stream(20)
        vm.stop()  # the bureau's server goes away in the middle of the stream
        await stream(20)
        await until(lambda: rg.gw.link.health.received >= 40, what="all taken")
    async with running_gateway(config) as rg:  # restarted while the server is down
        await stream(20)
        await until(lambda: rg.gw.link.health.received >= 20, what="all taken")
        assert rg.gw.timeseries is not None
        await until(
            lambda: rg.gw.timeseries.stats()["outbox_points"] > 0, what="kept in the outbox"
        )
        vm.start()  # back: the outbox drains in order
        await until(
            lambda: rg.gw.timeseries.stats()["outbox_points"] == 0, timeout=30, what="replayed"
        )
    assert sorted(lel_values(vm, len(sent))) == sorted(sent), (
        "every point once: none lost, none twice"
    )


async def test_a_reading_bridged_to_the_bureau_is_written_once(
    tmp_path: Path, vm: VictoriaMetrics, brokers: Callable[..., Mosquitto]
) -> None:
    """The edge writes its site's time series; the central gateway, which sees the same
    readings over the bridge, does not write them again."""
    async with bureau(tmp_path, brokers, influx=influx(vm)) as b:
        await b.at_site.telemetry("gas-kitchen", {"lel": 4.25})
        await b.at_bureau.wait_for("gas-kitchen/telemetry")  # the bureau got it too

        def seen_at_bureau() -> bool:
            view = b.central.gw.device_view(DeviceRef("xingfu", "gas-kitchen"))
            return view is not None and view["values"].get("lel") == 4.25

        await until(seen_at_bureau, what="the reading processed at the bureau")
        edge_feed = b.edge.gw.timeseries
        assert edge_feed is not None
        await until(lambda: edge_feed.stats()["written"] >= 1, what="edge wrote")
        await asyncio.sleep(0.5)  # give the bureau's feed every chance to write it too
    assert lel_values(vm, 1) == [4.25], "exactly once"


async def test_a_full_outbox_is_shown_in_health_and_metrics_and_keeps_the_alarms(
    tmp_path: Path, broker: Mosquitto, probe: Probe, vm: VictoriaMetrics
) -> None:
    """The server is down and the outbox bound is reached: the oldest readings are dropped,
    counted in /api/health and /metrics; alarm points stay; protection goes on meanwhile."""
    vm.stop()
    data = site_config(tmp_path / "data", broker.port)
    data["influx"] = influx(vm, timeout="1 s", outbox_max_points=1000, batch_size=200)
    async with running_gateway(parse_config(data)) as rg:
        assert rg.gw.timeseries is not None
        feed = rg.gw.timeseries
        await probe.telemetry("gas-kitchen", {"lel": 30.0})  # an alarm point, first of all
        cmd = await probe.wait_for("valve-kitchen/cmd")
        assert cmd["cmd"] == "close_valve", "shut-off does not wait on the feed"
        for i in range(1500):
            await probe.telemetry("efm-1", {"residual_ma": float(i % 100)})
        await until(lambda: rg.gw.link.health.received >= 1501, timeout=30, what="all taken")
        stats = await until(
            lambda: (s := feed.stats())["dropped_readings"] > 0 and s["buffered"] == 0 and s,
            timeout=30,
            what="readings dropped from the full outbox",
        )
        assert stats["outbox"]["alarms"] >= 1, "alarm points are never dropped"
        assert stats["outbox_points"] <= 1000 + stats["outbox"]["alarms"]
        health = (await rg.api.get("/api/health")).json()["timeseries"]
        assert health["connected"] is False
        assert health["dropped_readings"] == stats["dropped_readings"]
        assert health["outbox"]["alarms"] == stats["outbox"]["alarms"]
        metrics = (await rg.api.get("/metrics")).text
        line = next(
            ln
            for ln in metrics.splitlines()
            if ln.startswith("gateway_timeseries_dropped_readings ")
        )
        assert float(line.split()[1]) == stats["dropped_readings"]
        vm.start()  # back: what is left arrives, the alarm among it
        await until(lambda: feed.stats()["outbox_points"] == 0, timeout=30, what="replayed")
    # VictoriaMetrics makes a new series searchable a moment after the write
    await until(
        lambda: vm.samples('alarm_state_code{alarm_type="gas_leak"}'),
        what="the alarm point arrived",
    )
