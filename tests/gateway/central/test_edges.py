"""The bureau's view of its edge gateways (central mode): pure, messages and `now` in."""

from __future__ import annotations

import pytest

from gateway.central.edges import (
    BadPresence,
    EdgeState,
    EdgeWatch,
    edge_alarm_changes,
    parse_presence,
    presence_message,
)
from gateway.overview.queries import SiteStatus, StatusReason, site_status
from rules.model import AlarmKey, AlarmType, ChangeKind, Reason, Severity

T0 = 1_800_000_000.0
NO_ALARMS = {"critical": 0, "major": 0, "minor": 0, "warning": 0}
DEVICES_OK = {"online": 3, "offline": 0, "fault": 0, "unknown": 0}


def watch() -> EdgeWatch:
    return EdgeWatch(frozenset({"xingfu", "anning"}))


def test_unknown_until_heard_then_online() -> None:
    w = watch()
    assert w.get("xingfu").state is EdgeState.UNKNOWN  # type: ignore[union-attr]
    changed = w.on_presence("gw-x", True, ("xingfu",), T0)
    assert [(link.site, before) for link, before in changed] == [("xingfu", EdgeState.UNKNOWN)]
    link = w.get("xingfu")
    assert link is not None and link.state is EdgeState.ONLINE and link.since == T0
    assert link.gateway == "gw-x"
    assert w.on_presence("gw-x", True, ("xingfu",), T0 + 5) == [], "a repeat changes nothing"
    assert link.since == T0


def test_gateway_offline_then_back() -> None:
    w = watch()
    w.on_presence("gw-x", True, ("xingfu",), T0)
    (changed,) = w.on_presence("gw-x", False, ("xingfu",), T0 + 10)
    assert changed[0].state is EdgeState.GATEWAY_OFFLINE and changed[1] is EdgeState.ONLINE
    assert changed[0].since == T0 + 10
    (back,) = w.on_presence("gw-x", True, ("xingfu",), T0 + 20)
    assert back[0].state is EdgeState.ONLINE and back[1] is EdgeState.GATEWAY_OFFLINE


def test_uplink_down_and_up() -> None:
    w = watch()
    w.on_presence("gw-x", True, ("xingfu",), T0)
    assert w.on_uplink("xingfu", True, T0 + 1) == [], "up while online: no change of state"
    (down,) = w.on_uplink("xingfu", False, T0 + 30)
    assert down[0].state is EdgeState.UPLINK_DOWN and down[0].since == T0 + 30
    (up,) = w.on_uplink("xingfu", True, T0 + 60)
    assert up[0].state is EdgeState.ONLINE and up[0].since == T0 + 60


def test_a_gateway_last_known_offline_stays_offline_while_the_uplink_is_down() -> None:
    """The worst known state wins: nothing newer can have arrived over a dead uplink."""
    w = watch()
    w.on_presence("gw-x", False, ("xingfu",), T0)
    assert w.on_uplink("xingfu", False, T0 + 5) == []
    link = w.get("xingfu")
    assert link is not None and link.state is EdgeState.GATEWAY_OFFLINE and link.since == T0


def test_sites_not_observed_are_ignored() -> None:
    w = watch()
    assert w.on_presence("gw-q", True, ("qidong", "xingfu"), T0)[0][0].site == "xingfu"
    assert w.get("qidong") is None
    assert w.on_uplink("qidong", False, T0) == []


def test_presence_message_round_trip() -> None:
    msg = presence_message("gw-x", False, ("xingfu",))
    assert msg == {"gateway": "gw-x", "status": "offline", "sites": ("xingfu",)}
    assert parse_presence("gw-x", {**msg, "sites": ["xingfu"]}) == (False, ("xingfu",))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("online", "a presence object"),
        ({"gateway": "gw-x", "status": "up", "sites": []}, "status must be"),
        ({"gateway": "gw-y", "status": "online", "sites": []}, "on the topic of"),
        ({"gateway": "gw-x", "status": "online", "sites": "xingfu"}, "sites must be"),
        ({"gateway": "gw-x", "status": "online", "sites": [1]}, "sites must be"),
    ],
)
def test_bad_presence_says_why(data: object, why: str) -> None:
    with pytest.raises(BadPresence, match=why):
        parse_presence("gw-x", data)


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
    w.on_presence("gw-x", True, ("xingfu",), T0)
    assert edge_alarm_changes(w.links.values(), [], T0 + 1, 60.0) == []
    w.on_presence("gw-x", False, ("xingfu",), T0 + 10)
    assert edge_alarm_changes(w.links.values(), [], T0 + 69, 60.0) == [], "a restart is quick"
    (raised,) = edge_alarm_changes(w.links.values(), [], T0 + 70, 60.0)
    assert raised.key == _key() and raised.kind is ChangeKind.RAISE
    assert raised.severity is Severity.CRITICAL
    assert raised.reason is Reason.EDGE_GATEWAY_OFFLINE
    assert edge_alarm_changes(w.links.values(), [_key()], T0 + 80, 60.0) == [], "raised once"


def test_edge_offline_clears_when_the_site_has_a_gateway_again() -> None:
    w = watch()
    w.on_presence("gw-x", False, ("xingfu",), T0)
    w.on_presence("gw-new", True, ("xingfu",), T0 + 600)  # the box was replaced
    changes = edge_alarm_changes(w.links.values(), [_key(), _key("anning")], T0 + 601, 60.0)
    assert [(c.key, c.kind) for c in changes] == [(_key(), ChangeKind.CLEAR)]
    assert changes[0].reason is Reason.EDGE_GATEWAY_ONLINE


def test_no_edge_offline_for_an_uplink_cut_or_an_unknown_edge() -> None:
    """A cut line is not a dead gateway: the site may well be protected."""
    w = watch()
    w.on_presence("gw-x", True, ("xingfu",), T0)
    w.on_uplink("xingfu", False, T0 + 1)
    assert edge_alarm_changes(w.links.values(), [], T0 + 3600, 60.0) == []
