"""What the routes append to the audit trail (DESIGN section 10, `gateway.audit`): one call
per human action, login and account change, with the person, their role and address, the
target and the result.

An action stands when its audit row cannot be written (a full disk must not stop a person
acknowledging a gas alarm): the failure is logged with its traceback and counted
(`gateway_audit_append_failures_total`), never silent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gateway.app.supervisor import Gateway
from gateway.audit import AuditEntry, AuditRecord, Detail
from gateway.http.auth import Principal
from gateway.http.errors import ApiError

log = logging.getLogger(__name__)


async def record(
    gw: Gateway,
    *,
    actor: str,
    actor_name: str,
    role: str,
    source: str,
    action: str,
    site: str | None = None,
    target: str | None = None,
    result: str = "ok",
    detail: Detail | None = None,
) -> AuditRecord | None:
    entry = AuditEntry(
        at=gw.clock(),
        actor=actor,
        actor_name=actor_name,
        role=role,
        source=source or "unknown",
        action=action,
        site=site,
        target=target,
        result=result,
        detail=detail,
    )
    try:
        return await gw.audit.append(entry)
    except Exception:
        gw.metrics.audit_failures.labels(action).inc()
        log.exception("audit: %s by %s on %s not recorded", action, actor, target)
        return None


async def record_by(
    gw: Gateway,
    who: Principal,
    action: str,
    *,
    site: str | None = None,
    target: str | None = None,
    result: str = "ok",
    detail: Detail | None = None,
    actor_name: str | None = None,
) -> AuditRecord | None:
    """`record` for an authenticated caller (the local operator's typed name as actor_name)."""
    return await record(
        gw,
        actor=who.login,
        actor_name=actor_name or who.name,
        role=who.role.value,
        source=who.source,
        action=action,
        site=site,
        target=target,
        result=result,
        detail=detail,
    )


@dataclass(slots=True)
class Audited:
    """What a route learns while it acts and the trail should say: the site once it is known
    to the caller, and details (the disposition, the command id)."""

    site: str | None = None
    detail: dict[str, str | int | float | bool | None] = field(default_factory=dict)


@asynccontextmanager
async def audited(gw: Gateway, who: Principal, action: str, target: str) -> AsyncIterator[Audited]:
    """Records the action when the block ends: `ok`, `refused` (the API's 4xx, with its
    status and error) or `failed` (anything else, re-raised as it was)."""
    note = Audited()
    try:
        yield note
    except ApiError as exc:
        detail = {**note.detail, "status": exc.status, "error": exc.error}
        await record_by(gw, who, action, site=note.site, target=target, result="refused",
                        detail=detail)  # fmt: skip
        raise
    except Exception as exc:
        detail = {**note.detail, "error": type(exc).__name__}
        await record_by(gw, who, action, site=note.site, target=target, result="failed",
                        detail=detail)  # fmt: skip
        raise
    await record_by(gw, who, action, site=note.site, target=target, detail=note.detail or None)
