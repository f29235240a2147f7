"""A slow OpenAI-compatible model provider on loopback, reached through litellm as `openai/slow`:
it holds each `/chat/completions` request before answering and notes when a client hangs up while
it waits (a cancelled call). The answer is a doc-queries JSON list (`doc_queries_for_error`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator

import pytest

from tests.helpers import free_port

MODEL = "openai/slow"

ANSWER = '```json\n["Circle radius"]\n```'


class SlowProvider:
    """An OpenAI-compatible `/chat/completions` on loopback that holds each request `delay_s`
    before answering, and notes when a client closes its connection while it waits."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.port = free_port()
        self.received = asyncio.Event()
        self.closed = asyncio.Event()
        self.closed_at: float | None = None
        self.answered = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
            assert length is not None and b"/chat/completions" in head.split(b"\r\n", 1)[0]
            json.loads(await reader.readexactly(int(length.group(1))))
            self.received.set()
            try:
                await asyncio.wait_for(reader.read(1), self.delay_s)  # b"": the client hung up
                self.closed_at = time.monotonic()
                self.closed.set()
                return
            except TimeoutError:
                pass
            body = json.dumps(
                {
                    "id": "chatcmpl-slow",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "slow",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": ANSWER},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
            ).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            self.answered += 1
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def slow_provider(
    delay_s: float, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SlowProvider]:
    provider = SlowProvider(delay_s)
    server = await asyncio.start_server(provider.serve, "127.0.0.1", provider.port)
    """Serve on a free loopback port; litellm's `openai/...` models go there (for this test)."""
    monkeypatch.setenv("OPENAI_API_BASE", f"http://127.0.0.1:{provider.port}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-test")
    async with server:
        yield provider
