"""Named scenarios: what the simulated devices of one site do over time.

A scenario is an async function of a `SimSite`. It changes device values and sends events
through the site, which knows how each device is reached: MQTT devices publish (and
`run_telemetry` keeps them reporting on their interval), Modbus devices change their
register image in a pymodbus server that the gateway polls, and a controller channel
changes the controller's register for that channel. `speed` scales the story's pauses,
so a test can run a minutes-long story in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from simulator.devices import SimDevice, ValveSim
from simulator.modbus_device import DeviceMode, SimModbusDevice
from simulator.modbus_server import SimModbusServer

log = logging.getLogger(__name__)


class ScenarioError(Exception):
    pass


@dataclass
class SimSite:
    site: str
    types: dict[str, str]  # every simulated device id -> its device type
    mqtt: dict[str, SimDevice] = field(default_factory=dict)
    modbus: dict[str, SimModbusDevice] = field(default_factory=dict)
    channels: dict[str, tuple[str, int]] = field(
        default_factory=dict
    )  # detector -> (controller, ch)
    links: dict[str, str] = field(default_factory=dict)  # detector id -> valve id
    servers: list[SimModbusServer] = field(default_factory=list)
    speed: float = 1.0
    focus: str | None = None  # the device the scenario should act on (--device)

    # ------------------------------------------------------------ lookups
    def ids_of_type(self, device_type: str) -> list[str]:
        return [d for d, t in self.types.items() if t == device_type]

    def first_id(self, device_type: str, *, where: Callable[[str], bool] = lambda _: True) -> str:
        found = [d for d in self.ids_of_type(device_type) if where(d)]
        if self.focus in found:
            return self.focus
        if not found:
            raise ScenarioError(f"site {self.site} has no suitable {device_type} for this scenario")
        return found[0]

    # ------------------------------------------------------------- acting
    def set(self, device: str, quantity: str, value: float) -> None:
        """Give a device a new measured value, however it is reached."""
        if device in self.mqtt:
            sim = self.mqtt[device]
            sim.values[quantity] = value
            sim.publish_telemetry()
        elif device in self.modbus:
            self.modbus[device].set_quantity(quantity, value)
        elif device in self.channels:
            controller, channel = self.channels[device]
            self.modbus[controller].set_quantity(quantity, value, channel=channel)
        else:
            raise ScenarioError(f"{device} is not simulated here")

    def get(self, device: str, quantity: str) -> float:
        if device in self.mqtt:
            return self.mqtt[device].values.get(quantity, 0.0)
        sim, channel = self._modbus_of(device)
        for p in sim.profile.points:
            if p.quantity == quantity and p.channel == channel:
                return sim.value(p.name)
        raise ScenarioError(f"{device} has no {quantity}")

    def _modbus_of(self, device: str) -> tuple[SimModbusDevice, int | None]:
        if device in self.modbus:
            return self.modbus[device], None
        if device in self.channels:
            controller, channel = self.channels[device]
            return self.modbus[controller], channel
        raise ScenarioError(f"{device} is not a Modbus device")

    def valve_open(self, valve: str) -> bool:
        sim = self.mqtt.get(valve)
        if isinstance(sim, ValveSim):
            return sim.is_open
        return self.get(valve, "open") >= 0.5

    def make_stuck(self, valve: str) -> None:
        sim = self.mqtt.get(valve)
        if isinstance(sim, ValveSim):
            sim.stuck = True
        else:
            self._modbus_of(valve)[0].stuck = True

    def silence(self, device: str) -> None:
        """Connected (MQTT) or wired (Modbus) but no longer answering."""
        if device in self.mqtt:
            self.mqtt[device].publishing = False
        else:
            self._modbus_of(device)[0].mode = DeviceMode.SILENT

    def refuse(self, device: str) -> None:
        self._modbus_of(device)[0].mode = DeviceMode.EXCEPTION

    def event(self, device: str, event: str) -> None:
        self.mqtt[device].publish_event(event)

    # ------------------------------------------------------------ running
    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    async def run_telemetry(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time() * self.speed
            for d in self.mqtt.values():
                d.tick(now)
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        for d in self.mqtt.values():
            d.connect()
        try:
            async with contextlib.AsyncExitStack() as stack:
                for server in self.servers:
                    await stack.enter_async_context(server)
                yield
        finally:
            for d in self.mqtt.values():
                d.disconnect()


Scenario = Callable[[SimSite], Awaitable[None]]


async def _ramp(
    site: SimSite, device: str, quantity: str, start: float, end: float, seconds: float
) -> None:
    steps = max(1, int(seconds))
    for i in range(steps + 1):
        site.set(device, quantity, round(start + (end - start) * i / steps, 2))
        await site.sleep(1.0)


def _detector_with_valve(site: SimSite, *, channel: bool | None = None) -> tuple[str, str | None]:
    def ok(d: str) -> bool:
        return channel is None or (d in site.channels) == channel

    linked = [d for d in site.ids_of_type("gas_detector") if d in site.links and ok(d)]
    if site.focus in linked:
        return site.focus, site.links[site.focus]
    if linked:
        return linked[0], site.links[linked[0]]
    return site.first_id("gas_detector", where=ok), None


async def normal(site: SimSite) -> None:
    """Every device healthy and quiet."""
    await asyncio.Event().wait()


async def gas_leak(site: SimSite, *, channel: bool | None = None) -> None:
    """Gas rises past pre-alarm and level 1; the valve closes; the gas disperses."""
    det, valve = _detector_with_valve(site, channel=channel)
    await site.sleep(3)
    log.info("gas leak starts at %s", det)
    await _ramp(site, det, "lel", 0.0, 32.0, 12)
    for _ in range(60):
        if valve is None or not site.valve_open(valve):
            break
        await site.sleep(1)
    await site.sleep(5)
    log.info("gas supply is off: the gas at %s disperses", det)
    await _ramp(site, det, "lel", site.get(det, "lel"), 0.0, 15)


async def gas_channel_leak(site: SimSite) -> None:
    """A detector channel of a Modbus gas alarm controller reads a leak."""
    await gas_leak(site, channel=True)


async def stuck_valve(site: SimSite) -> None:
    """A gas leak with a valve that does not respond: valve_failure must follow."""
    det, valve = _detector_with_valve(site)
    if valve is None:
        raise ScenarioError("stuck_valve needs a gas detector linked to a valve")
    site.make_stuck(valve)
    await site.sleep(3)
    await _ramp(site, det, "lel", 0.0, 30.0, 6)


async def button_press(site: SimSite) -> None:
    """Someone presses the one-click fire alarm button."""
    await site.sleep(3)
    site.event(site.first_id("alarm_button", where=lambda d: d in site.mqtt), "pressed")


async def device_silent(site: SimSite) -> None:
    """A gas detector hangs: connected, but it stops reporting."""
    det = site.first_id("gas_detector", where=lambda d: d in site.mqtt)
    await site.sleep(3)
    log.info("%s stops reporting", det)
    site.silence(det)


async def device_offline(site: SimSite) -> None:
    """A gas detector loses power: its connection drops and the broker publishes its will."""
    det = site.first_id("gas_detector", where=lambda d: d in site.mqtt)
    await site.sleep(3)
    log.info("%s loses power", det)
    site.mqtt[det].crash()


def _modbus_device(site: SimSite) -> str | None:
    if site.focus in site.modbus:
        return site.focus
    return next(iter(site.modbus), None)


async def modbus_silent(site: SimSite) -> None:
    """A polled device stops answering (power cut, broken RS-485 line)."""
    dev = _modbus_device(site)
    if dev is None:
        raise ScenarioError(f"site {site.site} has no Modbus device")
    await site.sleep(3)
    log.info("%s stops answering", dev)
    site.silence(dev)


async def exception_responses(site: SimSite) -> None:
    """A polled device answers every request with a Modbus exception (internal failure)."""
    dev = _modbus_device(site)
    if dev is None:
        raise ScenarioError(f"site {site.site} has no Modbus device")
    await site.sleep(3)
    log.info("%s answers with exception responses", dev)
    site.refuse(dev)


async def flapping(site: SimSite) -> None:
    """Gas hovers around the level-1 threshold: one alarm, not many."""
    det, _ = _detector_with_valve(site)
    for i in range(40):
        site.set(det, "lel", 21.0 if i % 2 == 0 else 19.0)
        await site.sleep(1)


async def co_leak(site: SimSite) -> None:
    """A charcoal heater in a closed room: CO climbs to 300 ppm."""
    await site.sleep(3)
    await _ramp(site, site.first_id("co_detector"), "co_ppm", 0.0, 300.0, 10)


async def residual_current(site: SimSite) -> None:
    """Insulation breaks down: residual current rises past 300 mA."""
    efm = site.first_id("electrical_fire_monitor")
    await site.sleep(3)
    await _ramp(site, efm, "residual_ma", 35.0, 420.0, 10)


async def cable_overheating(site: SimSite) -> None:
    """An overloaded cable heats up: temperature channel 2 climbs past 70 °C."""
    efm = site.first_id("electrical_fire_monitor")
    await site.sleep(3)
    await _ramp(site, efm, "temp_c_2", 30.0, 85.0, 10)


SCENARIOS: dict[str, Scenario] = {
    "normal": normal,
    "gas_leak": gas_leak,
    "gas_channel_leak": gas_channel_leak,
    "stuck_valve": stuck_valve,
    "button_press": button_press,
    "device_silent": device_silent,
    "device_offline": device_offline,
    "modbus_silent": modbus_silent,
    "exception_responses": exception_responses,
    "flapping": flapping,
    "co_leak": co_leak,
    "residual_current": residual_current,
    "cable_overheating": cable_overheating,
}


async def run_scenario(site: SimSite, name: str, linger_s: float | None = None) -> None:
    """Start the site's devices, run the scenario with telemetry going, then linger."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    async with site.running(), asyncio.TaskGroup() as tg:
        telemetry = tg.create_task(site.run_telemetry(), name="sim-telemetry")
        await scenario(site)
        if linger_s is None:
            await asyncio.Event().wait()  # keep reporting until stopped
        else:
            await site.sleep(linger_s)
        telemetry.cancel()
