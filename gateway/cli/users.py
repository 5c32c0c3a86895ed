"""`safety-gateway user add | passwd | disable | enable | list | token | revoke`: accounts from
the command line, e.g. the first admin of a new install. Works beside a running gateway (the
database takes one writer at a time); every change is on the audit trail as done by the
operating-system user at the console (source `cli`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sqlite3
import sys
import time
from pathlib import Path

from gateway.audit import AuditEntry, append_sync
from gateway.config.schema import GatewayConfig
from gateway.people.directory import People, PersonExists, UnknownPerson
from gateway.people.model import ROLE_LABELS, SITE_ROLES, Origin, Person, Role, valid_login
from gateway.people.passwords import WeakPassword, check_strength, hash_password

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("user", help="accounts: add, passwd, disable, enable, list, token, revoke")
    us = u.add_subparsers(dest="user_command", required=True)

    def cmd(name: str, help_text: str, login: bool = True) -> argparse.ArgumentParser:
        p = us.add_parser(name, help=help_text)
        p.add_argument("-c", "--config", type=Path, required=True)
        if login:
            p.add_argument("login")
        return p

    add = cmd("add", "add a person who can log in")
    add.add_argument("--name", required=True, help="display name, e.g. 王值班")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--site", action="append", default=[], help="a site (repeat for several)")
    add.add_argument("--phone")
    add.add_argument("--email")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    pw = cmd("passwd", "set a person's password (ends their sessions)")
    pw.add_argument("--password-stdin", action="store_true")
    cmd("disable", "stop a person logging in (ends sessions; tokens and phone links stop working)")
    cmd("enable", "let a disabled person log in again")
    cmd("list", "list persons: accounts and the configuration's contacts", login=False)
    tok = cmd("token", "issue an API token to a person (shown once)")
    tok.add_argument("--label", required=True, help="what the token is for, e.g. 'bureau SCADA'")
    rv = cmd("revoke", "revoke an API token by its id", login=False)
    rv.add_argument("token_id")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise WeakPassword("the two passwords differ")
    return first


def _operator() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "cli"


def cmd_user(args: argparse.Namespace, config: GatewayConfig) -> int:
    people = People(Path(config.gateway.data_dir) / "people.sqlite3")
    people.open()
    try:
        return _run(args, config, people)
    except UnknownPerson as exc:
        print(f"unknown person: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except WeakPassword as exc:
        print(f"password refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, sqlite3.Error) as exc:
        print(f"the change is made but the audit trail could not be written: {exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    finally:
        people.close()


def _run(args: argparse.Namespace, config: GatewayConfig, people: People) -> int:
    now = time.time()
    what = args.user_command
    if what == "list":
        for p in people.persons():
            state = "disabled" if p.disabled else ("login" if p.has_password else "phone only")
            sites = ",".join(sorted(p.sites)) or "*"
            print(
                f"{p.login:20} {p.name:10} {p.role.value:22} {ROLE_LABELS[p.role]:8} "
                f"{sites:20} {p.phone or '-':15} {p.origin.value:7} {state}"
            )
        for t in people.tokens():
            revoked = " revoked" if t.revoked_at is not None else ""
            print(f"token {t.id} for {t.login}: {t.label}{revoked}")
        return EXIT_OK
    if what == "add":
        if not valid_login(args.login):
            print("a login is 2-64 of a-z 0-9 . _ - , starting with a letter or digit",
                  file=sys.stderr)  # fmt: skip
            return EXIT_INVALID
        role = Role(args.role)
        unknown = [s for s in args.site if s not in {x.id for x in config.sites}]
        if unknown or (role in SITE_ROLES and not args.site):
            problem = f"unknown site {unknown[0]}" if unknown else f"a {role.value} needs --site"
            print(f"sites: {problem}", file=sys.stderr)
            return EXIT_INVALID
        password = _password(args)
        check_strength(password, args.login)
        person = Person(args.login, args.name, role, frozenset(args.site), args.phone,
                        args.email, Origin.ACCOUNT)  # fmt: skip
        try:
            people.add(person, hash_password(password), now)
        except PersonExists:
            print(f"login {args.login} exists already", file=sys.stderr)
            return EXIT_FAILED
        _audit(config, "user.add", args.login, {"role": role.value})
        print(f"added {args.login} ({ROLE_LABELS[role]})")
    elif what == "passwd":
        if people.get(args.login) is None:
            raise UnknownPerson(args.login)
        password = _password(args)
        check_strength(password, args.login)
        people.set_password(args.login, hash_password(password), now)
        _audit(config, "user.password", args.login, None)
        print(f"password of {args.login} set; their sessions are ended")
    elif what in ("disable", "enable"):
        people.set_disabled(args.login, what == "disable", now, f"cli:{_operator()}")
        _audit(config, f"user.{what}", args.login, None)
        print(f"{args.login} {what}d")
    elif what == "token":
        info, secret = people.issue_token(args.login, args.label, f"cli:{_operator()}", now)
        _audit(config, "token.issue", info.id, {"for": args.login})
        print(f"token {info.id} for {args.login} (shown once, keep it safe):\n{secret}")
    elif what == "revoke":
        gone = people.revoke_token(args.token_id, f"cli:{_operator()}", now)
        if gone is None:
            print(f"unknown token {args.token_id}", file=sys.stderr)
            return EXIT_FAILED
        _audit(config, "token.revoke", args.token_id, {"for": gone.login})
        print(f"token {args.token_id} revoked")
    return EXIT_OK


def _audit(config: GatewayConfig, action: str, target: str, detail: dict[str, str] | None) -> None:
    """The change is made: a trail that cannot be written is said (the caller exits 1 so a
    script notices), not hidden."""
    entry = AuditEntry(
        at=time.time(),
        actor=f"cli:{_operator()}",
        actor_name=_operator(),
        role="admin",
        source="cli",
        action=action,
        target=target,
        detail=detail,
    )
    append_sync(Path(config.gateway.data_dir) / "audit.sqlite3", entry)
