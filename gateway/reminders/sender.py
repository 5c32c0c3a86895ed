"""The reminders' loop: every `TICK_S` it reads the closed loop's stores, asks the model what
is due, and sends, once each, what has not gone out yet (`gateway.reminders.store`).

Nothing here is on the alarm path: it reads the side databases in worker threads, and a
store that cannot answer costs only its own reminders for that tick (logged; the next tick
tries again). Calendar times (14:30, 15:00) and deadlines are wall time: they are the
bureau's, on record, and outlive the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.duty.model import parse_hhmm
from gateway.duty.store import DutyStore
from gateway.hazards.store import HazardStore
from gateway.incidents.model import Deadlines
from gateway.incidents.store import IncidentStore
from gateway.notify.base import Notifier, Recipient
from gateway.notify.delivery import VOICE_KINDS, Attempt, Delivery, unique
from gateway.notify.policy import policies_from_config
from gateway.notify.sending import OnDutyLookup, recipients_of
from gateway.people.directory import People
from gateway.reminders import model, words
from gateway.reminders.model import Reminder
from gateway.reminders.store import KEPT_S, ReminderStore
from gateway.storage.owned import DatabaseUnavailable

log = logging.getLogger(__name__)

TICK_S = 30.0  # how late a reminder may be: well inside the half hour between 14:30 and 15:00
PARALLEL = 8  # deliveries at once: a slow provider must not hold back the other sites
INCIDENTS_READ = 1000  # open incidents looked at, newest first (more open is a county on fire)


class ReminderSender:
    def __init__(
        self,
        config: GatewayConfig,
        inventory: Inventory,
        store: ReminderStore,
        hazards: HazardStore,
        incidents: IncidentStore,
        duty: DutyStore,
        people: People,
        notifiers: Mapping[str, Notifier],
        on_duty: OnDutyLookup | None,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._zone = ZoneInfo(config.gateway.timezone)
        self._inventory = inventory
        self._store = store
        self._hazards = hazards
        self._incidents = incidents
        self._duty = duty
        self._people = people
        self.delivery = Delivery(config.notify, notifiers)
        self._on_duty = on_duty
        self._clock = clock
        self._pruned_day: str | None = None

    def reconfigure(
        self, config: GatewayConfig, inventory: Inventory, notifiers: Mapping[str, Notifier]
    ) -> None:
        self._config = config
        self._zone = ZoneInfo(config.gateway.timezone)
        self._inventory = inventory
        self.delivery.reconfigure(config.notify, notifiers)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                # Never silent, never fatal: the next tick reads everything again.
                log.exception("reminders: a tick failed; trying again in %.0f s", TICK_S)
            await asyncio.sleep(TICK_S)

    async def tick(self) -> list[tuple[Reminder, bool]]:
        """Sends what is due and not sent; returns each with whether it reached everyone."""
        if not self._config.reminders.enabled:
            return []  # a reload may turn them on again: the loop keeps ticking
        now = self._clock()
        due = await asyncio.to_thread(self.due, now)
        todo = await asyncio.to_thread(self._store.unsent, [r.key for r in due], now)
        pending = [r for r in due if r.key in todo]
        gate = asyncio.Semaphore(PARALLEL)

        async def one(r: Reminder) -> tuple[Reminder, bool]:
            async with gate:
                return r, await self._send(r)

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(r)) for r in pending]
        await self._prune_daily(now)
        return [t.result() for t in tasks]

    def due(self, now: float) -> list[Reminder]:
        """What the clock asks for now, from each store that answers."""
        c = self._config
        zone_now = datetime.fromtimestamp(now, self._zone)
        sites = list(self._inventory.sites)
        out: list[Reminder] = []
        try:
            checks = self._duty.checks_of(zone_now.date(), set(sites))
            out += model.daily_checks(
                zone_now, sites, checks, parse_hhmm(c.daily_checks.due),
                parse_hhmm(c.daily_checks.remind_at),
            )  # fmt: skip
        except DatabaseUnavailable as exc:
            log.warning("reminders: self-reports not read: %s", exc)
        try:
            incidents = self._incidents.query(None, INCIDENTS_READ, is_open=True)
            deadlines = Deadlines.from_minutes(
                c.incidents.phone_report_minutes, c.incidents.written_report_minutes
            )
            out += model.incidents(incidents, now, deadlines)
        except DatabaseUnavailable as exc:
            log.warning("reminders: incidents not read: %s", exc)
        try:
            out += model.hazards(self._hazards.to_rectify(), now, c.reminders.hazard_before)
        except DatabaseUnavailable as exc:
            log.warning("reminders: hazards not read: %s", exc)
        return out

    def channels(self) -> list[str]:
        """`reminders.channels`; else the critical policy's first step without its voice
        channels; else every channel configured but voice."""
        if self._config.reminders.channels:
            return list(self._config.reminders.channels)
        critical = policies_from_config(self._config.notify).get("critical", ())
        first = critical[0].channels if critical else ()
        read = [ch for ch in first if self.delivery.kind(ch) not in VOICE_KINDS]
        if read:
            return read
        return [c.name for c in self._config.notify.channels if c.kind not in VOICE_KINDS]

    async def _send(self, r: Reminder) -> bool:
        now = self._clock()
        await asyncio.to_thread(self._store.claim, r.key, r.kind.value, r.site, now)
        recipients = await recipients_of(self._inventory, self._config, r.site, r.to, self._on_duty)
        if r.person is not None:
            found = await asyncio.to_thread(self._responsible, r.person, r.site)
            if found is None:
                # Not a person the gateway knows: the site's safety manager stands in.
                recipients += await recipients_of(
                    self._inventory, self._config, r.site, ("safety_manager",), None
                )
            recipients = unique([found, *recipients] if found else recipients)
        sites = self._inventory.sites
        message = words.message(
            r,
            lambda s: sites[s].name if s in sites else s,
            self._config.report.county,
            self._zone,
            self._config.notify.public_url,
        )
        attempts: list[str] = []

        def on_attempt(a: Attempt) -> None:
            outcome = "ok" if a.result.ok else f"failed: {a.result.detail}"
            attempts.append(f"{a.channel} → {a.to.name}: {outcome}")

        channels = self.channels()
        if not recipients and not any(self.delivery.is_group(ch) for ch in channels):
            ok = False
            attempts.append("nobody to tell: no recipient and no group channel")
        elif not channels:
            ok = False
            attempts.append("no channel configured")
        else:
            ok = await self.delivery.deliver(message, recipients, channels, on_attempt)
        if not ok:
            log.error("reminder %s reached not everyone: %s", r.key, "; ".join(attempts))
        await asyncio.to_thread(
            self._store.finish, r.key, ok, len(recipients), "\n".join(attempts), self._clock()
        )
        return ok

    def _responsible(self, written: str, site: str | None) -> Recipient | None:
        """The ledger's responsible person, written as a login or a name, when the gateway
        knows them (a name must be one person's, of the site)."""
        p = self._people.get(written)
        if p is None:
            named = [
                q for q in self._people.persons()
                if q.name == written and (q.every_site or site in q.sites)
            ]  # fmt: skip
            p = named[0] if len(named) == 1 else None
        if p is None or p.disabled or not (p.phone or p.email):
            return None
        return Recipient(p.name, "responsible", p.phone, p.email, p.login)

    async def _prune_daily(self, now: float) -> None:
        day = datetime.fromtimestamp(now, self._zone).date().isoformat()
        if day == self._pruned_day:
            return
        self._pruned_day = day
        try:
            await asyncio.to_thread(self._store.prune, now - KEPT_S)
        except DatabaseUnavailable as exc:
            log.warning("reminders: old rows not pruned: %s", exc)
