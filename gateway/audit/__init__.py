"""The tamper-evident audit trail (DESIGN section 10): who did what, where, from which
address, with what result. Owns `<data_dir>/audit.sqlite3` (its one table, `audit`) and the
head file beside it (`audit.head`); everyone else appends and reads through `AuditLog`,
`append_sync`, `query_readonly` and `verify`.

Each row carries the SHA-256 of the row before it and of its own fields, so a row changed
or deleted in the middle breaks the chain; the head file (last seq and hash, written after
each append) shows rows deleted at the end. There is no secret key: the chain shows
tampering by anyone who does not rewrite every later row and the head, which is what a
stray `DELETE`, an edit by hand or a restored old file look like.

May import `gateway.config` and `gateway.storage` only.
"""

from __future__ import annotations

from gateway.audit.actions import (
    ACTION_LABELS,
    AUDIT_GAP,
    CONFIG_RELOAD,
    RESULT_LABELS,
    ROLE_LABELS,
    SYSTEM,
    action_label,
    result_label,
    role_label,
)
from gateway.audit.entry import GENESIS, AuditEntry, AuditRecord, Detail
from gateway.audit.head import AuditLocked
from gateway.audit.log import AuditClosed, AuditLog, append_sync
from gateway.audit.query import query_readonly
from gateway.audit.verify import Broken, VerifyResult, verify

__all__ = [
    "ACTION_LABELS",
    "AUDIT_GAP",
    "CONFIG_RELOAD",
    "GENESIS",
    "RESULT_LABELS",
    "ROLE_LABELS",
    "SYSTEM",
    "AuditClosed",
    "AuditEntry",
    "AuditLocked",
    "AuditLog",
    "AuditRecord",
    "Broken",
    "Detail",
    "VerifyResult",
    "action_label",
    "append_sync",
    "query_readonly",
    "result_label",
    "role_label",
    "verify",
]
