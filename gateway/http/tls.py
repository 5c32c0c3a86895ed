"""HTTPS: `Strict-Transport-Security` on every response the server sends over TLS.

An ASGI middleware that looks at the connection, not at the configuration: uvicorn marks a
request that came over TLS with the scheme `https`, and only those get the header (RFC 6797
section 7.2: a server must not send it over plain HTTP, where a browser ignores it anyway).
So the one app serves both ways, and the header cannot be on while TLS is off. Once a browser
has seen it, it refuses plain HTTP to this host for a year: a duty officer's bookmark or typed
address cannot be downgraded by someone on the institution's network.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=31536000")


class StrictTransportSecurity:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == HSTS[0] for name, _ in headers):
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_hsts)
