"""`WS /api/live`: a snapshot of the caller's open alarms and devices, then every change the
live hub queues for them. A refused token closes with 4401, a client too slow to keep up
with 4408 (it reconnects for a fresh snapshot)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gateway.app.supervisor import Gateway
from gateway.http.auth import GatewayDep, LiveCallerDep, Principal
from gateway.live.hub import Subscriber, SubscriberTooSlow

router = APIRouter()


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
    try:
        await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gw.live.unsubscribe(sub)
        for task in (sender, listener):
            task.cancel()
        await asyncio.gather(sender, listener, return_exceptions=True)


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
