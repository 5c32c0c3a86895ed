"""What the routes append to the audit trail (DESIGN section 10): one call per human action,
login and account change, with the person, their role and address, the target and the result.

An action stands when its audit row cannot be written (a full disk must not stop a person
acknowledging a gas alarm): the failure is logged as an error and counted, never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.app.supervisor import Gateway
from gateway.http.auth import Principal

log = logging.getLogger(__name__)

Detail = Mapping[str, str | int | float | bool | None]


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
) -> None:
    log.info(
        "audit %s by %s (%s) from %s: %s %s %s %s",
        action, actor, role, source, site, target, result, dict(detail or {}),
    )  # fmt: skip


async def record_by(
    gw: Gateway,
    who: Principal,
    action: str,
    *,
    site: str | None = None,
    target: str | None = None,
    result: str = "ok",
    detail: Detail | None = None,
) -> None:
    """`record` for an authenticated caller."""
    await record(
        gw,
        actor=who.login,
        actor_name=who.name,
        role=who.role.value,
        source=who.source,
        action=action,
        site=site,
        target=target,
        result=result,
        detail=detail,
    )
