"""The bureau's view of its edge gateways (central mode): pure, messages and `now` in."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from gateway.central.edges import (
    EdgeState,
    EdgeWatch,
    Presence,
    edge_alarm_changes,
    presence_message,
)
from gateway.overview.queries import SiteStatus, StatusReason, site_status
from rules.model import AlarmKey, AlarmType, ChangeKind, Instant, Reason, Severity

T0 = 1_800_000_000.0
MONO0 = 7_000.0


def at(t: float, wall_step: float = 0.0) -> Instant:
    """Wall time `t` (plus a step of the wall clock), monotonic time running alongside."""
    return Instant(MONO0 + (t - T0), t + wall_step)


NO_ALARMS = {"critical": 0, "major": 0, "minor": 0, "warning": 0}
DEVICES_OK = {"online": 3, "offline": 0, "fault": 0, "unknown": 0}


def watch() -> EdgeWatch:
    return EdgeWatch({"xingfu": "gw-x", "anning": "gw-a"})


def test_unknown_until_heard_then_online() -> None:
    w = watch()
    assert w.get("xingfu").state is EdgeState.UNKNOWN  # type: ignore[union-attr]
    changed = w.on_presence("gw-x", True, at(T0))
    assert [(link.site, before) for link, before in changed] == [("xingfu", EdgeState.UNKNOWN)]
    link = w.get("xingfu")
    assert link is not None and link.state is EdgeState.ONLINE and link.since == T0
    assert link.gateway == "gw-x"
    assert w.on_presence("gw-x", True, at(T0 + 5)) == [], "a repeat changes nothing"
    assert link.since == T0


def test_gateway_offline_then_back() -> None:
    w = watch()
    w.on_presence("gw-x", True, at(T0))
    (changed,) = w.on_presence("gw-x", False, at(T0 + 10))
    assert changed[0].state is EdgeState.GATEWAY_OFFLINE and changed[1] is EdgeState.ONLINE
    assert changed[0].since == T0 + 10
    (back,) = w.on_presence("gw-x", True, at(T0 + 20))
    assert back[0].state is EdgeState.ONLINE and back[1] is EdgeState.GATEWAY_OFFLINE


def test_uplink_down_and_up() -> None:
    w = watch()
    w.on_presence("gw-x", True, at(T0))
    assert w.on_uplink("xingfu", True, at(T0 + 1)) == [], "up while online: no change of state"
    (down,) = w.on_uplink("xingfu", False, at(T0 + 30))
    assert down[0].state is EdgeState.UPLINK_DOWN and down[0].since == T0 + 30
    (up,) = w.on_uplink("xingfu", True, at(T0 + 60))
    assert up[0].state is EdgeState.ONLINE and up[0].since == T0 + 60


def test_a_gateway_last_known_offline_stays_offline_while_the_uplink_is_down() -> None:
    """The worst known state wins: nothing newer can have arrived over a dead uplink."""
    w = watch()
    w.on_presence("gw-x", False, at(T0))
    assert w.on_uplink("xingfu", False, at(T0 + 5)) == []
    link = w.get("xingfu")
    assert link is not None and link.state is EdgeState.GATEWAY_OFFLINE and link.since == T0


def test_a_presence_changes_only_the_sites_configured_for_its_gateway() -> None:
    """Issue 10: which gateway serves which site is configuration, not the payload's."""
    w = EdgeWatch({"xingfu": "gw-x", "anning": "gw-a", "qidong": "gw-x"})
    assert w.sites_of("gw-x") == ("qidong", "xingfu")
    assert w.sites_of("gw-q") == ()
    assert w.on_presence("gw-q", False, at(T0)) == [], "a gateway serving nothing here"
    changed = w.on_presence("gw-x", True, at(T0))
    assert sorted(link.site for link, _ in changed) == ["qidong", "xingfu"]
    anning = w.get("anning")
    assert anning is not None and anning.state is EdgeState.UNKNOWN, "gw-a's, untouched"
    w.on_presence("gw-a", True, at(T0))
    w.on_presence("gw-x", False, at(T0 + 1))
    assert anning.state is EdgeState.ONLINE and anning.gateway == "gw-a"
    assert w.on_uplink("elsewhere", False, at(T0)) == []


def test_presence_is_parsed_strictly() -> None:
    msg = presence_message("gw-x", False, ("xingfu",))
    assert msg == {"gateway": "gw-x", "status": "offline", "sites": ("xingfu",)}
    p = Presence.model_validate_json(orjson.dumps(msg))
    assert (p.gateway, p.online, p.sites) == ("gw-x", False, ("xingfu",))
    assert Presence.model_validate_json(orjson.dumps({**msg, "status": "online"})).online
    assert Presence.model_validate_json(orjson.dumps({**msg, "extra": 1})).sites == ("xingfu",)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("online", "model_type"),
        ({"gateway": "gw-x", "status": "up", "sites": []}, "literal_error"),
        ({"gateway": "gw-x", "status": True, "sites": []}, "literal_error"),
        ({"gateway": "gw-x", "sites": []}, "missing"),
        ({"gateway": "gw/x", "status": "online", "sites": []}, "string_pattern_mismatch"),
        ({"gateway": 7, "status": "online", "sites": []}, "string_type"),
        ({"gateway": "gw-x", "status": "online", "sites": "xingfu"}, "tuple_type"),
        ({"gateway": "gw-x", "status": "online", "sites": [1]}, "string_type"),
        ({"gateway": "gw-x", "status": "online", "sites": ["a/#"]}, "string_pattern_mismatch"),
        ({"gateway": "gw-x", "status": "online", "sites": ["s"] * 65}, "too_long"),
    ],
)
def test_bad_presence_is_refused(data: object, why: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Presence.model_validate_json(orjson.dumps(data))
    assert exc.value.errors()[0]["type"] == why


@pytest.mark.parametrize(
    ("alarms", "edge", "expected"),
    [
        (NO_ALARMS, EdgeState.ONLINE, (SiteStatus.OK, StatusReason.NOTHING_OPEN)),
        (NO_ALARMS, EdgeState.UNKNOWN, (SiteStatus.OK, StatusReason.NOTHING_OPEN)),
        (
            NO_ALARMS,
            EdgeState.GATEWAY_OFFLINE,
            (SiteStatus.ALARM, StatusReason.EDGE_GATEWAY_OFFLINE),
        ),
        (NO_ALARMS, EdgeState.UPLINK_DOWN, (SiteStatus.WARNING, StatusReason.EDGE_UPLINK_DOWN)),
        # an open critical alarm is still named first; a major one comes after a dead edge
        (
            NO_ALARMS | {"critical": 1},
            EdgeState.GATEWAY_OFFLINE,
            (SiteStatus.ALARM, StatusReason.CRITICAL_OPEN),
        ),
        (
            NO_ALARMS | {"major": 1},
            EdgeState.GATEWAY_OFFLINE,
            (SiteStatus.ALARM, StatusReason.EDGE_GATEWAY_OFFLINE),
        ),
        (
            NO_ALARMS | {"major": 1},
            EdgeState.UPLINK_DOWN,
            (SiteStatus.ALARM, StatusReason.MAJOR_OPEN),
        ),
        (
            NO_ALARMS | {"minor": 1},
            EdgeState.UPLINK_DOWN,
            (SiteStatus.WARNING, StatusReason.EDGE_UPLINK_DOWN),
        ),
    ],
)
def test_site_status_with_the_edge(
    alarms: dict[str, int], edge: EdgeState, expected: tuple[SiteStatus, StatusReason]
) -> None:
    assert site_status(alarms, DEVICES_OK, edge) == expected


# ------------------------------------------------------------ the edge_offline alarm
def _key(site: str = "xingfu", gateway: str = "gw-x") -> AlarmKey:
    return AlarmKey(site, gateway, AlarmType.EDGE_OFFLINE)


def test_edge_offline_is_raised_only_after_the_delay() -> None:
    w = watch()
    w.on_presence("gw-x", True, at(T0))
    assert edge_alarm_changes(w.links.values(), [], at(T0 + 1), 60.0) == []
    w.on_presence("gw-x", False, at(T0 + 10))
    assert edge_alarm_changes(w.links.values(), [], at(T0 + 69), 60.0) == [], "a restart is quick"
    (raised,) = edge_alarm_changes(w.links.values(), [], at(T0 + 70), 60.0)
    assert raised.key == _key() and raised.kind is ChangeKind.RAISE
    assert raised.severity is Severity.CRITICAL
    assert raised.reason is Reason.EDGE_GATEWAY_OFFLINE
    assert edge_alarm_changes(w.links.values(), [_key()], at(T0 + 80), 60.0) == [], "raised once"


def test_edge_offline_clears_when_the_site_has_a_gateway_again() -> None:
    # the box was replaced and the configuration says so: the old box's alarm clears too
    w = EdgeWatch({"xingfu": "gw-new", "anning": "gw-a"})
    w.on_presence("gw-x", True, at(T0))  # the old box, no longer configured: ignored
    w.on_presence("gw-new", True, at(T0 + 600))
    changes = edge_alarm_changes(w.links.values(), [_key(), _key("anning")], at(T0 + 601), 60.0)
    assert [(c.key, c.kind) for c in changes] == [(_key(), ChangeKind.CLEAR)]
    assert changes[0].reason is Reason.EDGE_GATEWAY_ONLINE


def test_no_edge_offline_for_an_uplink_cut_or_an_unknown_edge() -> None:
    """A cut line is not a dead gateway: the site may well be protected."""
    w = watch()
    w.on_presence("gw-x", True, at(T0))
    w.on_uplink("xingfu", False, at(T0 + 1))
    assert edge_alarm_changes(w.links.values(), [], at(T0 + 3600), 60.0) == []


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forward", "backward"])
def test_edge_offline_delay_runs_on_monotonic_time_through_a_wall_clock_step(step: float) -> None:
    w = watch()
    w.on_presence("gw-x", False, at(T0))
    assert edge_alarm_changes(w.links.values(), [], at(T0 + 59, step), 60.0) == []
    (raised,) = edge_alarm_changes(w.links.values(), [], at(T0 + 60, step), 60.0)
    assert raised.key == _key() and raised.kind is ChangeKind.RAISE
    link = w.get("xingfu")
    assert link is not None and link.since == T0, "shown: the wall time it went offline"
