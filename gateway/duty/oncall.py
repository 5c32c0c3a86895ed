"""Who is on duty now, as the people notifications reach (`Recipient`s): the escalation
address `on_duty` / `bureau_on_duty` (issue 12) and the closed loop's reminders.

A shift has a name, not hours (`day`, `night`, `24h`), so "now" is the day's roster, every
shift of it, plus whoever took over by the last handover of the past day — the person a
handover names is on duty whatever the roster said that morning, and a night shift that
crosses midnight has handed over or is still on yesterday's roster's last handover. Persons
disabled, or with neither phone nor mail, are left out: nobody can be reached through them.
Synchronous (sqlite3): the caller runs it in a worker thread with a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.duty.model import BUREAU_SCOPE, DutyRole
from gateway.duty.store import DutyStore
from gateway.notify.base import Recipient
from gateway.people.directory import People

HANDOVER_REACH_S = 24 * 3600.0


class OnCall:
    def __init__(
        self, duty: DutyStore, people: People, zone: ZoneInfo, clock: Callable[[], float]
    ) -> None:
        self._duty = duty
        self._people = people
        self._zone = zone
        self._clock = clock

    def logins(self, scope: str | None) -> list[str]:
        """Who is on duty now at `scope` (a site; None: the bureau), roster order first."""
        key = scope or BUREAU_SCOPE
        now = self._clock()
        day = datetime.fromtimestamp(now, self._zone).date()
        logins = [r.login for r in self._duty.roster_of(day, {key}) if r.role is DutyRole.ON_DUTY]
        handovers = self._duty.handovers_between({key}, now - HANDOVER_REACH_S, now + 1)
        if handovers:
            logins.append(handovers[-1].to_login)
        return list(dict.fromkeys(logins))

    def recipients(self, scope: str | None) -> list[Recipient]:
        out = []
        for login in self.logins(scope):
            p = self._people.get(login)
            if p is None or p.disabled or not (p.phone or p.email):
                continue
            out.append(Recipient(p.name, "on_duty", p.phone, p.email, p.login))
        return out
