"""Gas leak end to end over a real Mosquitto: alarm, shut-off, confirmation, people's actions."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.config.loading import parse_config
from tests.conftest import Mosquitto, Probe, RunningGateway, running_gateway, site_config, until


def open_alarms(rg: RunningGateway, type_: str) -> list[Any]:
    return [a for a in rg.gw.book.open_alarms() if a.type.value == type_]


async def test_gas_leak_raises_critical_alarm_and_closes_the_valve(
    gateway: RunningGateway, probe: Probe
) -> None:
    await probe.telemetry("gas-kitchen", {"lel": 3.0})
    await probe.telemetry("gas-kitchen", {"lel": 24.5})

    cmd = await probe.wait_for("valve-kitchen/cmd")
    assert cmd["cmd"] == "close_valve"
    alarm = await until(lambda: open_alarms(gateway, "gas_leak"), what="gas alarm")
    assert cmd["reason"] == alarm[0].id, "the command names the alarm that caused it"

    published = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
    assert published["severity"] == "critical"
    assert published["state"] == "active"
    assert published["value"] == 24.5
    assert published["location"] == "一楼厨房"

    # The valve acknowledges: the confirmation lands on the alarm's timeline.
    await probe.publish("safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True})
    await probe.telemetry("valve-kitchen", {"open": 0})

    async def timeline() -> list[str]:
        r = await gateway.api.get(f"/api/alarms/{alarm[0].id}")
        return [e["action"] for e in r.json()["timeline"]]

    await until(
        lambda: "command_result" in [e.action.value for e in alarm[0].timeline],
        what="ack on timeline",
    )
    actions = await timeline()
    assert actions[:3] == ["raised", "command_sent", "command_result"]
    # No valve failure: the valve confirmed in time.
    await probe.telemetry("gas-kitchen", {"lel": 25.0})
    assert not open_alarms(gateway, "valve_failure")


async def test_pre_alarm_warns_without_closing_the_valve(
    gateway: RunningGateway, probe: Probe
) -> None:
    await probe.telemetry("gas-kitchen", {"lel": 12.0})
    await probe.telemetry("valve-kitchen", {"open": 1})
    published = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
    assert published["severity"] == "warning"
    assert published["level"] == "pre_alarm"
    await probe.telemetry("gas-kitchen", {"lel": 13.0})
    await until(lambda: gateway.gw.link.health.received >= 3, what="messages processed")
    assert probe.messages("valve-kitchen/cmd") == []


async def test_unconfirmed_shutoff_raises_valve_failure(
    gateway: RunningGateway, probe: Probe
) -> None:
    # valve_confirm_timeout is 2 s in the test config; this valve never answers.
    await probe.telemetry("gas-kitchen", {"lel": 30.0})
    await probe.wait_for("valve-kitchen/cmd")
    failure = await probe.wait_for(
        "xingfu/alarms", lambda m: m["type"] == "valve_failure", timeout=10
    )
    assert failure["severity"] == "critical"
    assert failure["device"] == "valve-kitchen"
    assert failure["reason"] == "valve_not_confirmed"
    # The close is re-sent at once when the deadline passes.
    await until(lambda: len(probe.messages("valve-kitchen/cmd")) >= 2, what="close re-sent")
    assert {m["cmd"] for m in probe.messages("valve-kitchen/cmd")} == {"close_valve"}
    # Late feedback that the valve is closed clears the failure.
    await probe.telemetry("valve-kitchen", {"open": 0})
    await probe.wait_for(
        "xingfu/alarms", lambda m: m["type"] == "valve_failure" and m["state"] == "cleared"
    )


async def test_refused_close_raises_valve_failure_at_once(
    gateway: RunningGateway, probe: Probe
) -> None:
    await probe.telemetry("gas-kitchen", {"lel": 30.0})
    cmd = await probe.wait_for("valve-kitchen/cmd")
    await probe.publish(
        "safety/xingfu/valve-kitchen/cmd/ack",
        {"id": cmd["id"], "ok": False, "detail": "motor jammed"},
    )
    failure = await probe.wait_for(
        "xingfu/alarms", lambda m: m["type"] == "valve_failure", timeout=1.5
    )
    assert failure["reason"] == "valve_refused"


async def test_ack_close_and_manual_reopen_through_the_api(
    tmp_path: Any, broker: Mosquitto, probe: Probe
) -> None:
    data = site_config(
        tmp_path / "data",
        broker.port,
        rules={"defaults": {"gas_detector": {"gas_leak": {"off_delay": "1 s"}}}},
    )
    data["sites"][0]["local_networks"] = ["127.0.0.0/8"]  # open_valve: the test is on site
    async with running_gateway(parse_config(data)) as gateway:
        api = gateway.api
        await probe.telemetry("gas-kitchen", {"lel": 26.0})
        cmd = await probe.wait_for("valve-kitchen/cmd")
        await probe.publish("safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True})
        alarm = (await until(lambda: open_alarms(gateway, "gas_leak")))[0]

        listed = (await api.get("/api/alarms", params={"state": "active", "site": "xingfu"})).json()
        assert [a["id"] for a in listed if a["type"] == "gas_leak"] == [alarm.id]

        # Reopening gas is refused while the alarm is open, whatever its state.
        r = await api.post(
            "/api/devices/valve-kitchen/commands", json={"by": "王值班", "cmd": "open_valve"}
        )
        assert r.status_code == 409, r.text
        assert "gas alarm" in r.json()["error"]

        close_body = {"by": "王值班", "disposition": "real", "note": "关阀通风"}
        r = await api.post(f"/api/alarms/{alarm.id}/close", json=close_body)
        assert r.status_code == 409, (
            "a threshold alarm cannot be closed while its condition is active"
        )
        assert "still active" in r.json()["error"]

        r = await api.post(f"/api/alarms/{alarm.id}/ack", json={"by": "王值班", "note": "到场处置"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["acked"] is True
        assert body["acked_by"] == "王值班"
        assert body["acked_at"].endswith("+08:00")
        assert (
            await api.post(f"/api/alarms/{alarm.id}/ack", json={"by": "李四"})
        ).status_code == 409

        # The gas disperses; inside the 1 s off-delay the alarm is still active.
        await probe.telemetry("gas-kitchen", {"lel": 1.0})
        await probe.wait_for("xingfu/alarms", lambda m: m["change"] == "acked")
        assert (await api.post(f"/api/alarms/{alarm.id}/close", json=close_body)).status_code == 409
        await probe.wait_for(
            "xingfu/alarms", lambda m: m["id"] == alarm.id and m["state"] == "cleared", timeout=5
        )

        r = await api.post(f"/api/alarms/{alarm.id}/close", json=close_body)
        assert r.status_code == 200, r.text
        closed = r.json()
        assert closed["state"] == "closed"
        assert closed["disposition"] == "real"
        assert closed["closed_by"] == "王值班"
        assert closed["peak"] == 26.0
        assert [e["action"] for e in closed["timeline"]][-3:] == ["acked", "cleared", "closed"]
        assert {e["actor"] for e in closed["timeline"]} == {"system", "王值班"}

        r = await api.post(f"/api/alarms/{alarm.id}/close", json=close_body)
        assert r.status_code == 409
        assert (await api.get("/api/alarms", params={"state": "closed"})).json()[0][
            "id"
        ] == alarm.id
        assert (await api.get(f"/api/alarms/{alarm.id}")).json()["state"] == "closed"

        # Now a person may reopen, and only a person: the gateway never sent open_valve itself.
        assert {m["cmd"] for m in probe.messages("valve-kitchen/cmd")} == {"close_valve"}
        r = await api.post(
            "/api/devices/valve-kitchen/commands", json={"by": "王值班", "cmd": "open_valve"}
        )
        assert r.status_code == 202, r.text
        reopen = await probe.wait_for("valve-kitchen/cmd", lambda m: m["cmd"] == "open_valve")
        assert reopen["id"] == r.json()["id"]


async def test_bad_commands_are_refused_clearly(gateway: RunningGateway) -> None:
    api = gateway.api
    r = await api.post(
        "/api/devices/btn-lobby/commands", json={"by": "王值班", "cmd": "close_valve"}
    )
    assert r.status_code == 400
    r = await api.post("/api/devices/nope/commands", json={"by": "王值班", "cmd": "close_valve"})
    assert r.status_code == 404
    r = await api.post("/api/devices/valve-kitchen/commands", json={"by": "", "cmd": "close_valve"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid request"
    r = await api.post("/api/devices/valve-kitchen/commands", json={"by": "x", "cmd": "explode"})
    assert r.status_code == 422
    r = await api.post("/api/alarms/does-not-exist/ack", json={"by": "x"})
    assert r.status_code == 404


async def test_shutoff_and_alarms_do_not_wait_on_a_failing_store(
    gateway: RunningGateway, probe: Probe, tmp_path: Any
) -> None:
    """A locked database (another writer, a full disk) must not delay the valve, the alarm
    or its publication; the store catches up when it can, and health says what is going on
    meanwhile."""
    db = gateway.gw.store._path
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        await probe.event("btn-lobby", "pressed")
        await until(lambda: not gateway.gw.store.healthy, timeout=15, what="store failing")
        health = (await gateway.api.get("/api/health")).json()
        assert health["status"] == "degraded"
        assert health["store"]["healthy"] is False
        assert "locked" in health["store"]["last_error"]
        # With the store down, a gas leak still closes the valve at once...
        await probe.telemetry("gas-kitchen", {"lel": 45.0})
        cmd = await probe.wait_for("valve-kitchen/cmd", timeout=2)
        assert cmd["cmd"] == "close_valve"
        # ...the alarm is live in memory and in the API...
        listed = (await gateway.api.get("/api/alarms", params={"state": "active"})).json()
        assert {a["type"] for a in listed} == {"fire_button", "gas_leak"}
        # ...and published at once: people hear of it before the disk has it.
        await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak", timeout=5)
        button = await probe.wait_for(
            "xingfu/alarms", lambda m: m["type"] == "fire_button", timeout=5
        )
        told = len(probe.messages("xingfu/alarms"))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await until(lambda: gateway.gw.store.healthy, what="store healthy again")
    # A later change, published after its commit: anything published again at the retried
    # commit would have come before it on the same lane.
    r = await gateway.api.post(f"/api/alarms/{button['id']}/ack", json={"by": "王值班"})
    assert r.status_code == 200, r.text
    await probe.wait_for("xingfu/alarms", lambda m: m["id"] == button["id"] and m["acked"])
    assert len(probe.messages("xingfu/alarms")) == told + 1, "nothing published twice"
    assert (await gateway.api.get("/api/health")).json()["status"] == "ok"
    stored = await gateway.gw.store.query(states=["active"])
    assert {a.type.value for a in stored} == {"fire_button", "gas_leak"}
