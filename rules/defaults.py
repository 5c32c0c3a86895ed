"""Default rule parameters per device type, each with the standard it comes from.

These are the values an integrator gets without configuring anything; every one can be
overridden per device type (`rules.defaults` in the config) and per device (`thresholds`).
The README's "Alarm rules" table is this file in prose: keep them together.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.co import CoRule
from rules.model import AlarmType, DeviceType, Severity
from rules.thresholds import Level, ThresholdRule

# Gas (%LEL). GB/T 50493-2019 §5.5 and CJ 3057 set the level-1 alarm at or below 25 %LEL
# and level 2 at or below 50 %LEL. We alarm at 20 %LEL so that a detector's own ±5 %LEL
# tolerance still alarms before 25. The pre-alarm at 10 %LEL is ours: an early warning
# that never closes the valve. GB 50028-2006 §10.8.4: the alarm closes the shut-off valve
# automatically and it is reopened manually, on site — hence `shutoff_level`.
GAS_LEAK = ThresholdRule(
    alarm=AlarmType.GAS_LEAK,
    quantity="lel",
    levels=(
        Level("pre_alarm", 10.0, Severity.WARNING),
        Level("level_1", 20.0, Severity.CRITICAL),
        Level("level_2", 50.0, Severity.CRITICAL),
    ),
    deadband=2.0,
    on_delay_s=0.0,  # gas shut-off must not wait: detectors already filter their signal
    off_delay_s=30.0,
    shutoff_level="level_1",
)

# Residual current (mA). GB 50116-2013 §9.2.3: the residual-current detector's alarm
# set point should be 300-500 mA. GB 14287.2 requires the detector to alarm within 30 s
# of the set point being reached; our 10 s on-delay filters one-poll spikes inside that.
RESIDUAL_CURRENT = ThresholdRule(
    alarm=AlarmType.RESIDUAL_CURRENT,
    quantity="residual_ma",
    levels=(Level("alarm", 300.0, Severity.MAJOR),),
    deadband=30.0,
    on_delay_s=10.0,
    off_delay_s=30.0,
)

# Cable temperature (°C). GB 14287.3 lets the set point range over 55-140 °C; 70 °C is the
# maximum continuous conductor temperature of PVC-insulated cable (GB/T 5023), the most
# common wiring in older institution buildings. Same 10 s on-delay as above.
OVERTEMPERATURE = ThresholdRule(
    alarm=AlarmType.OVERTEMPERATURE,
    quantity="temp_c",
    levels=(Level("alarm", 70.0, Severity.MAJOR),),
    deadband=5.0,
    on_delay_s=10.0,
    off_delay_s=30.0,
)

# Overcurrent has no universal default: it depends on the circuit's rated current.
# The rule exists only for devices with `rated_current_a`; it alarms at the rated
# current sustained for 30 s (an overload, not a short circuit, which the breaker handles).
OVERCURRENT_ON_DELAY_S = 30.0
OVERCURRENT_DEADBAND_FRACTION = 0.05


def overcurrent(rated_current_a: float) -> ThresholdRule:
    return ThresholdRule(
        alarm=AlarmType.OVERCURRENT,
        quantity="current_a",
        levels=(Level("alarm", rated_current_a, Severity.MAJOR),),
        deadband=rated_current_a * OVERCURRENT_DEADBAND_FRACTION,
        on_delay_s=OVERCURRENT_ON_DELAY_S,
        off_delay_s=30.0,
    )


# CO: EN 50291-1 response curve, see rules/co.py.
CO = CoRule()

THRESHOLDS: Mapping[DeviceType, tuple[ThresholdRule, ...]] = {
    DeviceType.GAS_DETECTOR: (GAS_LEAK,),
    DeviceType.GAS_ALARM_CONTROLLER: (GAS_LEAK,),
    DeviceType.ELECTRICAL_FIRE_MONITOR: (RESIDUAL_CURRENT, OVERTEMPERATURE),
}

# How often a healthy device of each type reports, in seconds. Silence longer than
# `offline_after_intervals` (default 3) of these raises `device_offline`.
REPORT_INTERVAL_S: Mapping[DeviceType, float] = {
    DeviceType.GAS_DETECTOR: 30.0,
    DeviceType.GAS_ALARM_CONTROLLER: 30.0,
    DeviceType.CO_DETECTOR: 60.0,
    DeviceType.GAS_VALVE: 60.0,
    DeviceType.ELECTRICAL_FIRE_MONITOR: 30.0,
    DeviceType.ALARM_BUTTON: 300.0,
    DeviceType.SMOKE_DETECTOR: 300.0,
}
OFFLINE_AFTER_INTERVALS = 3

# The quantity without which a device of this type cannot protect anyone. A device that
# keeps talking but sends no valid value of it for the stale window raises device_fault.
PRIMARY_QUANTITY: Mapping[DeviceType, str] = {
    DeviceType.GAS_DETECTOR: "lel",
    DeviceType.GAS_ALARM_CONTROLLER: "lel",
    DeviceType.CO_DETECTOR: "co_ppm",
    DeviceType.ELECTRICAL_FIRE_MONITOR: "residual_ma",
}

VALVE_CONFIRM_TIMEOUT_S = 10.0
VALVE_RETRY_INTERVAL_S = 30.0

# A trip (breaker shunt release, motor operator) acts in well under a second; 10 s covers
# an MQTT round trip over 4G and a Modbus read-back on a busy RS-485 line.
TRIP_CONFIRM_TIMEOUT_S = 10.0
