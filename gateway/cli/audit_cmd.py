"""`safety-gateway audit verify | list`: the audit trail from the command line, read-only
(the gateway may be running)."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.audit import query_readonly, verify
from gateway.audit.query import MAX_LIMIT
from gateway.cli.configs import load_or_report
from gateway.config.clockface import Clockface
from gateway.config.schema import GatewayConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("audit", help="the audit trail: verify its hash chain, list its rows")
    a_sub = a.add_subparsers(dest="audit", required=True)
    v = a_sub.add_parser("verify", help="check the hash chain and the head; exit 1 if broken")
    v.add_argument("-c", "--config", type=Path, default=Path("gateway.yaml"))
    ls = a_sub.add_parser("list", help="rows, newest first")
    ls.add_argument("-c", "--config", type=Path, default=Path("gateway.yaml"))
    ls.add_argument("--since", help="YYYY-MM-DD (the gateway's zone) or an ISO 8601 time")
    ls.add_argument("--limit", type=int, default=50, help=f"1 to {MAX_LIMIT} (default 50)")
    ls.add_argument("--site")
    ls.add_argument("--actor")
    ls.add_argument("--action", help='a prefix, e.g. "alarm."')


def cmd_audit(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    path = Path(config.gateway.data_dir) / "audit.sqlite3"
    if args.audit == "verify":
        return _verify(path)
    return _list(path, config, args)


def _verify(path: Path) -> int:
    result = verify(path)
    if result.ok:
        head = f"head {result.last_hash[:12]}…" if result.rows else "empty"
        print(f"audit log OK: {result.rows:,} entries, {head}")
        return EXIT_OK
    where = f"row {result.broken_seq}" if result.broken_seq is not None else "the head"
    print(
        f"audit log BROKEN at {where}: {result.reason}: {result.detail} "
        f"({result.rows:,} rows read; {path})"
    )
    return EXIT_FAILED


def _list(path: Path, config: GatewayConfig, args: argparse.Namespace) -> int:
    clock = Clockface(config.gateway.timezone)
    since = None
    if args.since is not None:
        since = _since(args.since, clock.zone)
        if since is None:
            print(f"--since: not a date or ISO 8601 time: {args.since!r}", file=sys.stderr)
            return EXIT_INVALID
    if not 1 <= args.limit <= MAX_LIMIT:
        print(f"--limit: 1 to {MAX_LIMIT}", file=sys.stderr)
        return EXIT_INVALID
    rows = query_readonly(
        path,
        since=since,
        sites=None if args.site is None else [args.site],
        actor=args.actor,
        action=args.action,
        limit=args.limit,
    )
    for r in rows:
        detail = " ".join(f"{k}={v}" for k, v in (r.detail or {}).items())
        print(
            "\t".join(
                str(x)
                for x in (
                    r.seq, clock.iso(r.at), f"{r.actor}({r.actor_name})", r.role, r.source,
                    r.action, r.site or "-", r.target or "-", r.result, detail,
                )
            ).rstrip()
        )  # fmt: skip
    return EXIT_OK


def _since(raw: str, zone: ZoneInfo) -> float | None:
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), zone).timestamp()
        dt = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=zone)).timestamp()
