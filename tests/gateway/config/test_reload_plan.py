"""gateway/config/reload.py: what a reloaded file changes, and what waits for a restart.
Pure: two parsed configurations in, a plan out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gateway.config.inventory import Inventory
from gateway.config.loading import parse_config
from gateway.config.reload import plan_reload
from rules.model import DeviceRef
from tests.support.config import base


def plan(change: Any) -> Any:
    old = base()
    new = copy.deepcopy(old)
    change(new)
    return plan_reload(parse_config(old), parse_config(new))


def test_same_file_changes_nothing() -> None:
    p = plan(lambda d: None)
    assert not p.changed and p.needs_restart == ()


def test_devices_added_removed_and_changed() -> None:
    def change(d: dict[str, Any]) -> None:
        devices = d["sites"][0]["devices"]
        devices.append({"id": "co-1", "type": "co_detector", "location": "room 101"})
        devices[:] = [x for x in devices if x["id"] != "efm-1"]
        devices[0]["location"] = "new kitchen"

    p = plan(change)
    assert p.devices_added == {DeviceRef("site-a", "co-1")}
    assert p.devices_removed == {DeviceRef("site-a", "efm-1")}
    assert p.devices_changed == {DeviceRef("site-a", "gas-1")}
    assert not p.sites_changed and p.needs_restart == ()
    assert [d.id for d in p.config.sites[0].devices] == ["gas-1", "valve-1", "co-1"]


def test_sites_and_contacts() -> None:
    def change(d: dict[str, Any]) -> None:
        d["sites"][0]["contacts"] = [
            {"name": "Wang", "role": "safety_manager", "phone": "13800000000"}
        ]
        d["sites"].append({"id": "site-b", "name": "Site B", "kind": "funeral"})

    p = plan(change)
    assert p.sites_added == {"site-b"} and p.sites_changed == {"site-a"}
    assert p.needs_restart == ("presence: the sites this gateway announces it serves",)
    assert p.config.sites[0].contacts[0].name == "Wang"


def test_restart_only_settings_are_listed_and_keep_their_running_value() -> None:
    def change(d: dict[str, Any]) -> None:
        d["gateway"]["data_dir"] = "/elsewhere"
        d["http"] = {"port": 9999}
        d["mqtt"] = {"url": "mqtt://10.0.0.1:1884"}
        d["notify"] = {"timeout": 3, "group_window": 5}
        d["sites"][0]["devices"].append({"id": "co-1", "type": "co_detector", "location": "x"})

    p = plan(change)
    assert set(p.needs_restart) == {"gateway.data_dir", "http", "mqtt", "notify.timeout"}
    assert str(p.config.gateway.data_dir) == "data" and p.config.http.port == 8080
    assert p.config.mqtt is None and p.config.notify.timeout == 10.0
    # What can change does, in the same reload.
    assert p.config.notify.group_window == 5.0 and p.notify_changed
    assert p.devices_added == {DeviceRef("site-a", "co-1")}


def test_a_site_changing_its_serving_gateway_waits_for_a_restart() -> None:
    def change(d: dict[str, Any]) -> None:
        d["sites"][0]["served_by"] = "edge"
        d["sites"][0]["edge_gateway"] = "edge-1"
        d["sites"][0]["devices"].append({"id": "co-1", "type": "co_detector", "location": "x"})
        d["sites"].append(
            {
                "id": "site-e",
                "name": "E",
                "kind": "other",
                "served_by": "edge",
                "edge_gateway": "e2",
            }
        )

    p = plan(change)
    assert len(p.needs_restart) == 2
    assert [s.id for s in p.config.sites] == ["site-a"]
    assert p.config.sites[0].served_by == "self"  # the whole site as it runs
    assert not p.devices_added and not p.sites_added and not p.changed


def test_new_profile_directories_apply_at_once(tmp_path: Path) -> None:
    p = plan(lambda d: d["gateway"].update({"profile_dirs": [str(tmp_path)]}))
    assert p.needs_restart == () and p.config.gateway.profile_dirs == [tmp_path]


def test_rules_change_is_seen() -> None:
    p = plan(lambda d: d.setdefault("rules", {}).update({"offline_after_intervals": 5}))
    assert p.rules_changed and p.changed and p.needs_restart == ()


def test_a_detector_removed_by_a_reload_still_blocks_its_old_valve() -> None:
    old = parse_config(base())
    inventory = Inventory(old)
    valve = DeviceRef("site-a", "valve-1")
    assert inventory.detectors_closing(valve) == [DeviceRef("site-a", "gas-1")]
    new = copy.deepcopy(base())
    new["sites"][0]["devices"] = new["sites"][0]["devices"][1:]  # gas-1 removed
    inventory.reload(parse_config(new))
    assert inventory.get(DeviceRef("site-a", "gas-1")) is None
    # Its open gas alarm (if any) must still keep the valve shut: the link is remembered.
    assert inventory.detectors_closing(valve) == [DeviceRef("site-a", "gas-1")]
