"""Named scenarios: what the simulated devices of one site do over time.

A scenario is an async function of a `SimSite`; it changes device values and sends
events, while `SimSite.run_telemetry` keeps every device reporting on its interval.
`speed` scales time, so a test can run a minutes-long story in seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from simulator.devices import BrokerAddress, SimDevice, ValveSim, make_device

log = logging.getLogger(__name__)


@dataclass
class SimSite:
    site: str
    devices: dict[str, SimDevice]
    links: dict[str, str] = field(default_factory=dict)  # detector id -> valve id
    speed: float = 1.0

    @classmethod
    def from_config(
        cls,
        broker: BrokerAddress,
        site_id: str,
        devices: list[tuple[str, str, str | None]],
        interval_s: float,
        speed: float = 1.0,
    ) -> SimSite:
        """`devices`: (id, type, shutoff_valve) of the site's MQTT devices."""
        sims = {d: make_device(broker, site_id, d, t, interval_s) for d, t, _ in devices}
        links = {d: v for d, _, v in devices if v}
        return cls(site_id, sims, links, speed)

    def of_type(self, device_type: str) -> list[SimDevice]:
        return [d for d in self.devices.values() if d.type == device_type]

    def first(self, device_type: str) -> SimDevice:
        found = self.of_type(device_type)
        if not found:
            raise ScenarioError(f"site {self.site} has no {device_type} for this scenario")
        return found[0]

    def valve_for(self, detector: SimDevice) -> ValveSim | None:
        valve = self.devices.get(self.links.get(detector.id, ""))
        return valve if isinstance(valve, ValveSim) else None

    def connect(self) -> None:
        for d in self.devices.values():
            d.connect()

    def disconnect(self) -> None:
        for d in self.devices.values():
            d.disconnect()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    async def run_telemetry(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time() * self.speed
            for d in self.devices.values():
                d.tick(now)
            await asyncio.sleep(0.1)


class ScenarioError(Exception):
    pass


Scenario = Callable[[SimSite], Awaitable[None]]


def _gas_detector_with_valve(site: SimSite) -> tuple[SimDevice, ValveSim | None]:
    for det in site.of_type("gas_detector"):
        valve = site.valve_for(det)
        if valve is not None:
            return det, valve
    return site.first("gas_detector"), None


async def _ramp(
    site: SimSite, dev: SimDevice, quantity: str, start: float, end: float, seconds: float
) -> None:
    steps = max(1, int(seconds))
    for i in range(steps + 1):
        dev.values[quantity] = round(start + (end - start) * i / steps, 2)
        dev.publish_telemetry()
        await site.sleep(1.0)


async def normal(site: SimSite) -> None:
    """Every device healthy and quiet."""
    await asyncio.Event().wait()


async def gas_leak(site: SimSite) -> None:
    """Gas rises past pre-alarm and level 1; the valve closes; the gas disperses."""
    det, valve = _gas_detector_with_valve(site)
    await site.sleep(3)
    log.info("gas leak starts at %s", det.id)
    await _ramp(site, det, "lel", 0.0, 32.0, 12)
    for _ in range(60):
        if valve is None or not valve.is_open:
            break
        await site.sleep(1)
    await site.sleep(5)
    log.info("gas supply is off: the gas at %s disperses", det.id)
    await _ramp(site, det, "lel", det.values["lel"], 0.0, 15)


async def stuck_valve(site: SimSite) -> None:
    """A gas leak with a valve that does not respond: valve_failure must follow."""
    det, valve = _gas_detector_with_valve(site)
    if valve is None:
        raise ScenarioError("stuck_valve needs a gas detector linked to a valve")
    valve.stuck = True
    await site.sleep(3)
    await _ramp(site, det, "lel", 0.0, 30.0, 6)


async def button_press(site: SimSite) -> None:
    """Someone presses the one-click fire alarm button."""
    await site.sleep(3)
    site.first("alarm_button").publish_event("pressed")


async def device_silent(site: SimSite) -> None:
    """A gas detector hangs: connected, but it stops reporting."""
    det = site.first("gas_detector")
    await site.sleep(3)
    log.info("%s stops reporting", det.id)
    det.publishing = False


async def device_offline(site: SimSite) -> None:
    """A gas detector loses power: its connection drops and the broker publishes its will."""
    det = site.first("gas_detector")
    await site.sleep(3)
    log.info("%s loses power", det.id)
    det.crash()


async def flapping(site: SimSite) -> None:
    """Gas hovers around the level-1 threshold: one alarm, not many."""
    det, _ = _gas_detector_with_valve(site)
    for i in range(40):
        det.values["lel"] = 21.0 if i % 2 == 0 else 19.0
        det.publish_telemetry()
        await site.sleep(1)


async def co_leak(site: SimSite) -> None:
    """A charcoal heater in a closed room: CO climbs to 300 ppm."""
    co = site.first("co_detector")
    await site.sleep(3)
    await _ramp(site, co, "co_ppm", 0.0, 300.0, 10)


async def residual_current(site: SimSite) -> None:
    """Insulation breaks down: residual current rises past 300 mA."""
    efm = site.first("electrical_fire_monitor")
    await site.sleep(3)
    await _ramp(site, efm, "residual_ma", 35.0, 420.0, 10)


SCENARIOS: dict[str, Scenario] = {
    "normal": normal,
    "gas_leak": gas_leak,
    "stuck_valve": stuck_valve,
    "button_press": button_press,
    "device_silent": device_silent,
    "device_offline": device_offline,
    "flapping": flapping,
    "co_leak": co_leak,
    "residual_current": residual_current,
}


async def run_scenario(site: SimSite, name: str, linger_s: float | None = None) -> None:
    """Connect the site's devices, run the scenario with telemetry going, then linger."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    site.connect()
    try:
        async with asyncio.TaskGroup() as tg:
            telemetry = tg.create_task(site.run_telemetry(), name="sim-telemetry")
            await scenario(site)
            if linger_s is None:
                await asyncio.Event().wait()  # keep reporting until stopped
            else:
                await site.sleep(linger_s)
            telemetry.cancel()
    finally:
        site.disconnect()
