"""Bursts against a real Mosquitto: the link holds, the alarm lane overtakes, backlog replays.

The speeds are measured by bench/burst.py; these tests check the rules of behaviour with
conditions, not times: a button press is an alarm while the burst is still being taken; the
gateway's own publications are acknowledged meanwhile; a reading published after a restart
closes its valve before the backlog is through, and the older backlog does not undo it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench.harness import build_publisher, publish_burst
from gateway.config.loading import parse_config
from tests.conftest import (
    Mosquitto,
    Probe,
    probe_client,
    running_gateway,
    site_config,
    until,
)

BULK = 200  # gas detectors the burst goes round


@pytest.fixture
async def probe(broker: Mosquitto) -> AsyncIterator[Probe]:
    """Only what the tests look at: a probe on `safety/#` would take the whole burst too."""
    async with probe_client(broker.port, ("safety/xingfu/alarms", "safety/xingfu/+/cmd")) as p:
        yield p


@pytest.fixture(scope="session")
def burst_pub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_publisher(tmp_path_factory.mktemp("publisher"))


def burst_config(tmp_path: Path, port: int) -> dict[str, Any]:
    data = site_config(tmp_path / "data", port)
    data["sites"][0]["devices"] += [
        {"id": f"bulk-{i}", "type": "gas_detector", "location": f"room {i}"} for i in range(BULK)
    ]
    return data


def telemetry_processed(rg: Any) -> float:
    return float(rg.gw.metrics.messages.get("telemetry"))


async def test_during_a_burst_the_link_holds_and_presses_and_publications_overtake_it(
    tmp_path: Path, broker: Mosquitto, probe: Probe, burst_pub: Path
) -> None:
    n = 100_000
    async with running_gateway(parse_config(burst_config(tmp_path, broker.port))) as rg:
        await until(lambda: not rg.gw.link.catchup.active, what="start-up catch-up over")
        link = rg.gw.link
        proc = publish_burst(
            burst_pub, broker.port, 1, n, BULK, "safety/xingfu/bulk-%d/telemetry", wait=False
        )
        await until(lambda: telemetry_processed(rg) > 2_000, timeout=30, what="burst flowing")
        # Presses of a button: each an alarm change the gateway publishes (QoS 1) and must
        # have acknowledged by the broker, whose PUBACKs once queued behind the burst.
        for _ in range(20):
            await probe.event("btn-lobby", "pressed")
        await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")
        await until(
            lambda: link.outbox_depth == 0 and link.health.published >= 20,
            timeout=30,
            what="our publications acknowledged",
        )
        taken = telemetry_processed(rg)
        assert taken < n, f"the press waited for the whole burst ({taken:.0f} of {n} taken)"
        proc.wait(60)
        await until(lambda: telemetry_processed(rg) >= n, timeout=120, what="the whole burst")
        health = (await rg.api.get("/api/health")).json()["broker"]
    assert telemetry_processed(rg) == n, "each reading processed once"
    assert health["reconnects"] == 0 and health["lane_reconnects"] == {}, health
    alarm = [m for m in probe.messages("xingfu/alarms") if m["type"] == "fire_button"][-1]
    assert alarm["count"] >= 20


async def test_after_a_restart_a_live_reading_overtakes_the_backlog_which_never_undoes_it(
    tmp_path: Path, broker: Mosquitto, probe: Probe, burst_pub: Path
) -> None:
    config = parse_config(burst_config(tmp_path, broker.port))
    async with running_gateway(config):
        pass  # first start: the broker learns the persistent sessions and subscriptions
    backlog = 40_000
    old_ms = int(time.time() * 1000) - 600_000
    publish_burst(burst_pub, broker.port, 1, backlog, BULK, "safety/xingfu/bulk-%d/telemetry")
    for i in range(3):  # old all-clear readings of the kitchen, at the end of the backlog
        await probe.publish(
            "safety/xingfu/gas-kitchen/telemetry", {"ts": old_ms + i, "values": {"lel": 0.0}}
        )
    async with running_gateway(config) as rg:
        await probe.publish(
            "safety/xingfu/gas-kitchen/telemetry",
            {"ts": int(time.time() * 1000), "values": {"lel": 35.0}},
        )
        cmd = await probe.wait_for("valve-kitchen/cmd", timeout=30)
        assert cmd["cmd"] == "close_valve"
        taken = telemetry_processed(rg)
        assert taken < backlog, f"the live reading waited for the backlog ({taken:.0f})"
        await until(
            lambda: telemetry_processed(rg) + skipped(rg) >= backlog + 4,
            timeout=120,
            what="the backlog drained",
        )
        alarms = (await rg.api.get("/api/alarms", params={"state": "active"})).json()
        health = (await rg.api.get("/api/health")).json()["broker"]
    gas = [a for a in alarms if a["type"] == "gas_leak"]
    assert gas and gas[0]["state"] == "active", "the old readings did not clear the alarm"
    assert skipped(rg) == 3, "the three older readings went to history, not to the rules"
    assert health["reconnects"] == 0 and health["lane_reconnects"] == {}, health
    assert health["catchup"]["backlog_messages"] >= backlog


def skipped(rg: Any) -> float:
    return float(rg.gw.metrics.messages.get("telemetry_backlog"))


async def test_a_message_too_large_to_take_is_dropped_at_the_socket_and_the_lane_goes_on(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    async with running_gateway(parse_config(site_config(tmp_path / "data", broker.port))) as rg:
        await probe.publish("safety/xingfu/gas-kitchen/telemetry", b"{" + b" " * 5_000_000 + b"}")
        await probe.telemetry("gas-kitchen", {"lel": 35.0})
        cmd = await probe.wait_for("valve-kitchen/cmd", timeout=30)
        assert cmd["cmd"] == "close_valve", "the reading behind the huge one was taken"
        health = (await rg.api.get("/api/health")).json()["broker"]
    assert health["oversize_dropped"] >= 1
    assert health["reconnects"] == 0 and health["lane_reconnects"] == {}, health
