"""Configuration reload (SIGHUP, `safety-gateway reload`): the file is read and checked as
`safety-gateway check` does, off the event loop; only a valid file changes anything, and
then in one synchronous swap between two messages (`Gateway.apply_config`).

Decided here, and in the README: an open alarm of a device or rule that the new file
removes stays open until a person closes it (the engine no longer watches it, so nothing
would ever clear it); escalation steps already scheduled keep their due times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.audit import CONFIG_RELOAD, SYSTEM, AuditEntry
from gateway.config.checks import missing_secrets
from gateway.config.errors import ConfigError
from gateway.config.loading import load_config
from gateway.config.reload import ReloadPlan, plan_reload
from gateway.config.ruleset import build_rules
from gateway.config.schema import GatewayConfig
from rules.engine import DeviceRules

if TYPE_CHECKING:
    from gateway.app.supervisor import Gateway

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    at: float
    ok: bool
    errors: tuple[str, ...] = ()
    changes: dict[str, Any] = field(default_factory=dict)

    def json(self, iso: Callable[[float], str | None]) -> dict[str, Any]:
        return {"at": iso(self.at), "ok": self.ok, "errors": list(self.errors), **self.changes}


async def reload_config(gw: Gateway, path: Path) -> ReloadResult:
    """Read, check and apply `path`; the running configuration stays when it is invalid."""
    try:
        # Off the loop: reading, checking and comparing 10,000 devices takes a second, and
        # no reading may wait for that. Only the swap itself runs on the loop.
        plan, rules = await asyncio.to_thread(_prepare, path, gw.config)
    except ConfigError as exc:
        refused = _refused(gw, path, [str(p) for p in exc.problems])
        await _audit(gw, path, refused, {"reason": "\n".join(refused.errors)[:_DETAIL_MAX]})
        return refused
    if plan.changed:
        await gw.apply_config(plan, rules)
    result = ReloadResult(gw.clock(), True, changes=plan.summary())
    await _audit(
        gw,
        path,
        result,
        {
            "changes": _describe(plan.summary())[:_DETAIL_MAX] or "nothing changed",
            "needs_restart": ", ".join(plan.needs_restart) or None,
        },
    )
    gw.metrics.config_reloads.labels("applied" if plan.changed else "unchanged").inc()
    log.warning(
        "configuration %s reloaded: %s", path, _describe(plan.summary()) or "nothing changed"
    )
    if plan.needs_restart:
        log.warning(
            "configuration %s: not applied until a restart: %s",
            path,
            ", ".join(plan.needs_restart),
        )
    return result


_DETAIL_MAX = 4000  # characters: 10,000 devices changed need not all be named in the trail


async def _audit(
    gw: Gateway, path: Path, result: ReloadResult, detail: dict[str, str | None]
) -> None:
    """A reload is audited; a failure to record it is logged and counted, and the reload
    stands (it has been applied, or refused, already)."""
    entry = AuditEntry(
        at=result.at,
        actor=SYSTEM,
        actor_name="系统",
        role=SYSTEM,
        source="signal",
        action=CONFIG_RELOAD,
        target=str(path),
        result="ok" if result.ok else "failed",
        detail=detail,
    )
    try:
        await gw.audit.append(entry)
    except Exception:
        gw.metrics.audit_failures.labels(CONFIG_RELOAD).inc()
        log.exception("configuration reload of %s not recorded in the audit log", path)


def _prepare(path: Path, running: GatewayConfig) -> tuple[ReloadPlan, list[DeviceRules]]:
    """The file checked as `run` checks it (secrets included), compared with `running`."""
    config = load_config(path)
    secrets = missing_secrets(config)
    if secrets:
        raise ConfigError(secrets)
    plan = plan_reload(running, config)
    return plan, build_rules(plan.config)


def _refused(gw: Gateway, path: Path, errors: list[str]) -> ReloadResult:
    gw.metrics.config_reloads.labels("refused").inc()
    log.error(
        "configuration %s refused (%d problem(s)); the running configuration stays:\n  %s",
        path,
        len(errors),
        "\n  ".join(errors),
    )
    return ReloadResult(gw.clock(), False, tuple(errors))


def _describe(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in summary.items():
        if key == "needs_restart":
            continue
        if isinstance(value, list) and value:
            parts.append(f"{key.replace('_', ' ')}: {', '.join(value)}")
        elif value is True:
            parts.append(key.replace("_", " "))
    return "; ".join(parts)
