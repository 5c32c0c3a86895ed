"""The configuration file's shape (DESIGN section 4): pydantic models, strict and frozen.

Shape, types, units and ranges are checked here, one field at a time; what needs the whole
file (cross-references, duplicates, rules for the device type) is in `checks`, loading the
file in `loading`.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    field_validator,
    model_validator,
)

from drivers.mapping import NATIVE, PayloadMapping, all_mappings
from drivers.modbus.profile import Profile, all_profiles
from gateway.config.tls import HttpTls, MqttTls
from gateway.config.units import measure_parser
from rules.model import DeviceType

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
    BUREAU_LEADER = "bureau_leader"  # the bureau's leader on call (领导带班, seed 001)
    OTHER = "other"


class GatewaySection(_Model):
    id: Ident
    data_dir: Path = Path("./data")
    timezone: str = "Asia/Shanghai"
    profile_dirs: list[Path] = []  # extra Modbus profile directories, beside the built-in ones
    mapping_dirs: list[Path] = []  # extra payload mapping directories (issue 13), likewise

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


class SessionSettings(_Model):
    """A browser's login (gateway.http.login). A duty-room console is watched all shift: the
    idle limit is long, and the console shows a logged-out page loudly, never silently."""

    idle_minutes: int = Field(720, ge=5, le=7 * 24 * 60)
    absolute_hours: int = Field(72, ge=1, le=30 * 24)


class HttpSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[ApiToken] = []
    # Persons sign in (accounts made with `safety-gateway user add`): never the local operator
    # mode, even while nobody can sign in yet; lets the API bind off loopback without tokens.
    accounts: bool = False
    sessions: SessionSettings = SessionSettings()
    # Who may read /metrics and /docs (with /openapi.json) once people sign in: True anyone
    # (a Prometheus scraper without credentials), False a signed-in person or token.
    public_metrics: bool = True
    public_docs: bool = False
    tls: HttpTls | None = None  # HTTPS, with HSTS
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (uvicorn's proxy headers): the
    # client address of the audit trail, the login lockout and the local operator.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])


class MqttSection(_Model):
    url: str = "mqtt://127.0.0.1:1883"  # or mqtts://host[:port] (TLS, port 8883 by default)
    topic_prefix: str = Field("safety", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    client_id: str | None = None
    username: str | None = None
    password_env: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    max_payload_bytes: int = Field(16_384, ge=256, le=1_048_576)
    # A device's payload without `ts` identical to its previous one within this long of the
    # first copy is a copy it sent again (gateway.ingest.resends); 0 (the default) takes
    # every copy (a suggested value: 3 s; see the README on the trade-off).
    resend_window: Seconds = Field(0.0, le=60)
    tls: MqttTls | None = None  # for mqtts://; absent there: the system's CAs, hostname checked

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtt://host[:port] or mqtts://host[:port]")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> MqttSection:
        # TLS settings beside a plain URL would look protected and send the password in clear.
        if self.tls is not None and urlsplit(self.url).scheme != "mqtts":
            raise ValueError("mqtt.tls is given but mqtt.url is not mqtts://")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.secure else 1883)

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


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
    baudrate: int = Field(9600, ge=1200, le=115200)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    # Serial: the devices not answering on a bus take at most this share of its time.
    dead_share: float = Field(0.10, gt=0, le=1)
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


TrippingAlarm = Literal["residual_current", "overtemperature", "overcurrent"]


class TripAgreement(_Model):
    """The second condition of an automatic trip: `alarm` open on `device` (this one when
    omitted); a `device` without `alarm` agrees with any of its measured alarms."""

    alarm: Literal[TrippingAlarm, "gas_leak", "co"] | None = None
    device: Ident | None = None

    @model_validator(mode="after")
    def _names_something(self) -> TripAgreement:
        if self.alarm is None and self.device is None:
            raise ValueError("agree needs an alarm, a device, or both")
        return self


class AutoTripConfig(_Model):
    """Cut the circuit on these alarms (README "Automatic trip": it stops oxygen
    concentrators and lifts; off unless configured)."""

    on: list[TrippingAlarm] = Field(min_length=1, max_length=3)
    delay: Seconds = 0.0
    agree: TripAgreement | None = None
    confirm_timeout: PositiveSeconds = 10.0


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
    # mqtt: how its payloads read: `native` (DESIGN section 5) or a payload mapping's name.
    codec: str = Field(NATIVE, pattern=r"^[a-z0-9][a-z0-9_]*$")
    auto_trip: AutoTripConfig | None = None  # electrical_fire_monitor only

    @model_validator(mode="after")
    def _auto_trip_on_monitors(self) -> DeviceConfig:
        if self.auto_trip is not None and self.type is not DeviceType.ELECTRICAL_FIRE_MONITOR:
            raise ValueError("auto_trip is only for an electrical_fire_monitor")
        return self


DEFAULT_POLL_INTERVAL_S = 2.0


def poll_interval(dev: DeviceConfig) -> float:
    return dev.poll_interval_s or DEFAULT_POLL_INTERVAL_S


class Contact(_Model):
    name: str = Field(min_length=1)
    role: ContactRole
    # The person's login (gateway.people): default "p" + the phone's digits.
    login: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{6,15}$")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")


class SiteConfig(_Model):
    id: Ident
    name: str = Field(min_length=1)
    kind: SiteKind
    address: str | None = None
    # self: this gateway is the authority (actuates, notifies, writes time series).
    # edge: an edge gateway at the site is (DESIGN section 2); this one, at the bureau,
    # observes: it mirrors the edge's alarms and neither commands devices nor phones anyone.
    served_by: Literal["self", "edge"] = "self"
    # served_by edge: the id of the edge gateway that serves the site (required there,
    # refused otherwise). Only that gateway's presence counts for the site: a presence is
    # bound to its topic's gateway id, and which id serves which site is configuration.
    edge_gateway: Ident | None = None
    contacts: list[Contact] = []
    devices: list[DeviceConfig] = []
    # Reopening gas (GB 50028 §10.8.4: by hand, on site): `open_valve` through the API is
    # refused unless the site allows it from anywhere, or the request's client address
    # (after `http.trusted_proxies`) is in one of the site's own networks, e.g. its duty
    # room's LAN; loopback counts only if listed (a gateway box installed at the site).
    remote_reopen: bool = False
    local_networks: list[IPvAnyNetwork] = Field([], max_length=64)

    @model_validator(mode="after")
    def _edge_gateway_iff_edge(self) -> SiteConfig:
        if self.served_by == "edge" and self.edge_gateway is None:
            raise ValueError("a site served_by edge must name its edge_gateway (its id)")
        if self.served_by != "edge" and self.edge_gateway is not None:
            raise ValueError("edge_gateway is only for a site served_by edge")
        return self


class RulesSection(_Model):
    defaults: dict[DeviceType, Thresholds] = {}
    # An alarm's timeline keeps this many plain repeats (a button pressed again) at each
    # end; those between are elided and counted (`count` stays exact).
    timeline_repeats: int = Field(10, ge=1, le=10_000)
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


class Addressee(StrEnum):
    """Who an escalation step or a reminder reaches besides the contacts' roles: whoever the
    duty roster has on duty now (issue 12), at the alarm's site or at the bureau."""

    ON_DUTY = "on_duty"
    BUREAU_ON_DUTY = "bureau_on_duty"


class EscalationStepConfig(_Model):
    after: Seconds = 0.0  # after the alarm is raised, if still unacknowledged
    to: list[ContactRole | Addressee] = Field(min_length=1)
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
    # Where phones reach this gateway (README "Acknowledge from the phone"): SMS then carry
    # a personal acknowledgement link, robots a link to the console. None: no links.
    public_url: str | None = Field(None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    link_hours: int = Field(24, ge=1, le=168)  # how long a phone link works

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v


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


class IncidentsSection(_Model):
    """The reports an incident owes the bureau (seed 003: by phone within 30 minutes, in
    writing within 1 hour), in minutes from its opening."""

    phone_report_minutes: int = Field(30, ge=1, le=24 * 60)
    written_report_minutes: int = Field(60, ge=1, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _order(self) -> IncidentsSection:
        # The written report follows the call; due earlier, the call would never be first.
        if self.written_report_minutes < self.phone_report_minutes:
            raise ValueError("written_report_minutes must not be before phone_report_minutes")
        return self


class CheckItem(_Model):
    id: Ident
    label: str = Field(min_length=1)


# The seeds' checklist (003, 004): what an institution inspects every day.
_DEFAULT_CHECK_ITEMS = (
    ("gas", "燃气设施"), ("electrical", "电气线路与设备"), ("fire_exits", "消防通道与灭火器材"),
    ("heating", "取暖与燃煤设施"), ("kitchen", "厨房"), ("residents_visited", "重点人员走访"),
)  # fmt: skip


class DailyChecksSection(_Model):
    """The daily self-report (seeds 003, 004: 每天下午3点前上报), in the gateway's zone."""

    due: str = Field("15:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    remind_at: str = Field("14:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    items: list[CheckItem] = Field(
        default_factory=lambda: [CheckItem(id=i, label=t) for i, t in _DEFAULT_CHECK_ITEMS],
        min_length=1,
    )

    @model_validator(mode="after")
    def _consistent(self) -> DailyChecksSection:
        if self.remind_at >= self.due:  # HH:MM strings compare as times
            raise ValueError("remind_at must be before due")
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"items: duplicate id in {ids}")
        return self


class DutySection(_Model):
    per_shift: int = Field(2, ge=1, le=20)  # on duty per shift at most (seed 003: 双人、双岗)


class HazardsSection(_Model):
    """When the gateway suggests a hazard from its own alarms (issue 12; suggested, never
    entered by itself): durations as elsewhere (`24 h`, `720 h`)."""

    offline_after: PositiveSeconds = Field(24 * 3600.0, ge=3600, le=90 * 86400)
    false_alarms: int = Field(3, ge=2, le=100)  # false alarms of one device within the window
    # Also how far back a closed valve failure or real electrical alarm is still "recent".
    false_alarm_window: PositiveSeconds = Field(30 * 86400.0, ge=86400, le=366 * 86400)


class RemindersSection(_Model):
    """The closed loop's reminders and alerts (issue 12; README "Reminders and alerts"): the
    self-report's reminder and missing list, an incident's missed report deadlines, a hazard's
    coming and passed deadline. Each goes out once, through `channels` in fallback order
    (empty: the first step of the critical policy, its voice channels left out: a reminder is
    read, not rung)."""

    enabled: bool = True
    channels: list[Ident] = []
    hazard_before: PositiveSeconds = Field(24 * 3600.0, ge=600, le=30 * 86400)


class StorageSection(_Model):
    """Backups and retention of the data directory's databases (README "Data, backups and
    upgrades"). Relative directories are under `gateway.data_dir`."""

    backup_dir: Path = Path("backups")
    backup_keep: int = Field(7, ge=1, le=365)  # per database
    backup_at: str = Field("03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")  # local time
    # Closed alarms older than this are archived; a year of daily reports reads back 366 days.
    retention_days: int = Field(400, ge=30)
    archive_dir: Path = Path("archive")

    @model_validator(mode="after")
    def _apart(self) -> StorageSection:
        # Backups are pruned by name (`alarms-*.sqlite3`), and archive files are named so
        # too: in one directory, pruning backups would delete the archive.
        if Path(self.backup_dir) == Path(self.archive_dir):
            raise ValueError("backup_dir and archive_dir must be different directories")
        if Path(".") in (Path(self.backup_dir), Path(self.archive_dir)):
            raise ValueError("backup_dir and archive_dir must not be the data directory itself")
        return self

    def backups_in(self, data_dir: Path) -> Path:
        return data_dir / self.backup_dir

    def archive_in(self, data_dir: Path) -> Path:
        return data_dir / self.archive_dir


class GatewayConfig(_Model):
    gateway: GatewaySection
    http: HttpSection = HttpSection()
    mqtt: MqttSection | None = None  # absent: run/demo start an embedded broker
    influx: InfluxSection | None = None
    rules: RulesSection = RulesSection()
    notify: NotifySection = NotifySection()
    report: ReportSection = ReportSection()
    storage: StorageSection = StorageSection()
    incidents: IncidentsSection = IncidentsSection()
    daily_checks: DailyChecksSection = DailyChecksSection()
    duty: DutySection = DutySection()
    hazards: HazardsSection = HazardsSection()
    reminders: RemindersSection = RemindersSection()
    mappings: list[PayloadMapping] = []  # payload mappings written here (issue 13)
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

    @cached_property
    def codecs(self) -> dict[str, PayloadMapping]:
        """The payload mappings (built in, from `gateway.mapping_dirs`, and `mappings`), read
        once. Raises MappingError (a bad file, or a name defined twice)."""
        found = all_mappings(tuple(self.gateway.mapping_dirs))
        return found | {m.name: m for m in self.mappings if m.name not in found}
