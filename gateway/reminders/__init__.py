"""The closed loop's reminders and alerts (issue 12): what the clock asks people to do and
what they missed, told once each through the notification channels.

- the daily self-report (seeds 003, 004): at `daily_checks.remind_at` (14:30) the sites not in
  yet are reminded (their people on duty, else their duty officers); at `daily_checks.due`
  (15:00) the bureau's duty officers get the list of the sites still missing;
- an incident's reports (seed 003): a missed phone (30 min) or written (60 min) deadline
  alerts the bureau's duty officers, and the site's people on duty;
- a hazard's deadline (seed 002): `reminders.hazard_before` (24 h) before it, its responsible
  person is reminded; once it has passed, the responsible person and the site's safety
  manager are told it is overdue (the bureau sees overdue items on its page).

`model` decides what is due, purely, from the stores' rows and `now`; `store` owns
`reminders.sqlite3`, where each one is written before it is sent, so that a restart neither
repeats nor loses one; `sender` is the loop that reads, decides, sends and records.

May import `config`, `storage`, `notify` (delivery, not escalation), `people`, and the closed
loop's owners (`hazards`, `incidents`, `duty`) it reads; nothing imports it but `app`.
"""
