"""People's actions on alarms and devices: acknowledge, close, and manual commands.

Each waits for its write to be on disk before it answers (an ack the console saw must
survive a crash). Reopening gas is interlocked: `open_valve` is refused while a gas alarm
on any detector that closes this valve is not closed, and then only a person sends it.
`reset` (silence the device's own sounder, release its latched relay) is refused while any
alarm of that device is open: the device's alarm is the evidence on site until a person
has closed the gateway's alarm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.actuate.actuator import Actuator, SentCommand
from gateway.alarms.book import Alarm, AlarmBook, AlarmWrite, Disposition, TransitionRefused
from gateway.alarms.dispatch import AlarmDispatcher
from gateway.config.inventory import InstalledDevice, Inventory
from gateway.health.metrics import Metrics
from rules.engine import RuleEngine
from rules.model import AlarmKey, AlarmType, CommandKind, DeviceRef, DeviceType

# Which commands make sense for which device type; anything else is refused with 400.
COMMANDS_FOR: dict[DeviceType, frozenset[CommandKind]] = {
    DeviceType.GAS_VALVE: frozenset(
        {CommandKind.CLOSE_VALVE, CommandKind.OPEN_VALVE, CommandKind.RESET}
    ),
    DeviceType.ELECTRICAL_FIRE_MONITOR: frozenset({CommandKind.TRIP, CommandKind.RESET}),
    # A panel's latched alarms and sounders ("reset all alarms"); its detectors are channels.
    DeviceType.GAS_ALARM_CONTROLLER: frozenset({CommandKind.RESET}),
}


class CommandNotApplicable(Exception):
    pass


class ModbusCapabilities(Protocol):
    def handles(self, ref: DeviceRef) -> bool: ...
    def supports(self, ref: DeviceRef, cmd: CommandKind) -> bool: ...


class AlarmActions:
    def __init__(
        self,
        *,
        book: AlarmBook,
        dispatcher: AlarmDispatcher,
        engine: RuleEngine,
        actuator: Actuator,
        inventory: Inventory,
        metrics: Metrics,
        modbus: ModbusCapabilities | None,
        clock: Callable[[], float],
    ) -> None:
        self._book = book
        self._dispatcher = dispatcher
        self._engine = engine
        self._actuator = actuator
        self._inventory = inventory
        self._metrics = metrics
        self._modbus = modbus
        self._clock = clock

    async def ack(self, alarm_id: str, by: str, note: str | None) -> Alarm:
        write = self._book.ack(alarm_id, by, note, self._clock())
        await self._on_disk(write)
        return write.alarm

    async def respond(
        self, alarm_id: str, by: str, status: str, note: str | None, *, via: str, source: str
    ) -> Alarm:
        write = self._book.respond(
            alarm_id, by, status, note, self._clock(), via=via, source=source
        )
        await self._on_disk(write)
        return write.alarm

    async def close(
        self, alarm_id: str, by: str, disposition: Disposition, note: str | None
    ) -> Alarm:
        alarm = self._book.get(alarm_id)
        unwatched = alarm is not None and DeviceRef(alarm.site, alarm.device) in (
            self._inventory.retired
        )
        write = self._book.close(
            alarm_id, by, disposition, note, self._clock(), watched=not unwatched
        )
        await self._on_disk(write)
        return write.alarm

    def command(self, device: InstalledDevice, cmd: CommandKind, by: str) -> SentCommand:
        allowed = COMMANDS_FOR.get(device.type, frozenset())
        if cmd not in allowed:
            raise CommandNotApplicable(f"{cmd.value} is not a command for a {device.type.value}")
        ref = device.ref
        modbus = self._modbus
        if modbus is not None and modbus.handles(ref) and not modbus.supports(ref, cmd):
            raise CommandNotApplicable(f"the Modbus profile of {ref.device} has no {cmd.value}")
        if cmd is CommandKind.OPEN_VALVE:
            blocking = self._gas_alarms_on(ref)
            if blocking:
                a = blocking[0]
                raise TransitionRefused(
                    f"gas alarm {a.id} on {a.device} is {a.state.value}: the valve may be reopened "
                    "only after that alarm is closed, and by a person on site who has checked"
                )
            self._engine.on_manual_open(ref)
        elif cmd is CommandKind.RESET:
            still = self._open_alarm_of(device)
            if still is not None:
                raise TransitionRefused(
                    f"alarm {still.id} ({still.type.value}) on {still.device} is "
                    f"{still.state.value}: reset clears the device's local alarm only after "
                    "the gateway's alarm for it is closed"
                )
        now = self._clock()
        sent = self._actuator.send(
            ref, cmd, alarm_id=None, requested_by=by, reason="manual", now=now
        )
        if cmd is CommandKind.TRIP:
            self._dispatcher.trip_sent(ref)
        self._metrics.commands.labels(cmd.value, "sent").inc()
        return sent

    async def _on_disk(self, write: AlarmWrite) -> None:
        done = self._dispatcher.persist(write, wait=True)
        if done is not None:
            await done

    def _open_alarm_of(self, device: InstalledDevice) -> Alarm | None:
        """Any alarm not yet closed (active, cleared or acknowledged) of the device or, for
        a controller, of the detectors it reads as channels: its reset clears theirs too."""
        site = device.ref.site
        for name in (device.ref.device, *device.config.channels.values()):
            for t in AlarmType:
                alarm = self._book.find(AlarmKey(site, name, t))
                if alarm is not None:
                    return alarm
        return None

    def _gas_alarms_on(self, valve: DeviceRef) -> list[Alarm]:
        found = []
        for det in self._inventory.detectors_closing(valve):
            alarm = self._book.find(AlarmKey(det.site, det.device, AlarmType.GAS_LEAK))
            if alarm is not None:
                found.append(alarm)
        return found
