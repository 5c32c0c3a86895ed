"""Persons sign in (issue 11): a login sets an HttpOnly SameSite=Strict session cookie, the
actor of an action is the person behind it (a typed name is only a note), a change from a
session must come from our own pages, failed logins lock, issued tokens work until revoked,
and with nobody able to sign in the loopback API stays in local operator mode."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml

from gateway.audit import verify
from gateway.cli.main import main as cli
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.http.server import HttpServer
from gateway.people.model import Person, Role
from gateway.people.passwords import hash_password
from tests.conftest import (
    Mosquitto,
    Probe,
    RunningGateway,
    free_port,
    running_gateway,
    served,
    until,
)
from tests.support.overview import two_sites

PASSWORD = "correct horse battery"
ORIGIN = {"origin": "http://gateway"}


def _config(tmp_path: Path, broker: Mosquitto, **http: Any) -> Any:
    data = two_sites(tmp_path / "data", broker.port)
    data["sites"][0]["local_networks"] = ["127.0.0.0/8"]  # open_valve: the test is on site
    if http:
        data["http"] = http
    return data


@asynccontextmanager
async def _with_people(
    tmp_path: Path, broker: Mosquitto, *persons: Person, **http: Any
) -> AsyncIterator[RunningGateway]:
    async with running_gateway(parse_config(_config(tmp_path, broker, **http))) as rg:
        for p in persons:
            await asyncio.to_thread(rg.gw.people.add, p, hash_password(PASSWORD), 0.0)
        yield rg


WANG = Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"}))
ADMIN = Person("root1", "管理员", Role.ADMIN, frozenset())
BUREAU = Person("ju1", "局值班员", Role.BUREAU, frozenset())


async def _login(api: httpx.AsyncClient, login: str, password: str = PASSWORD) -> httpx.Response:
    return await api.post("/api/login", json={"login": login, "password": password})


async def _button_alarm(probe: Probe, site: str = "xingfu") -> str:
    await probe.event("btn-lobby" if site == "xingfu" else "btn-1", "pressed", site=site)
    alarm = await probe.wait_for(f"{site}/alarms", lambda m: m["type"] == "fire_button")
    return str(alarm["id"])


@pytest.mark.broker
async def test_the_actor_is_the_person_behind_the_session(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    async with _with_people(tmp_path, broker, WANG) as rg:
        api = rg.api
        assert (await api.get("/api/alarms")).status_code == 401
        wrong = await _login(api, "wang", "not the password")
        assert (wrong.status_code, wrong.json()["error"]) == (401, "wrong login or password")
        unknown = await _login(api, "nobody")
        assert unknown.json() == wrong.json()  # says nothing about which logins exist

        r = await _login(api, "wang")
        assert r.status_code == 200 and r.json()["name"] == "王值班"
        cookie = r.headers["set-cookie"]
        assert "sg_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain HTTP here; Secure under TLS
        me = (await api.get("/api/me")).json()
        assert (me["login"], me["role"], me["sites"], me["via"]) == (
            "wang", "duty", ["xingfu"], "session",
        )  # fmt: skip

        alarm_id = await _button_alarm(probe)
        # The impersonation of the issue: a duty officer types the county head's name.
        r = await api.post(
            f"/api/alarms/{alarm_id}/ack",
            json={"by": "县局局长（冒名）", "note": "已到场"},
            headers=ORIGIN,
        )
        assert r.status_code == 200, r.text
        acked = r.json()
        assert acked["acked_by"] == "王值班 (wang)"
        ack_entry = next(e for e in acked["timeline"] if e["action"] == "acked")
        assert ack_entry["actor"] == "王值班 (wang)"
        assert ack_entry["note"] == "已到场（填写姓名：县局局长（冒名））"

        r = await api.post("/api/logout", headers=ORIGIN)
        assert r.status_code == 200 and r.json() == {"logged_out": True}
        again = await api.get("/api/me")
        assert again.status_code == 401


@pytest.mark.broker
async def test_a_change_from_a_session_must_come_from_our_pages(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    async with _with_people(tmp_path, broker, WANG) as rg:
        api = rg.api
        await _login(api, "wang")
        alarm_id = await _button_alarm(probe)
        for headers in ({"origin": "http://evil.example"}, {}):
            r = await api.post(f"/api/alarms/{alarm_id}/ack", json={}, headers=headers)
            assert (r.status_code, r.json()["error"]) == (403, "cross-site request refused")
        assert rg.gw.book.get(alarm_id).acked is False  # type: ignore[union-attr]
        assert (await api.get("/api/alarms")).status_code == 200  # reading needs no Origin
        r = await api.post(f"/api/alarms/{alarm_id}/ack", json={}, headers=ORIGIN)
        assert r.status_code == 200


@pytest.mark.broker
async def test_failed_logins_lock_the_account(tmp_path: Path, broker: Mosquitto) -> None:
    async with _with_people(tmp_path, broker, WANG) as rg:
        api = rg.api
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(5):
            t0 = loop.time()
            assert (await _login(api, "wang", "guess guess guess")).status_code == 401
            times.append(loop.time() - t0)
        assert times[-1] > times[0] + 0.5  # each failure answered more slowly
        locked = await _login(api, "wang")  # even the right password
        assert locked.status_code == 429
        assert 800 < int(locked.headers["retry-after"]) <= 901


@pytest.mark.broker
async def test_issued_tokens_work_until_revoked_and_are_stored_hashed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with _with_people(tmp_path, broker, ADMIN, BUREAU) as rg:
        api = rg.api
        await _login(api, "root1")
        r = await api.post(
            "/api/tokens", json={"login": "ju1", "label": "县局大屏"}, headers=ORIGIN
        )
        assert r.status_code == 201, r.text
        token, token_id = r.json()["token"], r.json()["id"]
        db = sqlite3.connect(rg.gw.people.path)
        assert token not in str(db.execute("SELECT * FROM api_tokens").fetchall())
        script = httpx.AsyncClient(transport=api._transport, base_url="http://gateway")
        bearer = {"authorization": f"Bearer {token}"}
        me = (await script.get("/api/me", headers=bearer)).json()
        assert (me["login"], me["via"], me["every_site"]) == ("ju1", "token", True)
        listed = (await api.get("/api/tokens")).json()
        assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]

        r = await api.delete(f"/api/tokens/{token_id}", headers=ORIGIN)
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
        assert (await script.get("/api/me", headers=bearer)).status_code == 401
        await script.aclose()


@pytest.mark.broker
async def test_environment_tokens_keep_working(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOK_ADMIN", "admin-secret")
    tokens = [{"name": "admin", "token_env": "TOK_ADMIN", "role": "admin"}]
    async with _with_people(tmp_path, broker, WANG, tokens=tokens) as rg:
        r = await rg.api.get("/api/me", headers={"authorization": "Bearer admin-secret"})
        assert (r.json()["login"], r.json()["role"], r.json()["via"]) == ("admin", "admin", "env")
        assert (await _login(rg.api, "wang")).status_code == 200  # and persons beside them


@pytest.mark.broker
async def test_local_operator_mode_ends_when_someone_can_sign_in(
    tmp_path: Path, broker: Mosquitto, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _config(tmp_path, broker)
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    async with running_gateway(parse_config(data)) as rg:
        api = rg.api
        me = (await api.get("/api/me")).json()
        assert (me["login"], me["via"]) == ("local", "local")
        alarm_id = await _button_alarm(probe)
        # the local operator names themselves, as before accounts existed
        r = await api.post(f"/api/alarms/{alarm_id}/ack", json={"by": "王值班"})
        assert r.json()["acked_by"] == "王值班"
        assert (await api.post(f"/api/alarms/{alarm_id}/ack", json={})).status_code == 422

        # The first admin is made with the CLI beside the running gateway.
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        argv = ["user", "add", "-c", str(config_file), "root1", "--name", "管理员",
                "--role", "admin", "--password-stdin"]  # fmt: skip
        assert await asyncio.to_thread(cli, argv) == 0
        # ...and is on the audit trail, written by the CLI into the running gateway's chain
        made = await rg.gw.audit.query(action="user.add")
        assert [(r.target, r.source, r.detail) for r in made] == [
            ("root1", "cli", {"role": "admin"})
        ]

        async def refused() -> bool:
            return (await api.get("/api/alarms")).status_code == 401

        async def check() -> None:
            while not await refused():
                await asyncio.sleep(0.2)

        await asyncio.wait_for(check(), 10)
        assert (await _login(api, "root1")).status_code == 200
        assert (await api.get("/api/alarms")).status_code == 200


@pytest.mark.broker
async def test_the_live_feed_closes_when_the_session_ends(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.http.live.RECHECK_S", 0.2)
    async with _with_people(tmp_path, broker, WANG) as rg:
        r = await _login(rg.api, "wang")
        cookie = f"sg_session={r.cookies['sg_session']}"
        async with served(create_api(rg.gw), free_port()) as port:
            url = f"ws://127.0.0.1:{port}/api/live"
            ours = f"http://127.0.0.1:{port}"  # a browser sends its page's Origin
            async with websockets.connect(
                url, additional_headers={"cookie": cookie}, origin=ours
            ) as ws:
                assert '"snapshot"' in str(await asyncio.wait_for(ws.recv(), 5))
                await rg.api.post("/api/logout", headers=ORIGIN)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:  # alarms may still come until the check: then it closes
                        await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.broker
@pytest.mark.parametrize(("trusted", "forwarded_is_believed"), [(["127.0.0.1"], True), ([], False)])
async def test_a_trusted_proxy_names_the_client(
    tmp_path: Path, broker: Mosquitto, trusted: list[str], forwarded_is_believed: bool
) -> None:
    """Behind a reverse proxy on this host the client is the one the proxy names: never the
    local operator, and its own address in the trail; a proxy not trusted is not believed."""
    async with _with_people(tmp_path, broker) as rg:
        port = free_port()
        server = HttpServer(
            create_api(rg.gw), "127.0.0.1", port, lifespan="off", trusted_proxies=trusted
        )
        task = asyncio.create_task(server.serve())
        try:
            await until(lambda: server.started, what="http server started")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                assert (await c.get("/api/me")).json()["via"] == "local"
                relayed = await c.get("/api/me", headers={"x-forwarded-for": "10.9.8.7"})
                assert relayed.status_code == (401 if forwarded_is_believed else 200)
                await c.post("/api/login", json={"login": "nobody", "password": "x"},
                             headers={"x-forwarded-for": "10.9.8.7"})  # fmt: skip
            sources = [r.source for r in await rg.gw.audit.query(action="session.login")]
            assert sources == ["10.9.8.7" if forwarded_is_believed else "127.0.0.1"]
        finally:
            server.should_exit = True
            await task


@pytest.mark.broker
async def test_every_action_is_on_the_audit_trail_with_person_address_and_result(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    async with _with_people(tmp_path, broker, WANG) as rg:
        api = rg.api
        assert (await _login(api, "wang", "a wrong password")).status_code == 401
        await _login(api, "wang")
        await probe.telemetry("gas-kitchen", {"lel": 40})
        gas = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
        calls = [
            ("POST", f"/api/alarms/{gas['id']}/ack", {"note": "到场"}, 200),
            ("POST", f"/api/alarms/{gas['id']}/close", {"disposition": "real"}, 409),  # active
            ("POST", "/api/devices/valve-kitchen/commands", {"cmd": "open_valve"}, 409),
            ("POST", "/api/devices/valve-kitchen/commands", {"cmd": "close_valve"}, 202),
            ("PUT", "/api/devices/btn-lobby/maintenance", {"minutes": 30}, 200),
            ("DELETE", "/api/devices/btn-lobby/maintenance", None, 200),
            ("POST", "/api/logout", None, 200),
        ]
        for method, path, body, status in calls:
            r = await api.request(method, path, json=body, headers=ORIGIN)
            assert r.status_code == status, (path, r.text)
        rows = [
            (r.action, r.actor, r.role, r.source, r.site, r.target, r.result)
            for r in reversed(await rg.gw.audit.query())
        ]
        who = ("wang", "duty", "127.0.0.1")
        assert rows == [
            ("session.login", "wang", "", "127.0.0.1", None, "wang", "failed"),
            ("session.login", *who, None, "wang", "ok"),
            ("alarm.ack", *who, "xingfu", gas["id"], "ok"),
            ("alarm.close", *who, "xingfu", gas["id"], "refused"),
            ("command.open_valve", *who, "xingfu", "valve-kitchen", "refused"),
            ("command.close_valve", *who, "xingfu", "valve-kitchen", "ok"),
            ("maintenance.set", *who, "xingfu", "btn-lobby", "ok"),
            ("maintenance.clear", *who, "xingfu", "btn-lobby", "ok"),
            ("session.logout", *who, None, "wang", "ok"),
        ]
        records = list(reversed(await rg.gw.audit.query()))
        assert records[3].detail is not None and records[3].detail["status"] == 409
        # the maintenance row is deleted; the trail keeps whose window was ended
        assert records[7].detail is not None and records[7].detail["set_by"] == "王值班 (wang)"
        assert verify(rg.gw.audit.path).ok


@pytest.mark.broker
async def test_with_accounts_on_there_is_no_local_operator_even_before_the_first(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async with _with_people(tmp_path, broker, accounts=True) as rg:
        assert "nobody can sign in" in caplog.text
        assert (await rg.api.get("/api/me")).status_code == 401
        assert (await rg.api.get("/api/health")).json()["detail"] is False
        await asyncio.to_thread(rg.gw.people.add, WANG, hash_password(PASSWORD), 0.0)
        assert (await _login(rg.api, "wang")).status_code == 200
        assert (await rg.api.get("/api/me")).json()["via"] == "session"


@pytest.mark.broker
async def test_contacts_are_edited_in_the_file_and_disabled_here(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with _with_people(tmp_path, broker, ADMIN) as rg:
        api = rg.api
        await _login(api, "root1")
        zhao = "p8613800000011"  # anning's legal representative, from the configuration
        listed = {p["login"]: p for p in (await api.get("/api/users")).json()}
        assert listed[zhao]["origin"] == "config" and not listed[zhao]["has_password"]
        r = await api.patch(f"/api/users/{zhao}", json={"name": "改名"}, headers=ORIGIN)
        assert r.status_code == 409 and "name" in r.json()["detail"]
        r = await api.patch(f"/api/users/{zhao}", json={"disabled": True}, headers=ORIGIN)
        assert r.status_code == 200 and r.json()["disabled"] is True
        await rg.gw.sync_contacts()  # as a reload does
        assert (await asyncio.to_thread(rg.gw.people.get, zhao)).disabled  # type: ignore[union-attr]
        row = (await rg.gw.audit.query(action="user."))[0]
        assert (row.action, row.actor, row.target) == ("user.disable", "root1", zhao)


@pytest.mark.broker
async def test_the_live_feed_refuses_another_sites_page_riding_on_the_cookie(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with _with_people(tmp_path, broker, WANG) as rg:
        r = await _login(rg.api, "wang")
        cookie = {"cookie": f"sg_session={r.cookies['sg_session']}"}
        async with served(create_api(rg.gw), free_port()) as port:
            url = f"ws://127.0.0.1:{port}/api/live"
            for origin in ("http://evil.example", None):
                with pytest.raises(websockets.InvalidStatus):
                    await websockets.connect(url, additional_headers=cookie, origin=origin)
            ours = f"http://127.0.0.1:{port}"
            async with websockets.connect(url, additional_headers=cookie, origin=ours) as ws:
                assert '"snapshot"' in str(await asyncio.wait_for(ws.recv(), 5))


@pytest.mark.broker
async def test_ones_own_new_password_needs_the_current_one_and_ends_the_sessions(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with _with_people(tmp_path, broker, WANG) as rg:
        api = rg.api
        await _login(api, "wang")
        new = {"password": "another long phrase"}
        r = await api.post("/api/users/wang/password", json=new, headers=ORIGIN)
        assert (r.status_code, r.json()["error"]) == (403, "current password is wrong")
        r = await api.post(
            "/api/users/wang/password", json={**new, "current": PASSWORD}, headers=ORIGIN
        )
        assert r.status_code == 200
        assert (await api.get("/api/me")).status_code == 401  # this session too
        assert (await _login(api, "wang", PASSWORD)).status_code == 401
        assert (await _login(api, "wang", new["password"])).status_code == 200
        results = [r.result for r in await rg.gw.audit.query(action="user.password")]
        assert results == ["ok", "refused"]


@pytest.mark.broker
async def test_a_broken_people_database_stops_sign_in_not_the_alarms(
    tmp_path: Path, broker: Mosquitto, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOK_ADMIN", "admin-secret")
    data = _config(tmp_path, broker)
    data["http"] = {"tokens": [{"name": "admin", "token_env": "TOK_ADMIN", "role": "admin"}]}
    people_db = tmp_path / "data" / "people.sqlite3"
    people_db.parent.mkdir(parents=True, exist_ok=True)
    people_db.write_bytes(b"not a database, a disk that went wrong " * 100)
    async with running_gateway(parse_config(data)) as rg:
        api = rg.api
        admin = {"authorization": "Bearer admin-secret"}
        health = (await api.get("/api/health", headers=admin)).json()
        assert health["status"] == "degraded" and "people" in health["databases_unavailable"]
        await probe.event("btn-lobby", "pressed")  # the alarms go on
        alarm = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")
        r = await api.post(f"/api/alarms/{alarm['id']}/ack", json={}, headers=admin)
        assert r.status_code == 200  # and the environment's tokens still act
        refused = await api.get("/api/me", headers={"cookie": "sg_session=whatever"})
        assert (refused.status_code, refused.json()["error"]) == (503, "sign-in is unavailable")
        login = await _login(api, "wang")
        assert login.status_code == 503
