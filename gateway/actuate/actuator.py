"""Sends device commands and matches their acknowledgements.

A command leaves the gateway the moment it is asked for: `send` queues it on the MQTT
link's priority lane and returns; the record in the store and the alarm timeline entry
are written after, off the critical path, and the record (sent, then with its result) is
published on `{prefix}/{site}/commands` for the bureau (central mode), behind commands
and alarms. Confirmation (ack or valve feedback) is judged
by the rule engine, which owns the deadline; this module only matches ack ids.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from drivers.codec import CommandAck, encode
from drivers.mqtt import PRIORITY_COMMAND, PRIORITY_INFO, MqttLink, Publication
from gateway.actuate.wire import CommandRecord, command_json
from gateway.config.clockface import Clockface
from rules.model import CommandKind, CommandResult, DeviceRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentCommand:
    id: str
    ref: DeviceRef
    cmd: CommandKind
    alarm_id: str | None
    requested_by: str
    reason: str | None
    sent_at: float


class Actuator:
    MAX_PENDING = 10_000  # acks older than this many commands are no longer matched

    def __init__(
        self,
        link: MqttLink,
        topic_prefix: str,
        store: CommandLog,
        clockface: Clockface,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        modbus: ModbusRoute | None = None,
    ) -> None:
        self._link = link
        self._prefix = topic_prefix
        self._store = store
        self._clockface = clockface
        self._new_id = new_id
        self._pending: OrderedDict[str, SentCommand] = OrderedDict()
        self._modbus = modbus  # the devices this gateway polls: commanded on their bus

    def send(
        self,
        ref: DeviceRef,
        cmd: CommandKind,
        *,
        alarm_id: str | None,
        requested_by: str,
        reason: str | None,
        now: float,
    ) -> SentCommand:
        sent = SentCommand(self._new_id(), ref, cmd, alarm_id, requested_by, reason, now)
        if self._modbus is not None and self._modbus.handles(ref):
            # Queued on the device's bus ahead of the next poll; the outcome comes back
            # through `complete` once the feedback point is read back (or is not).
            if not self._modbus.submit(ref, cmd, sent.id):
                log.error("%s cannot do %s: its Modbus profile has no such command", ref, cmd.value)
        else:
            payload: dict[str, str] = {"id": sent.id, "cmd": cmd.value}
            if alarm_id is not None:
                payload["reason"] = alarm_id
            topic = f"{self._prefix}/{ref.site}/{ref.device}/cmd"
            self._link.publish(Publication(topic, encode(payload), qos=1), PRIORITY_COMMAND)
        self._pending[sent.id] = sent
        while len(self._pending) > self.MAX_PENDING:
            self._pending.popitem(last=False)
        self._record(
            CommandRecord(
                sent.id, ref.site, ref.device, cmd.value, requested_by, alarm_id, reason, now
            )
        )
        log.info("sent %s to %s (alarm %s, by %s)", cmd.value, ref, alarm_id, requested_by)
        return sent

    def on_ack(
        self, ref: DeviceRef, ack: CommandAck, now: float
    ) -> tuple[SentCommand, CommandResult] | None:
        return self.complete(ack.command_id, ref, ack.ok, ack.detail, now)

    def complete(
        self, command_id: str, ref: DeviceRef, ok: bool, detail: str | None, now: float
    ) -> tuple[SentCommand, CommandResult] | None:
        """A command's outcome (MQTT ack, Modbus read-back): recorded, and handed back; None
        when it matches no command sent to that device."""
        sent = self._pending.get(command_id)
        if sent is None or sent.ref != ref:
            return None  # matches no command we sent: the caller says so, rate-limited
        del self._pending[command_id]
        self._record(
            CommandRecord(
                sent.id,
                ref.site,
                ref.device,
                sent.cmd.value,
                sent.requested_by,
                sent.alarm_id,
                sent.reason,
                sent.sent_at,
                "ok" if ok else "failed",
                now,
                detail,
            )
        )
        if not ok:
            log.warning("%s to %s failed: %s", sent.cmd.value, ref, detail)
        return sent, CommandResult(ref, sent.cmd, ok)

    def _record(self, record: CommandRecord) -> None:
        self._store.submit_command(record)
        topic = f"{self._prefix}/{record.site}/commands"
        payload = encode(command_json(record, self._clockface))
        self._link.publish(Publication(topic, payload, qos=1), PRIORITY_INFO)


class CommandLog(Protocol):
    """Where command records are kept (the alarm store, which owns the table)."""

    def submit_command(self, record: CommandRecord) -> object: ...


class ModbusRoute(Protocol):
    def handles(self, ref: DeviceRef) -> bool: ...
    def submit(self, ref: DeviceRef, cmd: CommandKind, command_id: str) -> bool: ...
