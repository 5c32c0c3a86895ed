"""What is installed where: sites and devices from the configuration, indexed for lookups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.config.schema import DeviceConfig, GatewayConfig, SiteConfig
from rules.model import DeviceRef, DeviceType


@dataclass(frozen=True, slots=True)
class InstalledDevice:
    ref: DeviceRef
    config: DeviceConfig
    site: SiteConfig

    @property
    def type(self) -> DeviceType:
        return self.config.type


class AmbiguousDevice(Exception):
    def __init__(self, device: str, sites: list[str]) -> None:
        super().__init__(f"device {device!r} exists in several sites: {', '.join(sites)}")
        self.sites = sites


class Inventory:
    def __init__(self, config: GatewayConfig) -> None:
        self.devices: dict[DeviceRef, InstalledDevice] = {}
        self.valve_of: dict[DeviceRef, DeviceRef] = {}
        self._retired_links: set[tuple[DeviceRef, DeviceRef]] = set()
        self.retired: set[DeviceRef] = set()  # removed by a reload (their alarms stay open)
        self.reload(config)

    def reload(self, config: GatewayConfig) -> None:
        """Index a reloaded configuration, in place: every stage holding this inventory
        sees the new sites and devices at once."""
        devices: dict[DeviceRef, InstalledDevice] = {}
        by_device_id: dict[str, list[DeviceRef]] = {}
        valve_of: dict[DeviceRef, DeviceRef] = {}
        for site, dev in config.devices():
            ref = DeviceRef(site.id, dev.id)
            devices[ref] = InstalledDevice(ref, dev, site)
            by_device_id.setdefault(dev.id, []).append(ref)
            if dev.shutoff_valve:
                valve_of[ref] = DeviceRef(site.id, dev.shutoff_valve)
        # A detector that a reload removes, or links to another valve, still blocks the
        # reopening of its old valve while its gas alarm is open (`detectors_closing`).
        self._retired_links |= {
            (det, v) for det, v in self.valve_of.items() if valve_of.get(det) != v
        }
        gone = self.devices.keys() - devices.keys()
        self.retired = (self.retired | gone) - devices.keys()
        self.sites: dict[str, SiteConfig] = {s.id: s for s in config.sites}
        self.devices = devices
        self._by_device_id = by_device_id
        self.valve_of = valve_of

    def __iter__(self) -> Iterator[InstalledDevice]:
        return iter(self.devices.values())

    def get(self, ref: DeviceRef) -> InstalledDevice | None:
        return self.devices.get(ref)

    def resolve(self, device_id: str, site: str | None) -> InstalledDevice | None:
        """Find a device by id; `site` is needed only when the id is used in several sites."""
        if site is not None:
            return self.devices.get(DeviceRef(site, device_id))
        refs = self._by_device_id.get(device_id, [])
        if len(refs) > 1:
            raise AmbiguousDevice(device_id, [r.site for r in refs])
        return self.devices[refs[0]] if refs else None

    def detectors_closing(self, valve: DeviceRef) -> list[DeviceRef]:
        """The detectors that close `valve`, and those that did before a reload."""
        found = [det for det, v in self.valve_of.items() if v == valve]
        return found + [det for det, v in sorted(self._retired_links) if v == valve]
