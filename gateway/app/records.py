"""`Records`: the databases beside the alarm path, opened and closed together: who did what
(`audit.sqlite3`, gateway.audit), who may sign in and the contacts' phone links
(`people.sqlite3`, gateway.people), the hazard ledger and notices (`hazards.sqlite3`),
the incidents (`incidents.sqlite3`), the self-reports and duty roster (`duty.sqlite3`) and
the reminders sent (`reminders.sqlite3`).

Shut-off and alarms never wait on any of them: one that cannot be opened is logged, named in
`failures` (health shows it, degraded), and the gateway runs without it; its routes answer 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.audit import AuditLog
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.duty.oncall import OnCall
from gateway.duty.store import DutyStore
from gateway.hazards.store import HazardStore
from gateway.incidents.store import IncidentStore
from gateway.notify.base import Notifier
from gateway.people.directory import People
from gateway.people.links import LINKS_KEPT_S, AckLinks
from gateway.people.model import contact_persons
from gateway.reminders.sender import ReminderSender
from gateway.reminders.store import ReminderStore

log = logging.getLogger(__name__)

PEOPLE_DB = "people.sqlite3"
PEOPLE_PRUNE_S = 6 * 3600.0


class Records:
    def __init__(self, data_dir: Path, clock: Callable[[], float], zone: ZoneInfo) -> None:
        self._clock = clock
        self.audit = AuditLog(data_dir / "audit.sqlite3")
        self.people = People(data_dir / PEOPLE_DB)
        self.links = AckLinks(data_dir / PEOPLE_DB)
        self.hazards = HazardStore(data_dir / "hazards.sqlite3")
        self.incidents = IncidentStore(data_dir / "incidents.sqlite3")
        self.duty = DutyStore(data_dir / "duty.sqlite3")
        self.reminders = ReminderStore(data_dir / "reminders.sqlite3")
        # Who is on duty now, for the escalation address `on_duty` and the reminders.
        self.oncall = OnCall(self.duty, self.people, zone, clock)
        # Those that failed to open at start, with why (gateway.app.health: degraded).
        self.failures: dict[str, str] = {}

    async def open(self, config: GatewayConfig) -> None:
        await self._open_aside("audit", self.audit.open)
        if await self._open_aside("people", self._open_people):
            await self.sync_contacts(config)
        for name, store in (
            ("hazards", self.hazards),
            ("incidents", self.incidents),
            ("duty", self.duty),
            ("reminders", self.reminders),
        ):
            await self._open_aside(name, partial_thread(store.open))

    async def close(self) -> None:
        """Every one, whatever failed before it; the audit log last (the others' closing
        writes nothing to it, but a late append would)."""
        for close in (
            self.incidents.close,
            self.links.close,
            self.people.close,
            self.hazards.close,
            self.duty.close,
            self.reminders.close,
        ):
            try:
                await asyncio.to_thread(close)
            except Exception:
                log.exception("closing a database beside the alarm path failed")
        await self.audit.close()

    @property
    def people_open(self) -> bool:
        return "people" not in self.failures

    async def sync_contacts(self, config: GatewayConfig) -> None:
        """The configuration's contacts are persons (they get phone links); again on reload."""
        if not self.people_open:
            return
        persons = contact_persons(config)
        try:
            await asyncio.to_thread(self.people.sync_contacts, persons, self._clock())
        except Exception:
            # The contacts' phone links wait for the next reload; the alarms do not.
            log.exception("contacts of the configuration not written to the people database")

    async def prune_people(self, idle_s: float, absolute_s: float) -> None:
        """Expired phone links (a month after) and sessions past their limits; at start and
        every `PEOPLE_PRUNE_S` (a gateway runs for months)."""
        now = self._clock()
        try:
            await asyncio.to_thread(self.links.prune, now - LINKS_KEPT_S)
            await asyncio.to_thread(
                lambda: self.people.prune_sessions(now, idle_s=idle_s, absolute_s=absolute_s)
            )
        except Exception:
            log.exception("pruning expired phone links and sessions failed; tried again later")

    async def _open_people(self) -> None:
        await asyncio.to_thread(self.people.open)
        await asyncio.to_thread(self.links.open)

    async def _open_aside(self, name: str, open_it: Callable[[], Awaitable[None]]) -> bool:
        try:
            await open_it()
        except Exception as exc:
            log.exception("%s database could not be opened; starting without it", name)
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            return False
        return True


def reminder_sender(
    config: GatewayConfig,
    inventory: Inventory,
    records: Records,
    notifiers: Mapping[str, Notifier],
    clock: Callable[[], float],
) -> ReminderSender:
    """The closed loop's reminders, over the records' stores."""
    r = records
    return ReminderSender(
        config, inventory, r.reminders, r.hazards, r.incidents, r.duty, r.people, notifiers,
        r.oncall.recipients, clock,
    )  # fmt: skip


def partial_thread(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """`fn` (blocking) as something to await, in a worker thread."""
    return lambda: asyncio.to_thread(fn)
