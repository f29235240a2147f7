"""Limits that hold before any work is done: request body size and open event streams."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 256 * 1024
    """A generate request is a few KiB even with every field at its maximum."""
    events_max_s: float = 30 * 60
    """An event stream ends after this long; clients reconnect (the web app does)."""
    events_per_user: int = 8
    """Open event streams per user; more answer 429."""
    events_poll_s: float = 1.0
    events_keepalive_s: float = 15.0


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: at most {limit} bytes")


class BodyLimit:
    """Refuses bodies over `limit` bytes with 413, before and while reading them.

    A declared `Content-Length` over the limit is refused before the app runs; otherwise the bytes
    of `http.request` messages are counted as the app receives them (chunked bodies), and the
    count going over raises `BodyTooLarge` inside the app, whose exception handler answers 413
    (or this middleware does, when the exception escapes before a response started). Nothing
    beyond the limit is ever buffered.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not declared.isdigit():
            await _error(400, "invalid Content-Length")(scope, receive, send)
            return
        if declared is not None and int(declared) > self.limit:
            await _error(413, BodyTooLarge(self.limit).detail)(scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as e:
            if started:
                raise
            await _error(413, e.detail)(scope, receive, send)


def _error(status: int, detail: str) -> JSONResponse:
    """An error answered without reading the body: the connection closes after it."""
    return JSONResponse({"detail": detail}, status, {"Connection": "close"})


class StreamSlots:
    """Open event streams per user, in this process; a user at the cap gets no new slot."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self.open: Counter[str] = Counter()

    def acquire(self, user: str) -> bool:
        if self.open[user] >= self.per_user:
            return False
        self.open[user] += 1
        return True

    def release(self, user: str) -> None:
        self.open[user] -= 1
        if self.open[user] <= 0:
            del self.open[user]
