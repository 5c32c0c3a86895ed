"""The daily self-report (seeds 003, 004: every institution reports its safety inspection
before 15:00) and the duty roster (who is on duty per site and at the bureau, the bureau's
leader on call, shift handovers; seeds 001, 003).

Owns `duty.sqlite3` (`store`, its only writer; `readonly` reads a day's self-reports for the
daily report without opening the store) and the pure decisions over it
(`model`): a checklist answered in full, each site's standing on the day's board, the
reminder and the missing list at their times, a shift's limits; and who is on duty now as
the people notifications reach (`oncall`: the escalation address `on_duty`).

May import `config`, `storage`, `people` and `notify.base` (a `Recipient`); no HTTP
(`gateway.http.duty` serves it), no asyncio.
"""
