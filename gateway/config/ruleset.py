"""Turn the configuration into the engine's `DeviceRules`: defaults, then type, then device.

Precedence (later wins): built-in defaults (rules/defaults.py) -> `rules.defaults.<type>`
-> the device's own `thresholds`. Every merged rule is validated again, so an override
that makes levels fall or a deadband that can never clear is reported with its path.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.config.errors import ConfigError, ConfigProblem
from gateway.config.schema import (
    CoThresholds,
    DeviceConfig,
    GasLeakThresholds,
    GatewayConfig,
    OvercurrentThresholds,
    ResidualCurrentThresholds,
    TemperatureThresholds,
    Thresholds,
    poll_interval,
)
from rules import defaults
from rules.co import CoRule
from rules.engine import DeviceRules
from rules.model import AlarmType, CommandKind, DeviceRef, DeviceType
from rules.thresholds import Level, ThresholdRule
from rules.trip import Agreement, AutoTrip

_THRESHOLD_FIELDS = {
    AlarmType.GAS_LEAK: "gas_leak",
    AlarmType.RESIDUAL_CURRENT: "residual_current",
    AlarmType.OVERTEMPERATURE: "overtemperature",
    AlarmType.OVERCURRENT: "overcurrent",
}


def build_rules(config: GatewayConfig) -> list[DeviceRules]:
    rules: list[DeviceRules] = []
    problems: list[ConfigProblem] = []
    for si, site in enumerate(config.sites):
        for di, dev in enumerate(site.devices):
            path = f"sites[{si}].devices[{di}]"
            try:
                rules.append(_device_rules(config, site.id, dev, path))
            except _RuleProblem as exc:
                problems.append(ConfigProblem(exc.path, exc.message))
    if problems:
        raise ConfigError(problems)
    return rules


class _RuleProblem(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _device_rules(config: GatewayConfig, site_id: str, dev: DeviceConfig, path: str) -> DeviceRules:
    type_overrides = config.rules.defaults.get(dev.type, Thresholds())
    layers = [
        ("rules.defaults." + dev.type.value, type_overrides),
        (path + ".thresholds", dev.thresholds),
    ]
    thresholds = [_merge(base, layers) for base in defaults.THRESHOLDS.get(dev.type, ())]
    oc = _overcurrent(layers)
    if oc is not None:
        thresholds.append(oc)
    kept = tuple(t for t in thresholds if t is not None)
    report = (
        dev.report_interval
        or _polled_every(config, site_id, dev)
        or defaults.REPORT_INTERVAL_S[dev.type]
    )
    return DeviceRules(
        ref=DeviceRef(site_id, dev.id),
        type=dev.type,
        thresholds=kept,
        co=_co(layers) if dev.type.value == "co_detector" else None,
        report_interval_s=report,
        offline_after_intervals=config.rules.offline_after_intervals,
        primary_quantity=defaults.PRIMARY_QUANTITY.get(dev.type),
        shutoff_valve=DeviceRef(site_id, dev.shutoff_valve) if dev.shutoff_valve else None,
        valve_confirm_timeout_s=config.rules.valve_confirm_timeout,
        valve_retry_interval_s=config.rules.valve_retry_interval,
        auto_trip=_auto_trip(config, site_id, dev, kept, path),
        trip_confirm_timeout_s=(
            dev.auto_trip.confirm_timeout if dev.auto_trip else defaults.TRIP_CONFIRM_TIMEOUT_S
        ),
    )


def _auto_trip(
    config: GatewayConfig,
    site_id: str,
    dev: DeviceConfig,
    kept: tuple[ThresholdRule, ...],
    path: str,
) -> AutoTrip | None:
    at = dev.auto_trip
    if at is None:
        return None
    here = path + ".auto_trip"
    if dev.transport == "modbus" and dev.modbus is not None:
        profile = config.profiles.get(dev.modbus.profile)
        if profile is not None and profile.command(CommandKind.TRIP) is None:
            # Checked here, not at the first fire: a trip that cannot be written is no trip.
            raise _RuleProblem(here, f"profile {profile.name!r} has no trip command")
    own = {t.alarm for t in kept}
    missing = [a for a in at.on if AlarmType(a) not in own]
    if missing:
        raise _RuleProblem(here + ".on", f"{missing[0]} is not an alarm this device raises")
    agree = None
    if at.agree is not None:
        other = None
        if at.agree.device is not None:
            site = next(s for s in config.sites if s.id == site_id)
            found = next((d for d in site.devices if d.id == at.agree.device), None)
            if found is None or found.id == dev.id:
                raise _RuleProblem(
                    here + ".agree.device", f"{at.agree.device} is not another device of this site"
                )
            other = DeviceRef(site_id, found.id)
            kinds = _alarm_kinds(found.type)
            if not kinds:
                # A button or smoke event is latched in the alarm book, not held by the rules.
                raise _RuleProblem(
                    here + ".agree.device", f"{found.id} has no measured alarm to agree with"
                )
        else:
            kinds = own
        alarm = AlarmType(at.agree.alarm) if at.agree.alarm is not None else None
        if alarm is not None and alarm not in kinds:
            raise _RuleProblem(here + ".agree.alarm", f"{alarm.value} is never raised there")
        if other is None and (alarm is None or alarm.value in at.on):
            # Agreeing with itself would be no second condition at all.
            raise _RuleProblem(here + ".agree", "the second condition must be another alarm")
        agree = Agreement(alarm, other)
    return AutoTrip(frozenset(AlarmType(a) for a in at.on), at.delay, agree)


def _alarm_kinds(t: DeviceType) -> set[AlarmType]:
    kinds = {rule.alarm for rule in defaults.THRESHOLDS.get(t, ())}
    if t is DeviceType.ELECTRICAL_FIRE_MONITOR:
        kinds.add(AlarmType.OVERCURRENT)
    if t is DeviceType.CO_DETECTOR:
        kinds.add(AlarmType.CO)
    return kinds


def _polled_every(config: GatewayConfig, site_id: str, dev: DeviceConfig) -> float | None:
    """The report interval of a polled device (or of a controller's channel).

    The poller declares a device offline after `offline_after_failures` failed polls, each
    of which can take `timeout * (retries + 1)`. Silence (stale window = report interval x
    `offline_after_intervals`) is only the backstop behind that, so the interval is chosen
    to make the stale window half as long again as those failed polls take."""
    if dev.transport == "channel":
        site = next(s for s in config.sites if s.id == site_id)
        parent = next((d for d in site.devices if dev.id in d.channels.values()), None)
        return _polled_every(config, site_id, parent) if parent is not None else None
    if dev.transport != "modbus" or dev.modbus is None:
        return None
    ep = dev.modbus
    per_poll = poll_interval(dev) + ep.timeout * (ep.retries + 1)
    failing = per_poll * ep.offline_after_failures * 1.5
    return max(poll_interval(dev), failing / config.rules.offline_after_intervals)


def _merge(base: ThresholdRule, layers: list[tuple[str, Thresholds]]) -> ThresholdRule | None:
    field = _THRESHOLD_FIELDS[base.alarm]
    rule = base
    enabled = True
    for where, layer in layers:
        o = getattr(layer, field)
        if o is None:
            continue
        enabled = _enabled_after(enabled, o)
        if not enabled:
            continue
        levels = rule.levels
        if isinstance(o, GasLeakThresholds):
            by_name: dict[str, float] = {str(k): v for k, v in o.levels.items()}
            levels = tuple(
                Level(lv.name, by_name.get(lv.name, lv.at), lv.severity) for lv in levels
            )
        elif o.alarm is not None:
            levels = (Level(levels[0].name, o.alarm, levels[0].severity),)
        rule = _tuned(rule, o, f"{where}.{field}", levels)
    return rule if enabled else None


def _tuned(
    rule: ThresholdRule, o: _Tuning, where: str, levels: tuple[Level, ...] | None = None
) -> ThresholdRule:
    """`rule` with the levels, deadband and delays a layer sets, validated together;
    an invalid result names the layer."""
    try:
        return replace(
            rule,
            levels=levels if levels is not None else rule.levels,
            deadband=o.deadband if o.deadband is not None else rule.deadband,
            on_delay_s=o.on_delay if o.on_delay is not None else rule.on_delay_s,
            off_delay_s=o.off_delay if o.off_delay is not None else rule.off_delay_s,
        )
    except ValueError as exc:
        raise _RuleProblem(where, str(exc)) from None


_Tuning = (
    GasLeakThresholds | ResidualCurrentThresholds | TemperatureThresholds | OvercurrentThresholds
)
_Toggle = (
    GasLeakThresholds
    | ResidualCurrentThresholds
    | TemperatureThresholds
    | OvercurrentThresholds
    | CoThresholds
)


def _enabled_after(enabled: bool, o: _Toggle) -> bool:
    """Later wins: a layer that says `enabled` decides; one that does not keeps the state."""
    return o.enabled if "enabled" in o.model_fields_set else enabled


def _overcurrent(layers: list[tuple[str, Thresholds]]) -> ThresholdRule | None:
    rule: ThresholdRule | None = None
    enabled = True
    for where, layer in layers:
        o = layer.overcurrent
        if o is None:
            continue
        enabled = _enabled_after(enabled, o)
        if not enabled:
            continue
        if o.alarm is not None:
            rule = defaults.overcurrent(o.alarm)
        if rule is None:
            raise _RuleProblem(
                f"{where}.overcurrent.alarm", "set the circuit's rated current to enable this rule"
            )
        rule = _tuned(rule, o, f"{where}.overcurrent")
    return rule if enabled else None


def _co(layers: list[tuple[str, Thresholds]]) -> CoRule | None:
    rule = defaults.CO
    enabled = True
    for where, layer in layers:
        o = layer.co
        if o is None:
            continue
        enabled = _enabled_after(enabled, o)
        if not enabled:
            continue
        try:
            rule = replace(
                rule,
                clear_below_ppm=o.clear_below
                if o.clear_below is not None
                else rule.clear_below_ppm,
                off_delay_s=o.off_delay if o.off_delay is not None else rule.off_delay_s,
            )
        except ValueError as exc:
            raise _RuleProblem(f"{where}.co", str(exc)) from None
    return rule if enabled else None
