"""MQTT ingest against a real Mosquitto: events, availability, bad input, broker outages."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.loading import parse_config
from rules.model import DeviceRef
from tests.conftest import (
    Mosquitto,
    Probe,
    RunningGateway,
    probe_client,
    running_gateway,
    site_config,
    until,
)


async def test_button_press_raises_a_latched_critical_alarm(
    gateway: RunningGateway, probe: Probe
) -> None:
    await probe.event("btn-lobby", "pressed")
    msg = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")
    assert msg["severity"] == "critical"
    assert msg["state"] == "active"
    assert msg["latched"] is True
    # Pressed again: the same alarm counts up, no second alarm.
    await probe.event("btn-lobby", "pressed")
    await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button" and m["count"] == 2)
    assert len([a for a in gateway.gw.book.open_alarms() if a.type.value == "fire_button"]) == 1
    # An event alarm is closed by a person while still active.
    r = await gateway.api.post(
        f"/api/alarms/{msg['id']}/close",
        json={"by": "王值班", "disposition": "test", "note": "演练"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["acked_by"] == "王值班", "closing implies acknowledging"


def device_with_will(port: int, device: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"dev-{device}")
    topic = f"safety/xingfu/{device}/status"
    c.will_set(topic, "offline", qos=1, retain=True)
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    c.publish(topic, "online", qos=1, retain=True).wait_for_publish(5)
    return c


async def test_device_going_offline_via_its_will(
    gateway: RunningGateway, broker: Mosquitto, probe: Probe
) -> None:
    dev = device_with_will(broker.port, "gas-kitchen")
    await until(
        lambda: gateway.gw.engine.status(_ref("gas-kitchen")).last_seen is not None,
        what="online seen",
    )
    # Power cut: the socket drops without DISCONNECT, so the broker publishes the will.
    sock = dev.socket()
    dev.loop_stop()
    assert isinstance(sock, socket.socket)
    sock.close()
    offline = await probe.wait_for(
        "xingfu/alarms", lambda m: m["type"] == "device_offline", timeout=15
    )
    assert offline["severity"] == "minor"
    assert offline["reason"] == "status_offline"
    devices = (await gateway.api.get("/api/devices", params={"site": "xingfu"})).json()
    assert next(d for d in devices if d["id"] == "gas-kitchen")["status"] == "offline"

    dev2 = device_with_will(broker.port, "gas-kitchen")
    try:
        back = await probe.wait_for(
            "xingfu/alarms", lambda m: m["type"] == "device_offline" and m["state"] == "cleared"
        )
        assert back["reason"] == "back_online"
    finally:
        dev2.disconnect()
        dev2.loop_stop()


async def test_silent_device_goes_offline_and_keeps_its_gas_alarm(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    data = site_config(tmp_path / "data", broker.port)
    data["sites"][0]["devices"][0]["report_interval"] = "0.3 s"  # offline after 0.9 s of silence
    async with running_gateway(parse_config(data)) as rg:
        await probe.telemetry("gas-kitchen", {"lel": 30.0})
        gas = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
        offline = await probe.wait_for(
            "xingfu/alarms", lambda m: m["type"] == "device_offline", timeout=5
        )
        assert offline["device"] == "gas-kitchen"
        assert offline["reason"] == "silent"
        await asyncio.sleep(0.5)  # silence must not clear it: a bounded look, the behaviour tested
        still = rg.gw.book.get(gas["id"])
        assert still is not None and still.state.value == "active", "silence never clears an alarm"


BAD_INPUTS: list[tuple[str, str, bytes, str]] = [
    # (case, topic, payload, reason counted)
    ("malformed", "safety/xingfu/gas-kitchen/telemetry", b'{"values": {"lel": 1', "malformed_json"),
    ("not json", "safety/xingfu/gas-kitchen/telemetry", b"\xff\xfe\x00garbage", "malformed_json"),
    (
        "wrong type",
        "safety/xingfu/gas-kitchen/telemetry",
        b'{"values": {"lel": "high"}}',
        "wrong_type",
    ),
    ("values list", "safety/xingfu/gas-kitchen/telemetry", b'{"values": [1, 2]}', "wrong_type"),
    ("nan", "safety/xingfu/gas-kitchen/telemetry", b'{"values": {"lel": NaN}}', "not_finite"),
    ("inf", "safety/xingfu/gas-kitchen/telemetry", b'{"values": {"lel": 1e999}}', "not_finite"),
    (
        "out of range",
        "safety/xingfu/efm-1/telemetry",
        b'{"values": {"residual_ma": -40}}',
        "out_of_range",
    ),
    (
        "lel absurd",
        "safety/xingfu/gas-kitchen/telemetry",
        b'{"values": {"lel": 99999}}',
        "out_of_range",
    ),
    (
        "unknown device",
        "safety/xingfu/ghost/telemetry",
        b'{"values": {"lel": 50}}',
        "unknown_device",
    ),
    (
        "unknown site",
        "safety/nowhere/gas-kitchen/telemetry",
        b'{"values": {"lel": 50}}',
        "unknown_device",
    ),
    ("unknown event", "safety/xingfu/btn-lobby/event", b'{"event": "party"}', "unknown_event"),
    ("bad status", "safety/xingfu/btn-lobby/status", b"maybe", "wrong_type"),
    ("empty", "safety/xingfu/gas-kitchen/telemetry", b"", "empty"),
    (
        "oversize",
        "safety/xingfu/gas-kitchen/telemetry",
        b'{"values": {"lel": 1}, "pad": "' + b"x" * 20_000 + b'"}',
        "oversize",
    ),
]


async def test_every_bad_input_is_rejected_counted_and_harmless(
    gateway: RunningGateway, probe: Probe
) -> None:
    for _case, topic, payload, _reason in BAD_INPUTS:
        await probe.publish(topic, payload)
    expected: dict[str, int] = {}
    for *_, reason in BAD_INPUTS:
        expected[reason] = expected.get(reason, 0) + 1

    def counted() -> bool:
        return all(gateway.gw.rejects.by_reason.get(r, 0) >= n for r, n in expected.items())

    await until(counted, what=f"rejections {expected}, got {gateway.gw.rejects.by_reason}")
    assert gateway.gw.rejects.by_reason == expected
    assert not list(gateway.gw.book.open_alarms()), "bad input raised no alarm"

    health = (await gateway.api.get("/api/health")).json()
    assert health["rejected"] == expected
    assert health["internal_errors"] == 0
    metrics = (await gateway.api.get("/metrics")).text
    for reason, n in expected.items():
        assert f'gateway_rejected_total{{reason="{reason}"}} {float(n)}' in metrics

    # ...and the gateway still protects: a real leak right after is handled.
    await probe.telemetry("gas-kitchen", {"lel": 40.0})
    await probe.wait_for("valve-kitchen/cmd")


async def test_one_bad_channel_does_not_hide_the_good_ones(
    gateway: RunningGateway, probe: Probe
) -> None:
    await probe.publish(
        "safety/xingfu/efm-1/telemetry",
        b'{"values": {"temp_c_1": NaN, "residual_ma": 450, "rssi": -70}}',
    )
    # NaN makes the whole JSON invalid for a strict parser: that message is rejected whole...
    await until(lambda: gateway.gw.rejects.by_reason.get("not_finite"), what="nan counted")
    # ...but a well-formed one with a bad quantity keeps the good quantity.
    await probe.publish(
        "safety/xingfu/efm-1/telemetry",
        b'{"values": {"temp_c_1": "hot", "residual_ma": 450, "rssi": -70}}',
    )
    await until(
        lambda: gateway.gw.engine.status(_ref("efm-1")).values.get("residual_ma"),
        what="residual kept",
    )
    assert gateway.gw.rejects.by_reason["wrong_type"] == 1
    assert gateway.gw.rejects.by_reason["unknown_quantity"] == 1


async def test_broker_outage_is_reported_and_survived(
    gateway: RunningGateway, broker: Mosquitto, probe: Probe
) -> None:
    broker.stop()
    await until(lambda: not gateway.gw.link.health.connected, what="disconnect noticed")
    health = (await gateway.api.get("/api/health")).json()
    assert health["status"] == "degraded"
    assert health["broker"]["connected"] is False
    assert health["broker"]["last_error"]
    assert b"gateway_mqtt_connected 0.0" in (await gateway.api.get("/metrics")).content

    broker.start()
    await until(lambda: gateway.gw.link.health.connected, timeout=40, what="reconnected")
    health = (await gateway.api.get("/api/health")).json()
    assert health["broker"]["connected"] is True
    assert health["broker"]["reconnects"] == 1
    assert health["status"] == "ok"

    # Everything works again (the broker lost its sessions: a fresh probe is needed).
    async with probe_client(broker.port) as p2:
        await p2.event("btn-lobby", "pressed")
        await p2.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")


async def test_message_published_while_gateway_is_down_is_processed(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    config = parse_config(site_config(tmp_path / "data", broker.port))
    async with running_gateway(config):
        pass  # first start: the broker learns the persistent session and its subscriptions
    await probe.event("btn-lobby", "pressed")
    await probe.telemetry("gas-kitchen", {"lel": 33.0})  # QoS 1, acknowledged: the broker has them
    async with running_gateway(config) as rg:
        alarms = await until(
            lambda: {a.type.value for a in rg.gw.book.open_alarms()} >= {"fire_button", "gas_leak"},
            what="both queued messages processed",
        )
        assert alarms
        await probe.wait_for("valve-kitchen/cmd")


async def test_live_feed_and_metrics_over_http(gateway: RunningGateway, probe: Probe) -> None:
    r = await gateway.api.get("/api/sites")
    assert r.json()[0]["id"] == "xingfu"
    assert r.json()[0]["devices"] == 5
    r = await gateway.api.get("/api/devices/gas-kitchen")
    assert r.json()["status"] == "unknown"
    await probe.telemetry("gas-kitchen", {"lel": 2.5})
    await until(lambda: gateway.gw.engine.status(_ref("gas-kitchen")).last_seen, what="reading")
    device = (await gateway.api.get("/api/devices/gas-kitchen")).json()
    assert device["status"] == "online"
    assert device["values"] == {"lel": 2.5}
    assert (await gateway.api.get("/api/devices/ghost")).status_code == 404
    assert (await gateway.api.get("/api/alarms", params={"state": "bogus"})).status_code == 422
    assert (await gateway.api.get("/api/alarms", params={"since": "yesterday"})).status_code == 422


def _ref(device: str) -> DeviceRef:
    return DeviceRef("xingfu", device)


async def test_gateway_stops_promptly_while_publishing(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    """Shutdown must end even when a cancel lands mid-publish (a Python 3.11 wait_for race)."""
    config = parse_config(site_config(tmp_path / "data", broker.port))

    async def start_publish_stop() -> None:
        async with running_gateway(config) as rg:
            for _ in range(20):
                await probe.event("btn-lobby", "pressed")
            await until(lambda: rg.gw.link.health.published > 0, what="publishing under way")

    for _ in range(5):
        # A liveness bound, not a performance target: a hang fails instead of stalling CI.
        await asyncio.wait_for(start_publish_stop(), timeout=30)


async def test_shutdown_commits_everything_accepted(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    config = parse_config(site_config(tmp_path / "data", broker.port))
    async with running_gateway(config) as rg:
        await probe.event("btn-lobby", "pressed")
        await until(lambda: list(rg.gw.book.open_alarms()), what="alarm in memory")
        alarm_id = next(iter(rg.gw.book.open_alarms())).id
    # The store is closed now; a new gateway on the same data dir finds the alarm.
    async with running_gateway(config) as rg2:
        assert rg2.gw.book.get(alarm_id) is not None
