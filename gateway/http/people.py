"""Accounts and API tokens through the API (admins; a person may change their own password):
`GET/POST /api/users`, `PATCH /api/users/{login}`, `POST /api/users/{login}/password`,
`GET/POST /api/tokens`, `DELETE /api/tokens/{id}`. Every change is on the audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from gateway.http.auth import GatewayDep, Principal, PrincipalDep, auth_of, require_role
from gateway.http.errors import ApiError
from gateway.http.params import Body
from gateway.http.trail import record_by
from gateway.people.directory import PersonExists, TokenInfo, UnknownPerson
from gateway.people.model import (
    LOGIN_PATTERN,
    ROLE_LABELS,
    SITE_ROLES,
    Origin,
    Person,
    Role,
)
from gateway.people.passwords import WeakPassword, check_strength, hash_password, verify_password

router = APIRouter()
ADMINS = frozenset({Role.ADMIN})
PHONE = r"^\+?[0-9]{6,15}$"


class NewPerson(Body):
    login: str = Field(pattern=LOGIN_PATTERN)
    name: str = Field(min_length=1, max_length=64)
    role: Role
    sites: list[str] = Field(default_factory=list)
    phone: str | None = Field(None, pattern=PHONE)
    email: str | None = Field(None, max_length=254)
    password: str | None = Field(None, max_length=1024)


class PersonChange(Body):
    name: str | None = Field(None, min_length=1, max_length=64)
    role: Role | None = None
    sites: list[str] | None = None
    phone: str | None = Field(None, pattern=PHONE)
    email: str | None = Field(None, max_length=254)
    disabled: bool | None = None


class PasswordBody(Body):
    password: str = Field(min_length=1, max_length=1024)
    # One's own password: the current one too (a session left open is not the person).
    current: str | None = Field(None, max_length=1024)


class NewToken(Body):
    login: str | None = None  # whose: default the caller
    label: str = Field(min_length=1, max_length=64)


def person_json(p: Person) -> dict[str, Any]:
    return {
        "login": p.login,
        "name": p.name,
        "role": p.role.value,
        "role_label": ROLE_LABELS[p.role],
        "sites": sorted(p.sites),
        "phone": p.phone,
        "email": p.email,
        "origin": p.origin.value,
        "disabled": p.disabled,
        "has_password": p.has_password,
    }


def token_json(gw: Any, t: TokenInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "login": t.login,
        "label": t.label,
        "created_at": gw.clockface.iso(t.created_at),
        "created_by": t.created_by,
        "revoked_at": gw.clockface.iso(t.revoked_at) if t.revoked_at is not None else None,
        "last_used_at": gw.clockface.iso(t.last_used_at) if t.last_used_at is not None else None,
    }


def _check_sites(gw: Any, role: Role, sites: list[str]) -> frozenset[str]:
    unknown = [s for s in sites if s not in gw.inventory.sites]
    if unknown:
        raise ApiError(422, "invalid request", f"sites: unknown site {unknown[0]!r}")
    if role in SITE_ROLES and not sites:
        raise ApiError(422, "invalid request", f"sites: a {role.value} needs at least one site")
    return frozenset(sites)


def _strong(password: str, login: str) -> str:
    try:
        check_strength(password, login)
    except WeakPassword as exc:
        raise ApiError(422, "invalid request", f"password: {exc}") from None
    return password


@router.get("/api/users")
async def users(who: PrincipalDep, request: Request) -> list[dict[str, Any]]:
    require_role(who, ADMINS, "list accounts")
    return [person_json(p) for p in await asyncio.to_thread(auth_of(request).people.persons)]


@router.post("/api/users", status_code=201)
async def add_user(
    gw: GatewayDep, who: PrincipalDep, request: Request, body: NewPerson
) -> dict[str, Any]:
    require_role(who, ADMINS, "add accounts")
    sites = _check_sites(gw, body.role, body.sites)
    hashed = None
    if body.password is not None:
        hashed = await asyncio.to_thread(hash_password, _strong(body.password, body.login))
    person = Person(body.login, body.name, body.role, sites, body.phone, body.email, Origin.ACCOUNT)
    auth = auth_of(request)
    try:
        made = await asyncio.to_thread(auth.people.add, person, hashed, gw.clock())
    except PersonExists:
        raise ApiError(409, "login already exists", body.login) from None
    auth.forget_open()
    await record_by(
        gw, who, "user.add", target=made.login,
        detail={"role": made.role.value, "sites": ",".join(sorted(made.sites))},
    )  # fmt: skip
    return person_json(made)


@router.patch("/api/users/{login}")
async def change_user(
    gw: GatewayDep, who: PrincipalDep, request: Request, login: str, body: PersonChange
) -> dict[str, Any]:
    require_role(who, ADMINS, "change accounts")
    auth = auth_of(request)
    current = await _person(request, login)
    followed = body.model_dump(exclude_none=True, exclude={"disabled"})
    if current.origin is Origin.CONFIG and followed:
        # The next start or reload would write the file's values back over these.
        raise ApiError(
            409,
            "this person is a contact of the configuration file",
            f"change {', '.join(sorted(followed))} in the file's contacts; here only disabled",
        )
    role = body.role or current.role
    sites = _check_sites(gw, role, body.sites) if body.sites is not None else None
    if sites is None and body.role is not None:
        _check_sites(gw, role, sorted(current.sites))
    now = gw.clock()
    try:
        changed = await asyncio.to_thread(
            lambda: auth.people.update(
                login, now, name=body.name, role=body.role, sites=sites,
                phone=body.phone, email=body.email,
            )
        )  # fmt: skip
        if body.disabled is not None:
            await asyncio.to_thread(auth.people.set_disabled, login, body.disabled, now, who.login)
            changed = await _person(request, login)
    except UnknownPerson:
        raise ApiError(404, "unknown account", login) from None
    auth.forget_open()
    fields = body.model_dump(exclude_none=True)
    await record_by(
        gw, who, "user.disable" if body.disabled else "user.change", target=login,
        detail={k: ",".join(v) if isinstance(v, list) else v for k, v in fields.items()},
    )  # fmt: skip
    return person_json(changed)


@router.post("/api/users/{login}/password")
async def set_password(
    gw: GatewayDep, who: PrincipalDep, request: Request, login: str, body: PasswordBody
) -> dict[str, Any]:
    if who.login != login:
        require_role(who, ADMINS, "set another person's password")
    await _person(request, login)
    auth = auth_of(request)
    if who.login == login and who.via in ("session", "token"):
        stored = await asyncio.to_thread(auth.people.password_hash, login)
        given = body.current or ""
        if stored is not None and not await asyncio.to_thread(verify_password, stored, given):
            await record_by(gw, who, "user.password", target=login, result="refused")
            raise ApiError(403, "current password is wrong", "send it as current")
    hashed = await asyncio.to_thread(hash_password, _strong(body.password, login))
    await asyncio.to_thread(auth.people.set_password, login, hashed, gw.clock())
    auth.forget_open()
    await record_by(gw, who, "user.password", target=login)
    return {"login": login, "password_set": True, "sessions_ended": True}


async def _person(request: Request, login: str) -> Person:
    found = await asyncio.to_thread(auth_of(request).people.get, login)
    if found is None:
        raise ApiError(404, "unknown account", login)
    return found


def _may_manage_tokens(who: Principal, login: str) -> None:
    if who.login != login:
        require_role(who, ADMINS, "manage another person's tokens")
    if who.via == "local":
        return
    if who.via == "env":
        raise ApiError(403, "not allowed", "an environment token names no person: log in")


@router.get("/api/tokens")
async def tokens(gw: GatewayDep, who: PrincipalDep, request: Request) -> list[dict[str, Any]]:
    people = auth_of(request).people
    login = None if who.role is Role.ADMIN else who.login
    return [token_json(gw, t) for t in await asyncio.to_thread(people.tokens, login)]


@router.post("/api/tokens", status_code=201)
async def issue_token(
    gw: GatewayDep, who: PrincipalDep, request: Request, body: NewToken
) -> dict[str, Any]:
    login = body.login or who.login
    _may_manage_tokens(who, login)
    person = await _person(request, login)
    if person.disabled:
        raise ApiError(409, "account is disabled", login)
    auth = auth_of(request)
    info, secret = await asyncio.to_thread(
        auth.people.issue_token, login, body.label, who.login, gw.clock()
    )
    auth.forget_open()
    await record_by(gw, who, "token.issue", target=info.id, detail={"for": login})
    # The secret is shown here once and never again: only its hash is kept.
    return token_json(gw, info) | {"token": secret}


@router.delete("/api/tokens/{token_id}")
async def revoke_token(
    gw: GatewayDep, who: PrincipalDep, request: Request, token_id: str
) -> dict[str, Any]:
    people = auth_of(request).people
    found = next((t for t in await asyncio.to_thread(people.tokens) if t.id == token_id), None)
    if found is None or (who.role is not Role.ADMIN and found.login != who.login):
        raise ApiError(404, "unknown token", token_id)
    revoked = await asyncio.to_thread(people.revoke_token, token_id, who.login, gw.clock())
    auth_of(request).forget_open()
    await record_by(gw, who, "token.revoke", target=token_id, detail={"for": found.login})
    assert revoked is not None
    return token_json(gw, revoked)
