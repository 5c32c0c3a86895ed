"""Persons and their roles, as values; which contacts of the configuration are persons."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gateway.config.schema import Contact, ContactRole, GatewayConfig


class Role(StrEnum):
    DUTY = "duty"
    SAFETY_MANAGER = "safety_manager"
    LEGAL_REPRESENTATIVE = "legal_representative"
    BUREAU = "bureau"
    BUREAU_LEADER = "bureau_leader"
    ADMIN = "admin"


# The institution's people: they read and act on their own sites only, and need sites.
SITE_ROLES = frozenset({Role.DUTY, Role.SAFETY_MANAGER, Role.LEGAL_REPRESENTATIVE})
# The bureau's: they read their sites (none listed: every site), act only on the alarms the
# bureau owns (an edge gateway lost), and read the audit trail of their sites.
BUREAU_ROLES = frozenset({Role.BUREAU, Role.BUREAU_LEADER})

ROLE_LABELS = {
    Role.DUTY: "值班员",
    Role.SAFETY_MANAGER: "安全管理员",
    Role.LEGAL_REPRESENTATIVE: "法定代表人",
    Role.BUREAU: "民政局",
    Role.BUREAU_LEADER: "民政局带班领导",
    Role.ADMIN: "管理员",
}

_CONTACT_ROLES = {
    ContactRole.LEGAL_REPRESENTATIVE: Role.LEGAL_REPRESENTATIVE,
    ContactRole.SAFETY_MANAGER: Role.SAFETY_MANAGER,
    ContactRole.DUTY_OFFICER: Role.DUTY,
    ContactRole.BUREAU_DUTY: Role.BUREAU,
    ContactRole.BUREAU_LEADER: Role.BUREAU_LEADER,
    ContactRole.OTHER: Role.DUTY,
}

LOGIN_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
_LOGIN = re.compile(LOGIN_PATTERN)


class Origin(StrEnum):
    ACCOUNT = "account"  # made by an admin (CLI or API)
    CONFIG = "config"  # a contact of the configuration; follows the file


@dataclass(frozen=True, slots=True)
class Person:
    login: str
    name: str
    role: Role
    sites: frozenset[str]  # empty: every site (bureau and admin only)
    phone: str | None = None
    email: str | None = None
    origin: Origin = Origin.ACCOUNT
    disabled: bool = False
    has_password: bool = False

    @property
    def every_site(self) -> bool:
        return not self.sites and self.role not in SITE_ROLES

    @property
    def actor(self) -> str:
        """How the person is named on timelines and in records: name and login, so that two
        people of the same name stay apart."""
        return self.login if self.name == self.login else f"{self.name} ({self.login})"


def valid_login(login: str) -> bool:
    return bool(_LOGIN.match(login))


def contact_login(contact: Contact) -> str | None:
    """A contact's login: the one the file gives, else the phone's digits (a phone is one
    person, wherever they are a contact), else None (no phone: no link to send)."""
    if contact.login:
        return contact.login
    if contact.phone:
        return "p" + contact.phone.lstrip("+")
    return None


def contact_persons(config: GatewayConfig) -> list[Person]:
    """The configuration's contacts as persons, one per login; a person who is a contact of
    several sites has them all; bureau contacts have every site."""
    merged: dict[str, Person] = {}

    def add(contact: Contact, sites: frozenset[str]) -> None:
        login = contact_login(contact)
        if login is None:
            return
        role = _CONTACT_ROLES[contact.role]
        if role in BUREAU_ROLES:
            sites = frozenset()
        seen = merged.get(login)
        if seen is not None:
            sites = seen.sites | sites if seen.sites and sites else frozenset()
            role = seen.role if seen.role in BUREAU_ROLES else role
        merged[login] = Person(
            login, contact.name, role, sites, contact.phone, contact.email, Origin.CONFIG
        )

    for site in config.sites:
        for contact in site.contacts:
            add(contact, frozenset({site.id}))
    for contact in config.notify.bureau_contacts:
        add(contact, frozenset())
    return list(merged.values())
