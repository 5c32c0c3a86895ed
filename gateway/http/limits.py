"""The request-body limit: a body over `MAX_BODY_BYTES` answers 413 before it is read.

An ASGI middleware, outside FastAPI (which reads a whole body before any dependency runs):
a declared `Content-Length` over the limit is refused at once, and a chunked body is counted
as it arrives and refused once past the limit, so at most the limit (plus one chunk) is ever
held. An unauthenticated caller's oversized request answers 401 as any of theirs would: who
is refused is decided before what.
"""

from __future__ import annotations

import contextlib
import json

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.auth import refusal

MAX_BODY_BYTES = 64 * 1024


class _TooLarge(HTTPException):
    """Raised from `receive` past the limit; FastAPI lets an HTTPException through."""

    def __init__(self) -> None:
        super().__init__(413)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        over = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if not over:  # the app's answer to the exception: ours replaces it
                await send(message)

        with contextlib.suppress(_TooLarge):  # when no exception handler answered it
            await self.app(scope, counting_receive, guarded_send)
        if over:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = await refusal(HTTPConnection(scope))
        if error is None:
            status, body = (
                413,
                {
                    "error": "request body too large",
                    "detail": f"at most {self.max_bytes} bytes",
                },
            )
        else:
            status, body = error.status, {"error": error.error, "detail": error.detail}
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        # No `connection: close`: closing with the body still arriving resets the connection,
        # and the client loses this answer. uvicorn discards the rest of the body as it comes
        # (nothing is kept) and the client reads the answer once it has sent it.
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
