"""rules/engine.py `reconfigure`: a reloaded configuration's devices, state kept where the
device and its type remain. Fake clock (seconds from the rig's start), the real engine, no mocks."""

from __future__ import annotations

from rules import defaults
from rules.model import AlarmType, ChangeKind, DeviceRef, DeviceType
from tests.support.rules_rig import GAS, SITE, VALVE, Rig, dev, gas, valve

CO_NEW = DeviceRef(SITE, "co-new")


def test_added_device_is_watched_and_removed_one_forgotten() -> None:
    rig = Rig([gas(), valve()])
    rig.reconfigure(10, [valve(), dev(CO_NEW, DeviceType.CO_DETECTOR)])
    assert not rig.engine.knows(GAS)
    assert rig.engine.knows(CO_NEW) and rig.engine.knows(VALVE)
    # The new device is silent from the reload, not from start-up: offline after its window.
    stale = defaults.REPORT_INTERVAL_S[DeviceType.CO_DETECTOR] * defaults.OFFLINE_AFTER_INTERVALS
    assert not [c for c in rig.tick(10 + stale - 1).changes if c.key.device == "co-new"]
    later = rig.tick(10 + stale + 2)
    assert (CO_NEW.device, AlarmType.DEVICE_OFFLINE) in {
        (c.key.device, c.key.type) for c in later.changes
    }


def test_open_gas_alarm_survives_a_rules_change_and_still_clears() -> None:
    rig = Rig([gas(), valve()])
    rig.reading(0, GAS, lel=30.0)
    assert rig.kinds(AlarmType.GAS_LEAK, GAS) == [ChangeKind.RAISE]
    # Same device, same type, its rules changed (another report interval): state kept.
    rig.reconfigure(1, [gas(report_interval_s=20.0), valve()])
    rig.reading(2, GAS, lel=30.0)
    assert rig.kinds(AlarmType.GAS_LEAK, GAS) == [ChangeKind.RAISE]  # not raised again
    # Back to clean air: the engine still knows the alarm, so it clears after its off-delay.
    rig.reading(3, GAS, lel=0.0)
    rig.reading(40, GAS, lel=0.0)
    rig.tick(41)
    assert rig.kinds(AlarmType.GAS_LEAK, GAS)[-1] is ChangeKind.CLEAR


def test_type_change_starts_afresh_and_valve_link_follows_rules() -> None:
    rig = Rig([gas(), valve()])
    rig.reading(0, GAS, lel=80.0)  # level 2: raise and close the valve
    assert rig.closes()
    rig.reconfigure(1, [dev(GAS, DeviceType.CO_DETECTOR), valve()])
    assert rig.engine.status(GAS).values == {}  # another kind of device: nothing carried over
    rig.reading(2, GAS, co_ppm=5.0)  # read as a CO detector now
    rig.tick(120)  # the valve supervisor was rebuilt around the new rules
