"""Every database's schema, as the steps from nothing to now. The tables' owners read and
write them; their shape changes only here.

To change a schema, add a step at the end of its chain: `.then("<SQL>")`. Never
edit a step that a release has shipped: files in the field are at that version already and
would never see the edit. Version 1 is the 2026-12 release's DDL, word for word (its files
carry no version; see `gateway.storage.migrate`).
"""

from __future__ import annotations

from typing import Final

from gateway.storage.migrate import Schema, Step

# ------------------------------------------------------------ <data_dir>/alarms.sqlite3
# Owners: gateway.alarms.store and .history (alarms, alarm_timeline, commands),
# gateway.notify.maintenance (maintenance), gateway.notify.sendlog (escalation_sends),
# gateway.report.mailings (report_days, report_mailings).
_ALARMS_V1: Final = """
-- gateway.alarms.store
CREATE TABLE IF NOT EXISTS alarms (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    level TEXT,
    state TEXT NOT NULL,
    latched INTEGER NOT NULL,
    acked INTEGER NOT NULL,
    value REAL,
    peak REAL,
    count INTEGER NOT NULL,
    reason TEXT,
    raised_at REAL NOT NULL,
    acked_at REAL,
    acked_by TEXT,
    cleared_at REAL,
    closed_at REAL,
    closed_by TEXT,
    disposition TEXT,
    note TEXT,
    updated_at REAL NOT NULL
);
-- DESIGN section 6: one open alarm per (site, device, type), enforced by the database too.
CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_open ON alarms(site, device, type)
    WHERE state != 'closed';
CREATE INDEX IF NOT EXISTS alarms_raised_at ON alarms(raised_at);
-- An alarm's id names one (site, device, type) for ever: a write that would move it (a
-- mirrored alarm forging another site's id, even of a closed alarm the book no longer holds)
-- fails as a constraint, which the writer drops as poison, its timeline entries with it.
CREATE TRIGGER IF NOT EXISTS alarms_key_fixed BEFORE UPDATE OF site, device, type ON alarms
    WHEN NEW.site != OLD.site OR NEW.device != OLD.device OR NEW.type != OLD.type
    BEGIN SELECT RAISE(ABORT, 'alarm id belongs to another site, device or type'); END;
CREATE TABLE IF NOT EXISTS alarm_timeline (
    alarm_id TEXT NOT NULL REFERENCES alarms(id),
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    value REAL,
    severity TEXT,
    note TEXT,
    detail TEXT,
    PRIMARY KEY (alarm_id, seq)
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    cmd TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    alarm_id TEXT,
    reason TEXT,
    sent_at REAL NOT NULL,
    result TEXT,
    result_at REAL,
    detail TEXT
);
-- gateway.notify.maintenance
CREATE TABLE IF NOT EXISTS maintenance (
    site TEXT NOT NULL, device TEXT NOT NULL, until REAL NOT NULL, by TEXT NOT NULL,
    note TEXT, PRIMARY KEY (site, device)
);
-- gateway.notify.sendlog
CREATE TABLE IF NOT EXISTS escalation_sends (
    alarm_id TEXT NOT NULL, occurrence TEXT NOT NULL, step INTEGER NOT NULL,
    repeat INTEGER NOT NULL, site TEXT NOT NULL, severity TEXT NOT NULL,
    due_at REAL NOT NULL, state TEXT NOT NULL, sent_at REAL,
    PRIMARY KEY (alarm_id, occurrence, step, repeat)
);
CREATE INDEX IF NOT EXISTS escalation_pending ON escalation_sends(state, due_at);
-- gateway.report.mailings
CREATE TABLE IF NOT EXISTS report_days (
    day TEXT PRIMARY KEY,  -- ISO date of the report
    finished_at REAL       -- NULL: imported from report_state.json
);
CREATE TABLE IF NOT EXISTS report_mailings (
    day TEXT NOT NULL,
    site TEXT,             -- NULL: the county report
    recipient TEXT NOT NULL,
    ok INTEGER NOT NULL,   -- 1 sent; 0 given up on
    detail TEXT,
    at REAL                -- NULL: imported without a readable time
);
CREATE INDEX IF NOT EXISTS report_mailings_day ON report_mailings(day);
"""

ALARMS: Final = (
    Schema("alarms", (Step(1, _ALARMS_V1),))
    # 2: retention looks for closed alarms by age (gateway.storage.archive).
    .then("CREATE INDEX alarms_closed_at ON alarms(closed_at) WHERE state = 'closed';")
    # 3: exactly once on redelivery (gateway.alarms.store `note_seen`): the key of each MQTT
    # message that caused a write, written with that write. One row per (lane, packet id):
    # bounded by the packet-id space, a reused id replaces its row.
    .then(
        """
        CREATE TABLE seen_messages (
            lane INTEGER NOT NULL,
            mid INTEGER NOT NULL,
            digest INTEGER NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (lane, mid)
        );
        """
    )
)

# ------------------------------------------------ <data_dir>/timeseries-outbox.sqlite3
# Owner: gateway.timeseries.outbox.
_OUTBOX_V1: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused, so id order is
                                           -- production order even after the table empties
    kind TEXT NOT NULL CHECK (kind IN ('reading', 'alarm', 'status')),
    line TEXT NOT NULL
);
-- the overflow rule deletes the oldest points of one kind
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind);
"""

OUTBOX: Final = Schema("outbox", (Step(1, _OUTBOX_V1),))

# ------------------------------------------------------------ <data_dir>/people.sqlite3
# Owners: gateway.people.directory (persons, api_tokens, sessions), gateway.people.links
# (ack_links). Secrets are never stored, only their SHA-256 (`hash`).
_PEOPLE_V1: Final = """
CREATE TABLE persons (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    sites TEXT NOT NULL DEFAULT '',  -- comma-separated site ids; '' every site (bureau, admin)
    phone TEXT,
    email TEXT,
    origin TEXT NOT NULL CHECK (origin IN ('account', 'config')),
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_by TEXT,                -- 'config': left the file (back in it: enabled again)
    password_hash TEXT,              -- argon2id; NULL: no login (a contact's phone links only)
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    password_changed_at REAL
);
CREATE INDEX persons_phone ON persons(phone);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL REFERENCES persons(login),
    label TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at REAL,
    revoked_by TEXT,
    last_used_at REAL
);
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    created_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    source TEXT
);
CREATE TABLE ack_links (
    hash TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    occurrence TEXT NOT NULL,        -- the alarm's raise (or re-raise) the link is about
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    responses TEXT NOT NULL DEFAULT '[]'  -- JSON list of {status, at, source, note}
);
CREATE INDEX ack_links_alarm ON ack_links(alarm_id, login);
"""

PEOPLE: Final = Schema("people", (Step(1, _PEOPLE_V1),))

# ---------------------------------------------------------------- <data_dir>/audit.sqlite3
# Owner: gateway.audit.log (appends; its queries in gateway.audit.query); gateway.audit.verify
# reads it read-only.
# A row is never updated or deleted: each carries the hash of the one before (the chain).
_AUDIT_V1: Final = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,  -- no AUTOINCREMENT: the appender sets last + 1 itself
    at REAL NOT NULL,         -- epoch seconds
    actor TEXT NOT NULL,      -- login, token name, 'local' or 'system'
    actor_name TEXT NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,     -- client address, 'cli' or 'signal'
    action TEXT NOT NULL,
    site TEXT,                -- NULL: not about one site (admins only)
    target TEXT,
    result TEXT NOT NULL,
    detail TEXT,              -- a JSON object
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_site_at ON audit(site, at);
"""

AUDIT: Final = Schema("audit", (Step(1, _AUDIT_V1),))

# ------------------------------------------------------------ <data_dir>/hazards.sqlite3
# Owner: gateway.hazards.store. A hazard's timeline is appended to, never rewritten.
_HAZARDS_V1: Final = """
CREATE TABLE hazards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a notice names hazards by id
    site TEXT NOT NULL,
    location TEXT NOT NULL,
    description TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('general', 'major')),
    source TEXT NOT NULL,
    alarm_id TEXT,
    found_at REAL NOT NULL,
    found_by TEXT NOT NULL,
    responsible TEXT NOT NULL,
    measure TEXT NOT NULL,
    deadline REAL,
    status TEXT NOT NULL
        CHECK (status IN ('open', 'rectifying', 'awaiting_verification', 'closed')),
    closed_at REAL,
    verified_by TEXT,
    verified_at REAL,
    verification_note TEXT
);
CREATE INDEX hazards_site_status ON hazards(site, status);
CREATE TABLE hazard_events (
    hazard_id INTEGER NOT NULL REFERENCES hazards(id),
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (hazard_id, seq)
);
CREATE TABLE notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    year INTEGER NOT NULL,    -- of the number: 整改〔year〕第seq号
    seq INTEGER NOT NULL,
    number TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    issued_at REAL NOT NULL,
    issued_by TEXT NOT NULL,
    person_in_charge TEXT NOT NULL,
    deadline REAL,
    requirements TEXT NOT NULL,
    received_at REAL,
    received_by TEXT,
    closed_at REAL,           -- when the last of its hazards closed
    UNIQUE (year, seq)
);
CREATE TABLE notice_hazards (
    notice_id INTEGER NOT NULL REFERENCES notices(id),
    hazard_id INTEGER NOT NULL REFERENCES hazards(id),
    PRIMARY KEY (notice_id, hazard_id)
);
CREATE INDEX notice_hazards_hazard ON notice_hazards(hazard_id);
"""

HAZARDS: Final = Schema("hazards", (Step(1, _HAZARDS_V1),))

# ------------------------------------------------------------ <data_dir>/incidents.sqlite3
# Owner: gateway.incidents.store.
_INCIDENTS_V1: Final = """
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    alarm_id TEXT,            -- NULL: opened by hand
    title TEXT NOT NULL,
    opened_at REAL NOT NULL,  -- epoch seconds; both report deadlines count from it
    opened_by TEXT NOT NULL,
    closed_at REAL
);
CREATE INDEX incidents_site_opened ON incidents(site, opened_at);
-- One open incident per alarm: a second close of the same alarm, or a race, adds none.
CREATE UNIQUE INDEX incidents_one_per_alarm ON incidents(alarm_id)
    WHERE alarm_id IS NOT NULL AND closed_at IS NULL;
CREATE TABLE incident_reports (
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('phone', 'written', 'follow_up')),
    fields TEXT NOT NULL,     -- a JSON object: the report's own fields
    at REAL NOT NULL,
    by TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
-- The phone and the written report are made once; follow-ups are appended.
CREATE UNIQUE INDEX incident_reports_once ON incident_reports(incident_id, kind)
    WHERE kind != 'follow_up';
"""

INCIDENTS: Final = (
    Schema("incidents", (Step(1, _INCIDENTS_V1),))
    # 2: closing an incident (结案) says who closed it and why, as an alarm's close does.
    .then(
        """
        ALTER TABLE incidents ADD COLUMN closed_by TEXT;
        ALTER TABLE incidents ADD COLUMN close_note TEXT;
        """
    )
)
# ----------------------------------------------------------------- <data_dir>/duty.sqlite3
# Owner: gateway.duty.store.
_DUTY_V1: Final = """
CREATE TABLE daily_checks (
    site TEXT NOT NULL,
    day TEXT NOT NULL,                 -- YYYY-MM-DD in the gateway's zone
    items TEXT NOT NULL,               -- JSON list of {item, result, note}
    submitted_at REAL NOT NULL,        -- the latest submission
    submitted_by TEXT NOT NULL,
    first_submitted_at REAL NOT NULL,  -- kept across resubmissions before the due time
    PRIMARY KEY (site, day)
);
CREATE TABLE duty_roster (
    scope TEXT NOT NULL,               -- a site id or 'bureau'
    day TEXT NOT NULL,
    shift TEXT NOT NULL,
    login TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('on_duty', 'leader')),
    set_at REAL NOT NULL,
    set_by TEXT NOT NULL,
    PRIMARY KEY (scope, day, shift, login)
);
CREATE TABLE handovers (
    scope TEXT NOT NULL,
    at REAL NOT NULL,
    from_login TEXT NOT NULL,
    to_login TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX handovers_scope_at ON handovers(scope, at);
"""

DUTY: Final = Schema("duty", (Step(1, _DUTY_V1),))

# ------------------------------------------------------------ <data_dir>/reminders.sqlite3
# Owner: gateway.reminders.store. One row per reminder or alert, by its key: written before it
# is sent, so that it goes out once across restarts (a 'pending' row found at start was in
# flight when the process died: it is sent again).
_REMINDERS_V1: Final = """
CREATE TABLE reminders (
    key TEXT PRIMARY KEY,            -- e.g. 'check/2026-11-24/xingfu/remind'
    kind TEXT NOT NULL,
    site TEXT,                       -- NULL: the bureau's (the 15:00 missing list)
    created_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    finished_at REAL,
    recipients INTEGER NOT NULL DEFAULT 0,
    tries INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT ''  -- the attempts, one per line
);
CREATE INDEX reminders_created ON reminders(created_at);
"""

REMINDERS: Final = Schema("reminders", (Step(1, _REMINDERS_V1),))

# Every database of a data directory, by file name: what is migrated, backed up, restored.
DATABASES: Final = {
    "alarms.sqlite3": ALARMS,
    "timeseries-outbox.sqlite3": OUTBOX,
    "people.sqlite3": PEOPLE,
    "audit.sqlite3": AUDIT,
    "hazards.sqlite3": HAZARDS,
    "incidents.sqlite3": INCIDENTS,
    "duty.sqlite3": DUTY,
    "reminders.sqlite3": REMINDERS,
}
