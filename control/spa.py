"""Serving the admin web app (control/web/dist, built by `./dev web`) from the control plane.

The build is read into memory once, when the app is made: a request can only ever get one of
the files that were in the build directory then, by exact name, so no path (`..`, encoded
slashes, symlinks) can reach anything else. Hashed assets (`/assets/…`) are cached for a year;
`index.html` is revalidated on every load, so a new release is picked up at once.

Routing, lowest priority first: API routes (anything under /api, and any route the app
declares) always win; then a file of the build; then, for GET/HEAD of a path without a file
extension, index.html (deep links such as /orgs/…/services/… are the app's own routes).
Everything else falls through to the API's problem+json 404.

Every response carries a strict Content-Security-Policy: scripts, styles and requests only
from this origin, no inline code, no eval, no framing (docs/web.md).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

BUILD_DIR = Path(__file__).resolve().parent / "web" / "dist"
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
MIN_GZIP = 512


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: bytes
    etag: bytes
    cache_control: bytes


def _asset(name: str, body: bytes) -> Asset:
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind == "application/javascript":
        kind += "; charset=utf-8"
    packed = gzip.compress(body, 9, mtime=0) if kind.startswith(COMPRESSIBLE) else None
    return Asset(
        body=body,
        gzipped=packed if packed is not None and len(body) >= MIN_GZIP else None,
        content_type=kind.encode(),
        etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"'.encode(),
        cache_control=IMMUTABLE if name.startswith("assets/") else REVALIDATE,
    )


def load_build(directory: Path) -> dict[str, Asset]:
    """Every regular file under `directory` (not following symlinks out of it), by URL path."""
    root = directory.resolve()
    files: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root):
            continue
        name = path.relative_to(root).as_posix()
        files[name] = _asset(name, path.read_bytes())
    return files


def accepts_gzip(header: bytes) -> bool:
    """Whether an Accept-Encoding value allows gzip (`gzip;q=0` refuses it)."""
    weights: dict[str, float] = {}
    for item in header.decode("latin-1").lower().split(","):
        name, _, params = item.partition(";")
        weights[name.strip()] = _quality(params.strip())
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _quality(params: str) -> float:
    if not params.startswith("q="):
        return 1.0
    try:
        return float(params[2:])
    except ValueError:
        return 0.0


class SinglePageApp:
    """ASGI middleware in front of the FastAPI app that serves the built web app."""

    def __init__(self, app: ASGIApp, *, files: dict[str, Asset], api: FastAPI, hsts: bool) -> None:
        self.app = app
        self.files = files
        self.index = files["index.html"]
        self.api = api
        self.extra = ((b"strict-transport-security", b"max-age=31536000"),) if hsts else ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asset = self._lookup(scope) if scope["type"] == "http" else None
        if asset is None:
            await self.app(scope, receive, send)
            return
        await self._send(scope, send, asset)

    def _lookup(self, scope: Scope) -> Asset | None:
        path: str = scope["path"]
        if scope["method"] not in ("GET", "HEAD") or path == "/api" or path.startswith("/api/"):
            return None
        if self._routed(scope):
            return None
        name = path.removeprefix("/")
        if any(part in ("..", ".") for part in name.split("/")) or "\\" in name or "\0" in name:
            return None  # never a fallback for a traversal attempt: the API's 404
        if name in self.files:
            return self.files[name]
        last = name.rsplit("/", 1)[-1]
        if "." in last or name.startswith("assets/"):
            return None  # a missing file is a 404, never the app's HTML
        return self.index

    def _routed(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in self.api.router.routes)

    async def _send(self, scope: Scope, send: Send, asset: Asset) -> None:
        headers = dict(scope["headers"])
        not_modified = headers.get(b"if-none-match") == asset.etag
        body = asset.body
        out = [
            (b"content-type", asset.content_type),
            (b"cache-control", asset.cache_control),
            (b"etag", asset.etag),
            (b"vary", b"accept-encoding"),
            *SECURITY_HEADERS,
            *self.extra,
        ]
        if asset.gzipped is not None and accepts_gzip(headers.get(b"accept-encoding", b"")):
            body = asset.gzipped
            out.append((b"content-encoding", b"gzip"))
        status = 304 if not_modified else 200
        if status == 200:
            out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        send_body = status == 200 and scope["method"] == "GET"
        await send({"type": "http.response.body", "body": body if send_body else b""})


def install(app: FastAPI, *, hsts: bool, directory: Path = BUILD_DIR) -> bool:
    """Serve the build in `directory` from `app` (outermost, so its caching headers stand).

    Returns False (and serves nothing) when there is no build: the API works without it.
    """
    if not (directory / "index.html").is_file():
        log.warning("no web app build in %s: the API is served without it", directory)
        return False
    app.add_middleware(SinglePageApp, files=load_build(directory), api=app, hsts=hsts)
    return True
