"""Issue 10, exactly once when a device sends a message again: a QoS 1 publisher that never
saw the broker's PUBACK (the broker was killed, the connection cut) sends the message again,
and the broker passes it on as a new message (its own packet id, no DUP). The gateway
recognises the copy by its bytes (`gateway.ingest.resends`): with a device `ts`, any recent
copy; without, a copy of the previous message within `mqtt.resend_window` of the first.

`Resends` alone, then the router with a real Mosquitto and an in-process gateway."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.config.loading import parse_config
from gateway.ingest.resends import STAMPED, Resends
from tests.conftest import Probe, RunningGateway, running_gateway, until

WINDOW = 3.0
A = b'{"ts": 1732480000123, "values": {"lel": 12.5}}'
B = b'{"ts": 1732480001123, "values": {"lel": 12.5}}'
A_OTHER_VALUE = b'{"ts": 1732480000123, "values": {"lel": 30.0}}'
PLAIN = b'{"values": {"open": 1}}'
PLAIN_CLOSED = b'{"values": {"open": 0}}'


def test_a_stamped_message_sent_again_is_a_copy_however_late() -> None:
    r = Resends()
    assert r.again(A, True, 0.0, WINDOW) is None
    assert r.again(B, True, 1.0, WINDOW) is None
    # after another message, and long after the window: ts and bytes say it is the same
    assert r.again(A, True, 1000.0, WINDOW) is not None
    assert r.again(B, True, 1000.0, WINDOW) is not None


def test_the_same_ts_with_other_content_is_never_a_copy() -> None:
    r = Resends()
    assert r.again(A, True, 0.0, WINDOW) is None
    assert r.again(A_OTHER_VALUE, True, 0.1, WINDOW) is None


def test_stamped_memory_is_bounded_to_the_last_messages_of_the_topic() -> None:
    r = Resends()
    payloads = [orjson.dumps({"ts": 1732480000000 + i, "values": {"lel": 1}}) for i in range(100)]
    for i, p in enumerate(payloads):
        assert r.again(p, True, float(i), WINDOW) is None
    assert len(r._stamped) == STAMPED
    assert r.again(payloads[-1], True, 200.0, WINDOW) is not None  # the newest: remembered
    # the oldest were forgotten: taken again (at least once beyond the bound)
    assert r.again(payloads[0], True, 200.0, WINDOW) is None
    assert len(r._stamped) == STAMPED


def test_without_ts_a_copy_of_the_previous_message_within_the_window_is_dropped() -> None:
    r = Resends()
    assert r.again(PLAIN, False, 10.0, WINDOW) is None
    assert r.again(PLAIN, False, 11.0, WINDOW) is not None
    assert r.again(PLAIN, False, 12.9, WINDOW) is not None
    # the window runs from the first copy taken, not from the dropped ones
    assert r.again(PLAIN, False, 13.0, WINDOW) is None
    assert r.again(PLAIN, False, 15.9, WINDOW) is not None
    assert r.again(PLAIN, False, 16.0, WINDOW) is None


def test_a_device_repeating_itself_every_second_is_taken_every_window() -> None:
    r = Resends()
    taken = [t for t in range(60) if r.again(PLAIN, False, float(t), WINDOW) is None]
    assert taken == list(range(0, 60, 3))


def test_without_ts_only_the_previous_message_counts_so_the_state_never_goes_back() -> None:
    r = Resends()
    # a valve open, closed, open again within a second: all three taken
    assert r.again(PLAIN, False, 0.0, WINDOW) is None
    assert r.again(PLAIN_CLOSED, False, 0.3, WINDOW) is None
    assert r.again(PLAIN, False, 0.6, WINDOW) is None


def test_a_stamped_message_in_between_ends_the_plain_repeat() -> None:
    r = Resends()
    assert r.again(PLAIN, False, 0.0, WINDOW) is None
    assert r.again(A, True, 0.1, WINDOW) is None
    assert r.again(PLAIN, False, 0.2, WINDOW) is None


def test_window_zero_takes_every_plain_copy() -> None:
    r = Resends()
    assert all(r.again(PLAIN, False, 0.0, 0.0) is None for _ in range(3))


# ----------------------------------------------------------------- with a real broker

GAS = "safety/xingfu/gas-kitchen/telemetry"
PRESS = "safety/xingfu/btn-lobby/event"


def telemetry(gateway: RunningGateway) -> int:
    return gateway.gw.metrics.messages.get("telemetry")


def duplicates(gateway: RunningGateway) -> int:
    return gateway.gw.rejects.by_reason.get("duplicate", 0)


async def test_a_reading_sent_again_reaches_the_rules_once(
    gateway: RunningGateway, probe: Probe
) -> None:
    await probe.publish(GAS, A)
    await probe.publish(GAS, A)  # what a device sends again: a new message, the same bytes
    await probe.publish(GAS, A_OTHER_VALUE)  # the same ts, other content: taken
    await probe.publish(GAS, B)
    await until(lambda: telemetry(gateway) >= 3, what="three readings taken")
    await until(lambda: duplicates(gateway) >= 1, what="the copy counted")
    sentinel = b'{"ts": 1732480002123, "values": {"lel": 1}}'
    await probe.publish(GAS, sentinel)  # the lane is ordered: once it is taken, all is
    await until(lambda: telemetry(gateway) >= 4, what="the sentinel taken")
    assert telemetry(gateway) == 4
    assert duplicates(gateway) == 1


async def test_a_press_sent_again_counts_once_a_second_press_twice(
    gateway: RunningGateway, probe: Probe
) -> None:
    first = b'{"ts": 1732480000123, "event": "pressed"}'
    await probe.publish(PRESS, first)
    await probe.publish(PRESS, first)
    await probe.publish(PRESS, b'{"ts": 1732480005123, "event": "pressed"}')

    def count() -> int:
        return max((a.count for a in gateway.gw.book.open_alarms()), default=0)

    await until(lambda: count() >= 2, what="the second press counted")
    assert duplicates(gateway) == 1
    assert count() == 2


async def test_with_a_window_a_plain_press_sent_again_counts_once(
    config_data: dict[str, Any], probe: Probe
) -> None:
    config_data["mqtt"]["resend_window"] = "30 s"
    async with running_gateway(parse_config(config_data)) as gateway:
        plain = b'{"event": "pressed"}'
        await probe.publish(PRESS, plain)
        await probe.publish(PRESS, plain)
        await until(lambda: duplicates(gateway) >= 1, what="the copy counted")
        await probe.publish(PRESS, b'{"event": "self_test"}')
        await probe.publish(PRESS, plain)  # not the previous message: a press
        await until(
            lambda: any(a.count >= 2 for a in gateway.gw.book.open_alarms()),
            what="the press after another event counted",
        )
        assert duplicates(gateway) == 1
