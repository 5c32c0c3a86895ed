"""Acks naming commands the gateway never sent, through the real gateway over a real
Mosquitto: they change nothing, and a device repeating them cannot flood the log."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.config.loading import parse_config
from tests.conftest import FakeClock, Mosquitto, Probe, running_gateway, site_config, until

ACK_TOPIC = "safety/xingfu/valve-kitchen/cmd/ack"


def unmatched_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "matches no command" in r.getMessage()]


async def test_acks_for_commands_never_sent_are_logged_once_a_minute(
    tmp_path: Any, broker: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    config = parse_config(site_config(tmp_path / "data", broker.port))
    caplog.set_level(logging.WARNING, logger="gateway.alarms.dispatch")
    async with running_gateway(config, clock=clock) as rg:
        acks = rg.gw.metrics.messages
        for i in range(200):
            await probe.publish(ACK_TOPIC, {"id": f"forged-{i}", "ok": True})
        await until(lambda: acks.get("cmd/ack") >= 200, what="200 acks taken")
        assert unmatched_lines(caplog) == [
            "result for command 'forged-0' from xingfu/valve-kitchen matches no command we sent"
        ]
        assert not list(rg.gw.book.open_alarms()), "an ack for nothing changes nothing"

        clock.advance(61)  # a minute on: one line again, with the count of those held back
        await probe.publish(ACK_TOPIC, {"id": "forged-200", "ok": True})
        await until(lambda: len(unmatched_lines(caplog)) == 2, what="the next minute's line")
        assert unmatched_lines(caplog)[1].endswith("(and 199 more in the last 61 s)")
