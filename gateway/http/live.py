"""`WS /api/live`: a snapshot of the caller's open alarms and devices, then every change the
live hub queues for them. A refused caller closes with 4401, also later: the caller is asked
for again every `RECHECK_S` (a session ended by logout, a new password or its expiry, a revoked
token, a disabled person stop receiving alarms); a client too slow to keep up closes with 4408
(it reconnects for a fresh snapshot)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gateway.app.supervisor import Gateway
from gateway.http.auth import GatewayDep, LiveCallerDep, Principal, auth_of
from gateway.http.errors import ApiError
from gateway.live.hub import Subscriber, SubscriberTooSlow

router = APIRouter()
RECHECK_S = 30.0


@router.websocket("/api/live")
async def live(ws: WebSocket, gw: GatewayDep, who: LiveCallerDep) -> None:
    if who is None:
        await ws.close(code=4401)
        return
    await ws.accept()
    sub = gw.live.subscribe(who.sites)
    # Two halves: one sends what the hub queues, one listens so that a browser that
    # went away is noticed at once (and its subscription dropped), not at the next alarm.
    sender = asyncio.create_task(_send_live(ws, sub, _snapshot(gw, who)))
    listener = asyncio.create_task(_drain_client(ws))
    checker = asyncio.create_task(_still_allowed(ws, who))
    tasks = {sender, listener, checker}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gw.live.unsubscribe(sub)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _still_allowed(ws: WebSocket, who: Principal) -> None:
    """Returns (closing the feed with 4401) once the caller is refused, or is someone else."""
    auth = auth_of(ws)
    while True:
        await asyncio.sleep(RECHECK_S)
        try:
            now = await auth.principal(ws, query_token=True)
        except ApiError:
            now = None
        if now is None or (now.login, now.role, now.sites) != (who.login, who.role, who.sites):
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await ws.close(code=4401, reason="signed out")
            return


async def _send_live(ws: WebSocket, sub: Subscriber, snapshot: dict[str, Any]) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.send_json(snapshot)
        while True:
            try:
                batch = await sub.next()
            except SubscriberTooSlow:
                await ws.close(code=4408, reason="too slow: reconnect for a fresh snapshot")
                return
            for message in batch:
                await ws.send_text(orjson.dumps(message).decode())
                await asyncio.sleep(0)  # one message per turn: the loop is shared


async def _drain_client(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return


def _snapshot(gw: Gateway, who: Principal) -> dict[str, Any]:
    alarms = [
        gw.alarm_view(a, timeline=False) for a in gw.book.open_alarms() if who.may_read(a.site)
    ]
    devices = [
        v
        for ref in gw.inventory.devices
        if who.may_read(ref.site) and (v := gw.device_view(ref)) is not None
    ]
    return {"kind": "snapshot", "alarms": alarms, "devices": devices}
