"""The checks that need the whole configuration: duplicate ids, references between sections
(a shut-off valve, a channel, a site, a Modbus profile), threshold sections that fit the
device type, an HTTP server exposed without tokens, and the secrets the environment lacks.

`check_references` runs on the raw data, before the schema, so that one typo elsewhere
does not hide a dangling reference; `cross_check` runs on the typed model.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from typing import Any

from drivers.mapping import NATIVE, MappingError
from drivers.modbus.profile import ProfileError
from gateway.config.errors import ConfigProblem
from gateway.config.schema import ContactRole, DeviceConfig, GatewayConfig, Thresholds
from rules.model import CommandKind, DeviceType

# `{prefix}/gateways/{gateway id}` is each gateway's presence (online/offline, retained).
RESERVED_SITE_IDS = frozenset({"gateways"})

SHUTOFF_CAPABLE = {DeviceType.GAS_DETECTOR, DeviceType.GAS_ALARM_CONTROLLER}


def check_references(data: object) -> Iterator[ConfigProblem]:
    """Duplicate ids and shut-off valve references, on the raw (maybe invalid) data."""
    sites = data.get("sites") if isinstance(data, dict) else None
    if not isinstance(sites, list):
        return
    site_first: dict[str, int] = {}
    for si, site in enumerate(sites):
        if not isinstance(site, dict):
            continue
        sid = site.get("id")
        if isinstance(sid, str):
            if sid in RESERVED_SITE_IDS:
                yield ConfigProblem(
                    f"sites[{si}].id", f"{sid!r} is reserved (gateway presence topics)"
                )
            if sid in site_first:
                yield ConfigProblem(
                    f"sites[{si}].id",
                    f"duplicate site id {sid!r} (first at sites[{site_first[sid]}])",
                )
            else:
                site_first[sid] = si
        devices = site.get("devices")
        if not isinstance(devices, list):
            continue
        by_id: dict[str, tuple[int, dict[str, Any]]] = {}
        for di, dev in enumerate(devices):
            did = dev.get("id") if isinstance(dev, dict) else None
            if not isinstance(did, str):
                continue
            if did in by_id:
                yield ConfigProblem(
                    f"sites[{si}].devices[{di}].id",
                    f"duplicate device id {did!r} in site {sid!r} "
                    f"(first at sites[{si}].devices[{by_id[did][0]}])",
                )
            else:
                by_id[did] = (di, dev)
        for di, dev in enumerate(devices):
            if isinstance(dev, dict):
                yield from _check_shutoff(f"sites[{si}].devices[{di}]", dev, by_id)


def _check_shutoff(
    path: str, dev: dict[str, Any], by_id: dict[str, tuple[int, dict[str, Any]]]
) -> Iterator[ConfigProblem]:
    valve = dev.get("shutoff_valve")
    if valve is None:
        return
    if dev.get("type") not in [t.value for t in SHUTOFF_CAPABLE]:  # a list: type may be unhashable
        yield ConfigProblem(
            f"{path}.shutoff_valve",
            f"a device of type {dev.get('type')} cannot drive a shut-off valve",
        )
        return
    target = by_id.get(valve) if isinstance(valve, str) else None
    if target is None:
        yield ConfigProblem(f"{path}.shutoff_valve", f"unknown device {valve!r}")
    elif target[1].get("type") != DeviceType.GAS_VALVE.value:
        yield ConfigProblem(
            f"{path}.shutoff_valve",
            f"device {valve!r} is of type {target[1].get('type')}, not gas_valve",
        )


def cross_check(config: GatewayConfig) -> Iterator[ConfigProblem]:
    """Checks that need the typed model (references are in `check_references`)."""
    site_ids = {site.id for site in config.sites}
    for si, site in enumerate(config.sites):
        for di, dev in enumerate(site.devices):
            yield from _check_device(f"sites[{si}].devices[{di}]", dev)
        if site.edge_gateway == config.gateway.id:
            yield ConfigProblem(
                f"sites[{si}].edge_gateway",
                f"{site.edge_gateway!r} is this gateway's own id: the edge is another gateway",
            )
    yield from _check_modbus(config)
    yield from _check_modbus_buses(config)
    yield from _check_codecs(config)
    yield from _check_notify(config)
    yield from _check_report(config)
    for device_type, thresholds in config.rules.defaults.items():
        yield from _check_thresholds(f"rules.defaults.{device_type.value}", device_type, thresholds)
    for ti, token in enumerate(config.http.tokens):
        for k, site_id in enumerate(token.sites):
            if site_id not in site_ids:
                yield ConfigProblem(f"http.tokens[{ti}].sites[{k}]", f"unknown site {site_id!r}")
        if token.role == "duty" and not token.sites:
            yield ConfigProblem(f"http.tokens[{ti}].sites", "a duty token must name its sites")
    if not config.http.tokens and not config.http.accounts and not is_loopback(config.http.host):
        yield ConfigProblem(
            "http.host",
            f"binding to {config.http.host} without http.tokens would expose alarm control "
            "to the network; configure tokens, or `accounts: true` (persons sign in), or bind "
            "to 127.0.0.1",
        )


def _check_device(path: str, dev: DeviceConfig) -> Iterator[ConfigProblem]:
    if dev.transport == "modbus" and dev.modbus is None:
        yield ConfigProblem(f"{path}.modbus", "transport modbus needs a modbus section")
    if dev.transport != "modbus" and dev.modbus is not None:
        yield ConfigProblem(
            f"{path}.modbus", f"modbus section given but transport is {dev.transport}"
        )
    if dev.modbus is not None and (dev.modbus.host is None) == (dev.modbus.serial is None):
        yield ConfigProblem(f"{path}.modbus", "give exactly one of host (TCP) or serial (RTU)")
    if dev.channels and dev.type is not DeviceType.GAS_ALARM_CONTROLLER:
        yield ConfigProblem(f"{path}.channels", "only a gas_alarm_controller has channels")
    if dev.transport == "channel" and dev.type is not DeviceType.GAS_DETECTOR:
        yield ConfigProblem(f"{path}.transport", "only a gas_detector can be a controller channel")
    if dev.poll_interval_s is not None and dev.transport != "modbus":
        yield ConfigProblem(f"{path}.poll_interval_s", "only modbus devices are polled")
    yield from _check_thresholds(f"{path}.thresholds", dev.type, dev.thresholds)


def _check_codecs(config: GatewayConfig) -> Iterator[ConfigProblem]:
    """Payload mappings load, are named once, and fit the devices that name them."""
    try:
        codecs = config.codecs
    except MappingError as exc:
        yield ConfigProblem("gateway.mapping_dirs", str(exc))
        return
    written: set[str] = set()
    for i, inline in enumerate(config.mappings):
        name = inline.name
        if name == NATIVE or name in written or codecs[name] is not inline:
            yield ConfigProblem(
                f"mappings[{i}].name", f"{name!r} is the native codec or already a mapping"
            )
        written.add(name)
    for si, site in enumerate(config.sites):
        for di, dev in enumerate(site.devices):
            if dev.codec == NATIVE:
                continue
            path = f"sites[{si}].devices[{di}].codec"
            mapping = codecs.get(dev.codec)
            if dev.transport != "mqtt":
                yield ConfigProblem(path, f"only mqtt devices have a codec, not {dev.transport}")
            elif mapping is None:
                known = ", ".join([NATIVE, *sorted(codecs)])
                yield ConfigProblem(path, f"unknown codec {dev.codec!r} (known: {known})")
            elif mapping.device_type is not dev.type:
                yield ConfigProblem(
                    path,
                    f"mapping {mapping.name!r} describes a {mapping.device_type.value}, "
                    f"not a {dev.type.value}",
                )


def _check_notify(config: GatewayConfig) -> Iterator[ConfigProblem]:
    """Channel names are unique and every reference to one names a configured channel."""
    n = config.notify
    names: dict[str, int] = {}
    for i, ch in enumerate(n.channels):
        if ch.name in names:
            yield ConfigProblem(f"notify.channels[{i}].name", f"duplicate channel {ch.name!r}")
        names.setdefault(ch.name, i)
    refs: list[tuple[str, str]] = []
    for severity, steps in n.policies.items():
        for si, step in enumerate(steps):
            refs += [
                (f"notify.policies.{severity}[{si}].channels[{k}]", c)
                for k, c in enumerate(step.channels)
            ]
    refs += [(f"notify.sms_channels[{k}]", c) for k, c in enumerate(n.sms_channels)]
    refs += [(f"notify.voice_channels[{k}]", c) for k, c in enumerate(n.voice_channels)]
    refs += [(f"reminders.channels[{k}]", c) for k, c in enumerate(config.reminders.channels)]
    for path, name in refs:
        if name not in names:
            yield ConfigProblem(path, f"undefined channel {name!r}")
    for i, c in enumerate(n.bureau_contacts):
        if c.role is not ContactRole.BUREAU_DUTY:
            yield ConfigProblem(
                f"notify.bureau_contacts[{i}].role", "bureau contacts have role bureau_duty"
            )


def _check_report(config: GatewayConfig) -> Iterator[ConfigProblem]:
    r = config.report
    if r.mail_channel is not None:
        channel = next((c for c in config.notify.channels if c.name == r.mail_channel), None)
        if channel is None:
            yield ConfigProblem("report.mail_channel", f"undefined channel {r.mail_channel!r}")
        elif channel.kind != "smtp":
            yield ConfigProblem("report.mail_channel", f"channel {r.mail_channel!r} is not smtp")
    if r.recipients and r.mail_channel is None:
        yield ConfigProblem("report.mail_channel", "report recipients need a mail channel")
    site_ids = {s.id for s in config.sites}
    for i, rec in enumerate(r.recipients):
        for k, site in enumerate(rec.sites):
            if site not in site_ids:
                yield ConfigProblem(f"report.recipients[{i}].sites[{k}]", f"unknown site {site!r}")


def _check_modbus_buses(config: GatewayConfig) -> Iterator[ConfigProblem]:
    """One unit id per bus (two devices answering together garble the line), and one baud
    rate, parity and stop bits per serial line (the first device's would apply to all)."""
    first: dict[tuple[str, int | None], str] = {}
    for si, site in enumerate(config.sites):
        for di, dev in enumerate(site.devices):
            ep, path = dev.modbus, f"sites[{si}].devices[{di}].modbus"
            if ep is None:
                continue
            if (ep.bus, ep.unit) in first:
                yield ConfigProblem(
                    f"{path}.unit",
                    f"unit {ep.unit} on {ep.bus} is already {first[ep.bus, ep.unit]}",
                )
            first.setdefault((ep.bus, ep.unit), dev.id)
            line = (ep.baudrate, ep.parity, ep.stopbits)
            if ep.serial is not None and first.setdefault((ep.bus, None), repr(line)) != repr(line):
                yield ConfigProblem(
                    path,
                    f"{ep.bus} is set to baudrate, parity, stopbits {first[ep.bus, None]} "
                    f"by another device, not {line}",
                )


def _check_modbus(config: GatewayConfig) -> Iterator[ConfigProblem]:
    """Profiles exist and fit the device; controller channels and their detectors match."""
    try:
        profiles = config.profiles
    except ProfileError as exc:
        yield ConfigProblem("gateway.profile_dirs", str(exc))
        return
    for si, site in enumerate(config.sites):
        by_id = {d.id: (di, d) for di, d in enumerate(site.devices)}
        claimed: dict[str, str] = {}
        for di, dev in enumerate(site.devices):
            path = f"sites[{si}].devices[{di}]"
            if dev.modbus is not None:
                profile = profiles.get(dev.modbus.profile)
                if profile is None:
                    known = ", ".join(sorted(profiles)) or "none"
                    yield ConfigProblem(
                        f"{path}.modbus.profile",
                        f"unknown profile {dev.modbus.profile!r} (known: {known})",
                    )
                    continue
                if profile.device_type is not dev.type:
                    yield ConfigProblem(
                        f"{path}.modbus.profile",
                        f"profile {profile.name!r} describes a {profile.device_type.value}, "
                        f"not a {dev.type.value}",
                    )
                if (
                    dev.type is DeviceType.GAS_VALVE
                    and profile.command(CommandKind.CLOSE_VALVE) is None
                ):
                    yield ConfigProblem(
                        f"{path}.modbus.profile", f"profile {profile.name!r} cannot close the valve"
                    )
                for channel, detector in sorted(dev.channels.items()):
                    where = f"{path}.channels.{channel}"
                    if profile.channels is None or not 1 <= channel <= profile.channels:
                        yield ConfigProblem(
                            where, f"profile {profile.name!r} has no channel {channel}"
                        )
                    target = by_id.get(detector)
                    if target is None:
                        yield ConfigProblem(where, f"unknown device {detector!r}")
                    elif target[1].transport != "channel":
                        yield ConfigProblem(
                            where, f"device {detector!r} must have transport: channel"
                        )
                    elif detector in claimed:
                        yield ConfigProblem(
                            where, f"device {detector!r} is already channel of {claimed[detector]}"
                        )
                    else:
                        claimed[detector] = dev.id
        for di, dev in enumerate(site.devices):
            if dev.transport == "channel" and dev.id not in claimed:
                yield ConfigProblem(
                    f"sites[{si}].devices[{di}].transport",
                    "no gas_alarm_controller lists this device in its channels",
                )


# Which threshold sections apply to which device type. A section for a rule the device
# does not have would be silently ignored, so an integrator would believe in a protection
# that does not exist: it is an error instead.
RULES_OF_TYPE: dict[DeviceType, frozenset[str]] = {
    DeviceType.GAS_DETECTOR: frozenset({"gas_leak"}),
    DeviceType.GAS_ALARM_CONTROLLER: frozenset({"gas_leak"}),
    DeviceType.CO_DETECTOR: frozenset({"co"}),
    DeviceType.ELECTRICAL_FIRE_MONITOR: frozenset(
        {"residual_current", "overtemperature", "overcurrent"}
    ),
}


def _check_thresholds(
    path: str, device_type: DeviceType, thresholds: Thresholds
) -> Iterator[ConfigProblem]:
    allowed = RULES_OF_TYPE.get(device_type, frozenset())
    for name in Thresholds.model_fields:
        if getattr(thresholds, name) is not None and name not in allowed:
            have = ", ".join(sorted(allowed)) or "none"
            yield ConfigProblem(
                f"{path}.{name}",
                f"a {device_type.value} has no {name} rule (its rules: {have})",
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def missing_secrets(config: GatewayConfig) -> list[ConfigProblem]:
    """Environment variables the file names but the process does not have."""
    wanted: list[tuple[str, str]] = []
    for ti, token in enumerate(config.http.tokens):
        wanted.append((f"http.tokens[{ti}].token_env", token.token_env))
    if config.mqtt and config.mqtt.password_env:
        wanted.append(("mqtt.password_env", config.mqtt.password_env))
    if config.influx and config.influx.token_env:
        wanted.append(("influx.token_env", config.influx.token_env))
    for i, ch in enumerate(config.notify.channels):
        for field_name, value in ch:
            if field_name.endswith("_env") and isinstance(value, str):
                wanted.append((f"notify.channels[{i}].{field_name}", value))
    return [
        ConfigProblem(path, f"environment variable {name} is not set")
        for path, name in wanted
        if not os.environ.get(name)
    ]
