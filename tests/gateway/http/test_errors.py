"""The API's error bodies for failures that are not the caller's."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from gateway.alarms.store import PoisonWrite
from gateway.http.errors import install_error_handlers


async def test_an_action_the_store_refused_for_good_answers_500_saying_so() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/ack")
    async def ack() -> None:
        raise PoisonWrite("IntegrityError: alarm id belongs to another site, device or type")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        r = await client.post("/ack")
    assert r.status_code == 500
    assert r.json() == {
        "error": "the action could not be stored",
        "detail": "IntegrityError: alarm id belongs to another site, device or type",
    }
