"""Security headers on every response: a Content-Security-Policy, `X-Content-Type-Options:
nosniff` and `frame-ancestors 'none'` (no other site may frame t2m's pages to trick clicks).

Pages run only this site's scripts and their own inline scripts, pinned by hash (computed from
the page files at import, so editing a page cannot silently loosen it); they load images and
video from anywhere (presigned storage URLs live on the storage's own host) but connect only
here. Everything else — JSON, media, files — gets a policy that allows nothing and sandboxes it,
so a file that a browser would render (an SVG, an HTML file named like a video) runs nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGES = Path(__file__).parent / "web"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(pages: Path = PAGES) -> list[str]:
    """CSP sources (`'sha256-…'`) of every inline script in the pages."""
    hashes = set()
    for page in sorted(pages.glob("*.html")):
        for script in _INLINE_SCRIPT.findall(page.read_text()):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return sorted(hashes)


PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' " + " ".join(inline_script_hashes()),
        "style-src 'self' 'unsafe-inline'",
        "img-src * data: blob:",
        "media-src * blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)
"""Swagger UI and ReDoc (FastAPI's pages, showing only t2m's own API description) start from
an inline script of FastAPI's making."""


class SecurityHeaders:
    """Adds the headers to every HTTP response (a route's own CSP, if any, is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                page = headers.get("content-type", "").startswith("text/html")
                policy = PAGE_POLICY if page else OTHER_POLICY
                if page and scope["path"].split("/")[1] in ("docs", "redoc"):
                    policy = DOCS_POLICY
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, with_headers)
