"""What a reloaded configuration changes, and the part of it a running gateway can take.

Pure: `plan_reload(running, new)` compares two valid configurations and returns the
configuration to run from now on (`ReloadPlan.config`) with what differs. Settings read only
at start (the broker, the gateway's id, data directory and time zone, the HTTP server and
its tokens, the time-series server, the daily report, the provider timeout) and a change of
which gateway serves a site (it changes the MQTT subscriptions and who acts) are not
applied: they keep their running value and are listed in `needs_restart`. Everything else
(sites, their contacts and devices, the rules, the Modbus profiles, notification channels
and policies) is applied whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.config.schema import GatewayConfig, SiteConfig
from rules.model import DeviceRef

# The sections a reload applies (some settings in them excepted, below); every other one is
# read once at start, a section added to the schema later included, until it says otherwise.
_APPLIED = frozenset({"gateway", "rules", "notify", "sites"})


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    config: GatewayConfig  # the new file, with its restart-only settings as they run
    needs_restart: tuple[str, ...]  # settings changed in the file but not applied
    sites_added: frozenset[str]
    sites_removed: frozenset[str]
    sites_changed: frozenset[str]  # name, kind, address or contacts
    devices_added: frozenset[DeviceRef]
    devices_removed: frozenset[DeviceRef]
    devices_changed: frozenset[DeviceRef]
    rules_changed: bool  # the `rules` section: every device's rules may differ
    notify_changed: bool

    @property
    def changed(self) -> bool:
        return bool(
            self.sites_added
            or self.sites_removed
            or self.sites_changed
            or self.devices_added
            or self.devices_removed
            or self.devices_changed
            or self.rules_changed
            or self.notify_changed
        )

    def summary(self) -> dict[str, object]:
        """For the log and `/api/health`: what changed, by name."""
        return {
            "sites_added": sorted(self.sites_added),
            "sites_removed": sorted(self.sites_removed),
            "sites_changed": sorted(self.sites_changed),
            "devices_added": sorted(str(r) for r in self.devices_added),
            "devices_removed": sorted(str(r) for r in self.devices_removed),
            "devices_changed": sorted(str(r) for r in self.devices_changed),
            "rules_changed": self.rules_changed,
            "notify_changed": self.notify_changed,
            "needs_restart": list(self.needs_restart),
        }


def plan_reload(running: GatewayConfig, new: GatewayConfig) -> ReloadPlan:
    restart: list[str] = []
    # Modbus profiles are read with the file: new profile directories apply at once.
    gateway = running.gateway.model_copy(update={"profile_dirs": new.gateway.profile_dirs})
    if new.gateway != gateway:
        restart += [f"gateway.{k}" for k in _fields_differing(gateway, new.gateway)]
    kept: dict[str, object] = {}
    for section in GatewayConfig.model_fields:
        if section not in _APPLIED:
            kept[section] = getattr(running, section)
            if getattr(new, section) != kept[section]:
                restart.append(section)
    if new.rules.edge_offline_after != running.rules.edge_offline_after:
        restart.append("rules.edge_offline_after")
    if new.notify.timeout != running.notify.timeout:
        restart.append("notify.timeout")
    sites, site_restart = _sites(running, new)
    restart += site_restart
    if _served(running.sites) != _served(sites):
        # The presence message (will included) is the broker connection's, set at connect.
        restart.append("presence: the sites this gateway announces it serves")
    config = new.model_copy(
        update={
            **kept,
            "gateway": gateway,
            "rules": new.rules.model_copy(
                update={"edge_offline_after": running.rules.edge_offline_after}
            ),
            "notify": new.notify.model_copy(update={"timeout": running.notify.timeout}),
            "sites": sites,
        }
    )
    old_sites = {s.id: s for s in running.sites}
    new_sites = {s.id: s for s in config.sites}
    old_devs = {DeviceRef(s.id, d.id): d for s, d in running.devices()}
    new_devs = {DeviceRef(s.id, d.id): d for s, d in config.devices()}
    return ReloadPlan(
        config=config,
        needs_restart=tuple(restart),
        sites_added=frozenset(new_sites.keys() - old_sites.keys()),
        sites_removed=frozenset(old_sites.keys() - new_sites.keys()),
        sites_changed=frozenset(
            sid
            for sid in new_sites.keys() & old_sites.keys()
            if _site_itself(new_sites[sid]) != _site_itself(old_sites[sid])
        ),
        devices_added=frozenset(new_devs.keys() - old_devs.keys()),
        devices_removed=frozenset(old_devs.keys() - new_devs.keys()),
        devices_changed=frozenset(
            ref for ref in new_devs.keys() & old_devs.keys() if new_devs[ref] != old_devs[ref]
        ),
        rules_changed=config.rules != running.rules,
        notify_changed=config.notify != running.notify,
    )


def _sites(running: GatewayConfig, new: GatewayConfig) -> tuple[list[SiteConfig], list[str]]:
    """The new file's sites, except that a site whose serving gateway changes (added or
    removed as an edge's site, or moved between this gateway and an edge) stays as it runs."""
    old = {s.id: s for s in running.sites}
    fresh = {s.id: s for s in new.sites}
    restart: list[str] = []
    sites: list[SiteConfig] = []
    for site in new.sites:
        before = old.get(site.id)
        served = (site.served_by, site.edge_gateway)
        if before is None and site.served_by == "edge":
            restart.append(f"sites.{site.id}: added, served by an edge gateway")
        elif before is not None and (before.served_by, before.edge_gateway) != served:
            restart.append(f"sites.{site.id}: served_by/edge_gateway")
            sites.append(before)
        else:
            sites.append(site)
    for site in running.sites:
        if site.id not in fresh and site.served_by == "edge":
            restart.append(f"sites.{site.id}: removed, served by an edge gateway")
            sites.append(site)
    return sites, restart


def _served(sites: list[SiteConfig]) -> list[str]:
    return [s.id for s in sites if s.served_by == "self"]


def _site_itself(site: SiteConfig) -> SiteConfig:
    """The site without its devices (they are compared one by one)."""
    return site.model_copy(update={"devices": []})


def _fields_differing(a: object, b: object) -> Iterator[str]:
    for name in type(a).model_fields:  # type: ignore[attr-defined]
        if getattr(a, name) != getattr(b, name):
            yield name
