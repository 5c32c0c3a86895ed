"""HTTPS (`http.tls`): the server `run` starts (build_app + HttpServer) serves TLS with a
certificate from a throwaway CA, every response over it carries HSTS, and the duty console
works over it (its live feed then runs over wss). Plain HTTP carries no HSTS, and plain HTTP
off loopback is said at start."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from gateway.config.loading import parse_config
from gateway.config.tls import HttpTls
from gateway.http.app import build_app, create_api
from gateway.http.server import HttpServer
from gateway.people.directory import People
from gateway.people.model import Person, Role
from gateway.people.passwords import hash_password
from tests.conftest import Mosquitto, free_port, site_config, until
from tests.gateway.http.test_console import wait_state
from tests.support.browser import Chromium
from tests.support.certs import make_ca, server_cert

HSTS = "max-age=31536000"


@asynccontextmanager
async def https_gateway(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[tuple[str, Path]]:
    """The gateway as `safety-gateway run` serves it, with http.tls: its base URL and the CA
    file that signed its certificate (for localhost and 127.0.0.1)."""
    ca = make_ca()
    ca_file = ca.write(tmp_path / "certs" / "ca.crt")
    cert, key = tmp_path / "certs" / "http.crt", tmp_path / "certs" / "http.key"
    server_cert(ca, cert, key)
    port = free_port()
    data = site_config(tmp_path / "data", broker.port)
    data["http"] = {"host": "127.0.0.1", "port": port, "tls": {"cert": str(cert), "key": str(key)}}
    config = parse_config(data)
    server = HttpServer(
        build_app(config), config.http.host, config.http.port, lifespan="on", tls=config.http.tls
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), what="https server started")
    if task.done():
        task.result()
        raise AssertionError("https server stopped at once")
    try:
        yield f"https://localhost:{port}", ca_file
    finally:
        server.should_exit = True
        await task


async def test_the_server_serves_https_with_hsts(tmp_path: Path, broker: Mosquitto) -> None:
    async with https_gateway(tmp_path, broker) as (base, ca_file):
        trust = ssl.create_default_context(cafile=str(ca_file))
        async with httpx.AsyncClient(base_url=base, verify=trust) as client:
            for path in ("/api/health", "/", "/api/alarms"):
                r = await client.get(path)
                assert r.status_code == 200, path
                assert r.headers["strict-transport-security"] == HSTS, path
            missing = await client.get("/api/nowhere")
            assert missing.status_code == 404
            assert missing.headers["strict-transport-security"] == HSTS, "errors carry it too"
        # A client that does not trust the CA is refused: the certificate is checked.
        async with httpx.AsyncClient(base_url=base) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get("/api/health")


async def test_the_console_over_https_shows_the_live_connection_up(
    tmp_path: Path, broker: Mosquitto, chromium: Chromium
) -> None:
    async with (
        https_gateway(tmp_path, broker) as (base, _),
        chromium(ignore_https_errors=True) as (page, errors),
    ):
        response = await page.goto(f"{base}/")
        assert response is not None and response.ok
        assert (await response.all_headers())["strict-transport-security"] == HSTS
        await wait_state(page, "connected over wss", connected=True)
        await expect(page.locator("#conn-text")).to_have_text("已连接 · 实时")
        await expect(page.locator("#site-names")).to_have_text("城区幸福养老服务中心")
        assert not errors


async def test_plain_http_carries_no_hsts() -> None:
    """RFC 6797: not over plain HTTP (a browser ignores it there anyway)."""
    transport = httpx.ASGITransport(app=create_api(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        r = await client.get("/")
        assert r.status_code == 200
        assert "strict-transport-security" not in r.headers


def test_plain_http_off_loopback_is_said_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.http.server")
    app = create_api(None)
    HttpServer(app, "127.0.0.1", 8080)
    assert not caplog.records, "loopback: nothing to say"
    HttpServer(app, "0.0.0.0", 8080)
    (line,) = caplog.records
    assert "0.0.0.0:8080 without http.tls" in line.getMessage()
    caplog.clear()
    ca = make_ca()
    server_cert(ca, tmp_path / "c.crt", tmp_path / "c.key")
    HttpServer(app, "0.0.0.0", 8080, tls=HttpTls(cert=tmp_path / "c.crt", key=tmp_path / "c.key"))
    assert not caplog.records, "with TLS: nothing to say"


async def test_the_session_cookie_is_secure_over_https(tmp_path: Path, broker: Mosquitto) -> None:
    people = People(tmp_path / "data" / "people.sqlite3")
    people.open()
    wang = Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"}))
    people.add(wang, hash_password("correct horse battery"), 0.0)
    people.close()
    async with https_gateway(tmp_path, broker) as (base, ca_file):
        trust = ssl.create_default_context(cafile=str(ca_file))
        async with httpx.AsyncClient(base_url=base, verify=trust) as client:
            r = await client.post(
                "/api/login", json={"login": "wang", "password": "correct horse battery"}
            )
            assert r.status_code == 200
            cookie = r.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
