"""Configuration reload with a real gateway process and a real broker: SIGHUP and
`safety-gateway reload` read the file again; devices come and go without a restart, open
alarms and their pending escalation stay, an invalid file is refused and the running
configuration keeps working."""

from __future__ import annotations

import asyncio
import copy
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import (
    GatewayProcess,
    Mosquitto,
    Probe,
    free_port,
    site_config,
    until,
    write_config,
)
from tests.support.providers import LEGAL, SAFETY, notify_config, providers

GAS_NEW = {"id": "gas-new", "type": "gas_detector", "location": "二楼茶水间"}


class Health:
    def __init__(self, base: str) -> None:
        self.base = base
        self.last: dict[str, Any] = {}

    async def get(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base) as c:
            self.last = (await c.get("/api/health")).json()
        return self.last

    async def wait(
        self, what: str, ok: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """Poll health until `ok` holds, bounded by `timeout`."""
        deadline = time.monotonic() + timeout
        while not ok(await self.get()):
            if time.monotonic() > deadline:
                raise AssertionError(f"health never showed {what}: {self.last}")
            await asyncio.sleep(0.05)
        return self.last


def reloaded_after(at: str | None) -> Callable[[dict[str, Any]], bool]:
    def check(h: dict[str, Any]) -> bool:
        last = h["config"]["last_reload"]
        return last is not None and last["at"] != at

    return check


def last_reload_at(h: dict[str, Any]) -> str | None:
    last = h["config"]["last_reload"]
    return None if last is None else str(last["at"])


def rejected_unknown(h: dict[str, Any]) -> int:
    return int(h["rejected"].get("unknown_device", 0))


@pytest.mark.usefixtures("provider_secrets")
async def test_sighup_adds_and_removes_devices_keeping_an_open_alarm_and_its_escalation(
    tmp_path: Path, broker: Mosquitto, probe: Probe, gateway_process: GatewayProcess
) -> None:
    port = free_port()
    async with providers() as p:
        data = site_config(tmp_path / "data", broker.port, http={"host": "127.0.0.1", "port": port})
        data["notify"] = notify_config(
            p,
            default_policy=False,
            policies={
                "critical": [
                    {"after": "0 s", "to": ["legal_representative"], "channels": ["sms-aliyun"]},
                    {"after": "8 s", "to": ["safety_manager"], "channels": ["sms-aliyun"]},
                ]
            },
        )
        cfg = write_config(tmp_path / "gateway.yaml", data)
        health = Health(f"http://127.0.0.1:{port}")
        log = tmp_path / "gateway.log"
        with gateway_process(cfg, port, log) as proc:
            h = await health.wait("the broker connected", lambda h: h["broker"]["connected"])
            assert h["config"]["path"] == str(cfg.resolve()) and h["config"]["last_reload"] is None
            # Not configured yet: rejected as unknown; efm-1 is (and its topic is routed).
            await probe.telemetry("gas-new", {"lel": 30.0})
            await probe.telemetry("efm-1", {"residual_ma": 10.0})
            await health.wait("gas-new rejected", lambda h: rejected_unknown(h) == 1)
            await health.wait("efm-1 heard", lambda h: h["devices"]["online"] >= 1)
            # An open alarm on a device the reload leaves alone, its second step pending.
            await probe.event("btn-lobby", "pressed")
            button = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")
            await until(lambda: p.sms_to(LEGAL), what="the first step")
            await health.wait("a pending step", lambda h: h["notifications"]["pending_steps"] == 1)

            new = copy.deepcopy(data)
            devices = new["sites"][0]["devices"]
            devices.append(GAS_NEW)
            devices[:] = [d for d in devices if d["id"] != "efm-1"]
            write_config(cfg, new)
            proc.send_signal(signal.SIGHUP)
            h = await health.wait("the reload", reloaded_after(None))
            last = h["config"]["last_reload"]
            assert last["ok"] is True and last["errors"] == []
            assert last["devices_added"] == ["xingfu/gas-new"]
            assert last["devices_removed"] == ["xingfu/efm-1"]
            assert last["needs_restart"] == []
            assert h["status"] == "ok" and h["devices"]["total"] == 5

            # The added device's telemetry raises its alarm...
            await probe.telemetry("gas-new", {"lel": 30.0})
            gas = await probe.wait_for(
                "xingfu/alarms", lambda m: m["type"] == "gas_leak" and m["device"] == "gas-new"
            )
            assert gas["state"] == "active"
            # ...the removed one's is rejected as unknown.
            await probe.telemetry("efm-1", {"residual_ma": 900.0})
            await health.wait("efm-1 rejected", lambda h: rejected_unknown(h) == 2)
            # The open alarm is the same one, and its pending step goes out once, on time.
            async with httpx.AsyncClient(base_url=health.base) as c:
                active = (await c.get("/api/alarms", params={"state": "active"})).json()
            assert button["id"] in {a["id"] for a in active}
            await until(lambda: p.sms_to(SAFETY), timeout=20, what="the pending second step")
            params = orjson.loads(p.sms_to(SAFETY)[0].form()["TemplateParam"])
            assert params["location"] == "大厅"  # the button's step, not gas-new's own
            assert len(p.sms_to(LEGAL)) == 1, "the step sent before the reload is not repeated"
    text = log.read_text()
    assert "reloaded: devices added: xingfu/gas-new; devices removed: xingfu/efm-1" in text
    assert "Traceback" not in text


async def test_invalid_file_is_refused_and_reload_command_exit_codes(
    tmp_path: Path,
    broker: Mosquitto,
    probe: Probe,
    gateway_process: GatewayProcess,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    port = free_port()
    data = site_config(tmp_path / "data", broker.port, http={"host": "127.0.0.1", "port": port})
    cfg = write_config(tmp_path / "gateway.yaml", data)
    health = Health(f"http://127.0.0.1:{port}")
    log = tmp_path / "gateway.log"
    invalid = copy.deepcopy(data)
    invalid["sites"][0]["devices"].append({**GAS_NEW, "shutoff_valve": "no-such-valve"})
    valid = copy.deepcopy(data)
    valid["sites"][0]["devices"].append(GAS_NEW)
    valid["http"] = {"host": "127.0.0.1", "port": free_port()}  # needs a restart

    with gateway_process(cfg, port, log) as proc:
        await health.wait("the broker connected", lambda h: h["broker"]["connected"])
        # `reload` with an invalid file: its errors, exit 2, and the gateway is not bothered.
        write_config(cfg, invalid)
        r = run_cli("reload", "-c", str(cfg))
        assert r.returncode == 2, r.stderr
        assert "shutoff_valve: unknown device 'no-such-valve'" in r.stderr
        assert (await health.get())["config"]["last_reload"] is None

        # SIGHUP with that file: refused, with its errors in health and the log.
        proc.send_signal(signal.SIGHUP)
        h = await health.wait("the refusal", reloaded_after(None))
        last = h["config"]["last_reload"]
        assert last["ok"] is False and h["status"] == "degraded"
        assert any("no-such-valve" in e for e in last["errors"])
        # The running configuration keeps working: gas-new unknown, the others alarm.
        await probe.telemetry("gas-new", {"lel": 30.0})
        await health.wait("gas-new rejected", lambda h: rejected_unknown(h) == 1)
        await probe.event("btn-lobby", "pressed")
        await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")

        # `reload` with a valid file: exit 0, the gateway applies it (the port waits).
        write_config(cfg, valid)
        before = last_reload_at(h)
        r = run_cli("reload", "-c", str(cfg))
        assert r.returncode == 0, r.stderr
        h = await health.wait("the reload", reloaded_after(before))
        last = h["config"]["last_reload"]
        assert last["ok"] is True and h["status"] == "ok"
        assert last["devices_added"] == ["xingfu/gas-new"] and last["needs_restart"] == ["http"]
        async with httpx.AsyncClient(base_url=health.base) as c:
            metrics = (await c.get("/metrics")).text
        assert 'gateway_config_reloads_total{result="refused"} 1.0' in metrics
        assert 'gateway_config_reloads_total{result="applied"} 1.0' in metrics
        await probe.telemetry("gas-new", {"lel": 30.0})
        await probe.wait_for("xingfu/alarms", lambda m: m["device"] == "gas-new")

    # No gateway runs with this data_dir any more: exit 1.
    r = run_cli("reload", "-c", str(cfg))
    assert r.returncode == 1 and "no gateway runs" in r.stderr, r.stderr
    text = log.read_text()
    assert "refused (1 problem(s)); the running configuration stays" in text
    assert "not applied until a restart: http" in text
    assert "Traceback" not in text
