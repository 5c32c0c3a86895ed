"""People who log in, for the tests of the pages: accounts written to the gateway's people
database before it starts (as `safety-gateway user add` does), and logging in through the
login page as a person would."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Page

from gateway.people.directory import People
from gateway.people.model import Origin, Person, Role
from gateway.people.passwords import hash_password


@dataclass(frozen=True, slots=True)
class Account:
    login: str
    name: str
    role: Role
    sites: frozenset[str]
    password: str

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.login})"


DUTY = Account("wangzb", "王值班", Role.DUTY, frozenset({"xingfu"}), "kitchen-gas-0751")
BUREAU = Account("liju", "李局长", Role.BUREAU, frozenset(), "county-bureau-0751")


def add_accounts(data_dir: Path, *accounts: Account) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    people = People(data_dir / "people.sqlite3")
    people.open()
    try:
        for a in accounts:
            person = Person(a.login, a.name, a.role, a.sites, origin=Origin.ACCOUNT)
            people.add(person, hash_password(a.password), time.time())
    finally:
        people.close()


async def submit_login(page: Page, login: str, password: str) -> None:
    """Type into the login page (already open) and press 登录."""
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(password)
    await page.locator("#submit").click()


async def session_cookie(page: Page) -> str:
    cookies = await page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == "sg_session")
