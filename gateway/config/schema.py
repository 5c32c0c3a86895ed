"""The configuration file (DESIGN section 4), validated at load and failing closed.

`load_config(path)` returns a `GatewayConfig` or raises `ConfigError` carrying every
problem with its path (`sites[0].devices[2].shutoff_valve: unknown device 'valve-x'`).
Shape and types are pydantic's job; cross-references and duplicates are checked after,
because they need the whole file.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from drivers.modbus.profile import Profile, ProfileError, all_profiles
from gateway.config.units import measure_parser
from rules.model import CommandKind, DeviceType

IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # used in MQTT topics: no / + #
Ident = Annotated[str, Field(pattern=IDENT_PATTERN)]

Lel = Annotated[float, BeforeValidator(measure_parser("lel"))]
Ppm = Annotated[float, BeforeValidator(measure_parser("co_ppm"))]
MilliAmps = Annotated[float, BeforeValidator(measure_parser("residual_ma"))]
Celsius = Annotated[float, BeforeValidator(measure_parser("temp_c"))]
Amps = Annotated[float, BeforeValidator(measure_parser("current_a"))]
Seconds = Annotated[float, BeforeValidator(measure_parser("duration")), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(measure_parser("duration")), Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteKind(StrEnum):
    ELDERLY_CARE = "elderly_care"
    CHILD_WELFARE = "child_welfare"
    RELIEF_STATION = "relief_station"
    FUNERAL = "funeral"
    MARRIAGE_REGISTRY = "marriage_registry"
    OTHER = "other"


class ContactRole(StrEnum):
    LEGAL_REPRESENTATIVE = "legal_representative"
    SAFETY_MANAGER = "safety_manager"
    DUTY_OFFICER = "duty_officer"
    BUREAU_DUTY = "bureau_duty"
    OTHER = "other"


class GatewaySection(_Model):
    id: Ident
    data_dir: Path = Path("./data")
    timezone: str = "Asia/Shanghai"
    profile_dirs: list[Path] = []  # extra Modbus profile directories, beside the built-in ones

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class ApiToken(_Model):
    name: str
    token_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    role: Literal["duty", "admin", "bureau"]
    sites: list[Ident] = []  # duty: the sites this token may act on


class HttpSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[ApiToken] = []


class MqttSection(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = Field("safety", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    client_id: str | None = None
    username: str | None = None
    password_env: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    max_payload_bytes: int = Field(16_384, ge=256, le=1_048_576)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError("expected mqtt://host[:port]")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {v!r}") from exc
        return v

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 1883


class InfluxSection(_Model):
    """The bureau's time-series server (InfluxDB v2 write API, line protocol)."""

    url: str = Field(pattern=r"^https?://")
    org: str
    bucket: str
    token_env: str | None = None
    batch_size: int = Field(500, ge=1, le=50_000)  # points per write
    flush_interval: PositiveSeconds = 1.0  # a partial batch waits at most this long
    outbox_max_points: int = Field(1_000_000, ge=1000)  # disk outbox bound while unreachable
    timeout: PositiveSeconds = 10.0


class GasLeakThresholds(_Model):
    levels: dict[Literal["pre_alarm", "level_1", "level_2"], Lel] = {}
    deadband: Lel | None = Field(None, ge=0)
    on_delay: Seconds | None = None
    off_delay: Seconds | None = None
    enabled: bool = True


class ResidualCurrentThresholds(_Model):
    alarm: MilliAmps | None = Field(None, gt=0)
    deadband: MilliAmps | None = Field(None, ge=0)
    on_delay: Seconds | None = None
    off_delay: Seconds | None = None
    enabled: bool = True


class TemperatureThresholds(_Model):
    alarm: Celsius | None = None
    deadband: Celsius | None = Field(None, ge=0)
    on_delay: Seconds | None = None
    off_delay: Seconds | None = None
    enabled: bool = True


class OvercurrentThresholds(_Model):
    alarm: Amps | None = Field(None, gt=0)  # the circuit's rated current
    deadband: Amps | None = Field(None, ge=0)
    on_delay: Seconds | None = None
    off_delay: Seconds | None = None
    enabled: bool = True


class CoThresholds(_Model):
    clear_below: Ppm | None = Field(None, gt=0)
    off_delay: Seconds | None = None
    enabled: bool = True


class Thresholds(_Model):
    gas_leak: GasLeakThresholds | None = None
    residual_current: ResidualCurrentThresholds | None = None
    overtemperature: TemperatureThresholds | None = None
    overcurrent: OvercurrentThresholds | None = None
    co: CoThresholds | None = None


class ModbusEndpoint(_Model):
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    serial: str | None = None  # RS-485 port, e.g. /dev/ttyUSB0 (RTU)
    baudrate: int = 9600
    unit: int = Field(1, ge=0, le=247)
    profile: str
    timeout: PositiveSeconds = 1.0  # per request
    retries: int = Field(
        1, ge=0, le=5
    )  # per poll, with a short backoff, before it counts as failed
    offline_after_failures: int = Field(3, ge=1, le=100)  # consecutive failed polls

    @property
    def bus(self) -> str:
        """Requests on one bus are serialised: a TCP host:port, or a serial port."""
        return f"tcp://{self.host}:{self.port}" if self.host else f"rtu://{self.serial}"


class DeviceConfig(_Model):
    id: Ident
    type: DeviceType
    location: str = Field(min_length=1)
    name: str | None = None
    # mqtt: publishes itself; modbus: polled; channel: a detector read through the
    # gas_alarm_controller that lists it under `channels`.
    transport: Literal["mqtt", "modbus", "channel"] = "mqtt"
    shutoff_valve: Ident | None = None
    modbus: ModbusEndpoint | None = None
    channels: dict[int, Ident] = {}  # gas_alarm_controller: channel number -> detector id
    poll_interval_s: float | None = Field(None, gt=0)
    report_interval: PositiveSeconds | None = None
    thresholds: Thresholds = Thresholds()


DEFAULT_POLL_INTERVAL_S = 2.0


def poll_interval(dev: DeviceConfig) -> float:
    return dev.poll_interval_s or DEFAULT_POLL_INTERVAL_S


class Contact(_Model):
    name: str = Field(min_length=1)
    role: ContactRole
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{6,15}$")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")


# `{prefix}/gateways/{gateway id}` is each gateway's presence (online/offline, retained).
RESERVED_SITE_IDS = frozenset({"gateways"})


class SiteConfig(_Model):
    id: Ident
    name: str = Field(min_length=1)
    kind: SiteKind
    address: str | None = None
    # self: this gateway is the authority (actuates, notifies, writes time series).
    # edge: an edge gateway at the site is (DESIGN section 2); this one, at the bureau,
    # observes: it mirrors the edge's alarms and neither commands devices nor phones anyone.
    served_by: Literal["self", "edge"] = "self"
    contacts: list[Contact] = []
    devices: list[DeviceConfig] = []


class RulesSection(_Model):
    defaults: dict[DeviceType, Thresholds] = {}
    offline_after_intervals: int = Field(3, ge=1, le=100)
    valve_confirm_timeout: PositiveSeconds = 10.0
    valve_retry_interval: PositiveSeconds = 30.0
    # central mode: an edge gateway offline this long raises `edge_offline` (a restart or an
    # upgrade takes seconds and should not phone the bureau)
    edge_offline_after: PositiveSeconds = 60.0


EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class _Channel(_Model):
    name: Ident


class AliyunSmsChannel(_Channel):
    kind: Literal["aliyun_sms"]
    access_key_id_env: EnvName
    access_key_secret_env: EnvName
    sign_name: str = Field(min_length=1)
    template_code: str = Field(min_length=1)  # template with ${site} ${location} ${alarm} ${time}
    endpoint: str = "https://dysmsapi.aliyuncs.com"


class TencentSmsChannel(_Channel):
    kind: Literal["tencent_sms"]
    secret_id_env: EnvName
    secret_key_env: EnvName
    sdk_app_id: str = Field(min_length=1)
    sign_name: str = Field(min_length=1)
    template_id: str = Field(min_length=1)  # template {1} site {2} location {3} alarm {4} time
    region: str = "ap-guangzhou"
    endpoint: str = "https://sms.tencentcloudapi.com"


class AliyunVoiceChannel(_Channel):
    kind: Literal["aliyun_voice"]
    access_key_id_env: EnvName
    access_key_secret_env: EnvName
    called_show_number: str = Field(min_length=1)
    tts_code: str = Field(min_length=1)
    endpoint: str = "https://dyvmsapi.aliyuncs.com"


class DingTalkChannel(_Channel):
    kind: Literal["dingtalk"]
    webhook_env: EnvName
    secret_env: EnvName | None = None  # signed mode


class WeComChannel(_Channel):
    kind: Literal["wecom"]
    webhook_env: EnvName


class WebhookChannel(_Channel):
    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    token_env: EnvName | None = None


class SmtpChannel(_Channel):
    kind: Literal["smtp"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password_env: EnvName | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")


ChannelConfig = Annotated[
    AliyunSmsChannel
    | TencentSmsChannel
    | AliyunVoiceChannel
    | DingTalkChannel
    | WeComChannel
    | WebhookChannel
    | SmtpChannel,
    Field(discriminator="kind"),
]


class EscalationStepConfig(_Model):
    after: Seconds = 0.0  # after the alarm is raised, if still unacknowledged
    to: list[ContactRole] = Field(min_length=1)
    channels: list[Ident] = Field(min_length=1)  # tried in order: the next is the fallback
    repeat_every: PositiveSeconds | None = None  # reminders until acknowledged
    max_repeats: int = Field(12, ge=0, le=1000)


class NotifySection(_Model):
    channels: list[ChannelConfig] = []
    # Per severity; a severity left out uses the default policy (DESIGN section 7) when
    # `default_policy` is on, else nobody is called for it.
    policies: dict[
        Literal["critical", "major", "minor", "warning"], list[EscalationStepConfig]
    ] = {}
    default_policy: bool = True
    sms_channels: list[Ident] = []  # the default policy's SMS channels, in fallback order
    voice_channels: list[Ident] = []  # the default policy's voice channels
    group_window: Seconds = 30.0
    attempts: int = Field(3, ge=1, le=10)  # per channel and recipient, with backoff
    retry_backoff: PositiveSeconds = 2.0
    bureau_contacts: list[Contact] = []  # role bureau_duty, for every site
    timeout: PositiveSeconds = 10.0  # per provider request


class ReportRecipient(_Model):
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    sites: list[Ident] = []  # empty: the county report (every site)


class ReportSection(_Model):
    """The daily safety report (seeds 003, 004: due at the bureau before 15:00)."""

    time: str = Field("14:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")  # local, gateway zone
    mail_channel: Ident | None = None  # an smtp channel of notify.channels
    recipients: list[ReportRecipient] = []
    county: str = "县民政局"  # title of the all-sites report


class GatewayConfig(_Model):
    gateway: GatewaySection
    http: HttpSection = HttpSection()
    mqtt: MqttSection | None = None  # absent: run/demo start an embedded broker
    influx: InfluxSection | None = None
    rules: RulesSection = RulesSection()
    notify: NotifySection = NotifySection()
    report: ReportSection = ReportSection()
    sites: list[SiteConfig] = Field(min_length=1)

    def devices(self) -> Iterator[tuple[SiteConfig, DeviceConfig]]:
        for site in self.sites:
            for device in site.devices:
                yield site, device

    @property
    def topic_prefix(self) -> str:
        return self.mqtt.topic_prefix if self.mqtt else "safety"

    @cached_property
    def profiles(self) -> dict[str, Profile]:
        """The Modbus profiles (built in, and from `gateway.profile_dirs`), read once: the
        configuration check and the pollers use the same ones. Raises ProfileError."""
        return all_profiles(tuple(self.gateway.profile_dirs))


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# ------------------------------------------------------------------ loading
# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one took 6 of the 9 s
# a gateway with 10,000 devices needed to start (bench/scale.py).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML loader that refuses duplicate keys instead of silently keeping the last."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` is flattened (and may be overridden) by construct_mapping
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            break  # unhashable key: construct_mapping raises a ConstructorError for it
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = key_node
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def parse_config(data: object) -> GatewayConfig:
    """Validate already-parsed data; raises ConfigError with every problem found."""
    # Cross-references are checked on the raw data too, so that one typo in a device
    # does not hide a dangling shut-off valve elsewhere: the user sees every problem.
    references = list(check_references(data))
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_problem_from(err) for err in exc.errors()] + references) from None
    from gateway.config.ruleset import build_rules  # noqa: PLC0415 - the config<->ruleset cycle, being split

    problems = references + list(cross_check(config))
    try:
        build_rules(config)  # merged thresholds must be valid too; raises ConfigError
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"{path}: not UTF-8 text: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("", f"{path}: not valid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(
            [ConfigProblem("", f"{path}: not valid YAML: nested too deeply")]
        ) from None
    return parse_config(data)


def _problem_from(err: Any) -> ConfigProblem:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    elif err["type"] == "missing":
        msg = "required setting is missing"
    return ConfigProblem(format_loc(loc), msg)


# ------------------------------------------------------------- cross-checks
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
    yield from _check_modbus(config)
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
    if not config.http.tokens and not is_loopback(config.http.host):
        yield ConfigProblem(
            "http.host",
            f"binding to {config.http.host} without http.tokens would expose alarm control "
            "to the network; configure tokens or bind to 127.0.0.1",
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
