"""control/spa.py: the web app's files, the deep-link fallback, caching, the CSP, and that no
path reaches a file outside the build (checked through a real socket, so `..` arrives raw)."""

from __future__ import annotations

import gzip
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from control import spa
from control.main import create_app
from control.settings import Settings
from tests.control.server import serve

ROOT = Path(__file__).resolve().parents[2]
INDEX = b'<!doctype html><script type="module" src="/assets/app-1234abcd.js"></script>'
SCRIPT = b"console.log('kokoa');\n" * 100  # big enough to be compressed


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "outside.txt").write_text("secret outside the build")
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "app-1234abcd.js").write_bytes(SCRIPT)
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "assets" / "link.txt").symlink_to(tmp_path / "outside.txt")
    return root


def make_app(tmp_path: Path, build: Path | None, mode: str = "development") -> FastAPI:
    settings = Settings(
        mode=mode,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        data_dir=tmp_path,
        public_url="https://kokoa.test",
    )
    app = create_app(settings)
    if build is not None:
        assert spa.install(app, hsts=mode == "production", directory=build)
    return app


@pytest.fixture
async def client(tmp_path: Path, build: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(tmp_path, build)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://kokoa.test"
    ) as client:
        yield client


def assert_secure_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_root_and_deep_links_get_index_revalidated(client: httpx.AsyncClient) -> None:
    for path in ("/", "/signin", "/orgs/3f1d/services/9a2b/edit", "/accept-invitation"):
        response = await client.get(path, headers={"accept": "text/html"})
        assert response.status_code == 200, path
        assert response.content == INDEX
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert_secure_headers(response)


async def test_hashed_assets_are_cached_for_a_year(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/app-1234abcd.js", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.content == SCRIPT
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in response.headers
    assert_secure_headers(response)


async def test_gzip_when_accepted_and_only_then(client: httpx.AsyncClient) -> None:
    raw = await client.get("/assets/app-1234abcd.js", headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.content == SCRIPT  # httpx decoded it
    assert int(raw.headers["content-length"]) < len(SCRIPT)
    refused = await client.get("/assets/app-1234abcd.js", headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    assert spa.accepts_gzip(b"br, gzip;q=0.5") and spa.accepts_gzip(b"*")
    assert not spa.accepts_gzip(b"*, gzip;q=0") and not spa.accepts_gzip(b"br")


async def test_etag_revalidation_and_head(client: httpx.AsyncClient) -> None:
    first = await client.get("/")
    again = await client.get("/", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    head = await client.head("/assets/app-1234abcd.js", headers={"accept-encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(SCRIPT))


async def test_missing_files_are_404_not_the_app(client: httpx.AsyncClient) -> None:
    for path in ("/assets/missing.js", "/assets/deep/missing", "/robots.txt", "/orgs/x/file.json"):
        response = await client.get(path, headers={"accept": "text/html"})
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_api_routes_win_and_unknown_api_paths_stay_json(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/openapi.json")).json()["info"]["title"]
    unknown = await client.get("/api/v1/nope", headers={"accept": "text/html"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    session = await client.get("/api/v1/auth/session")
    assert session.status_code == 401
    assert session.headers["cache-control"] == "no-store"  # the API's own headers are untouched


async def test_only_get_and_head_are_served(client: httpx.AsyncClient) -> None:
    response = await client.post("/", content=b"x")
    assert response.status_code in (404, 405)
    assert response.content != INDEX


async def test_symlinks_are_not_part_of_the_build(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/link.txt")
    assert response.status_code == 404
    assert b"secret" not in response.content


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client-side normalisation of `..`)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


TRAVERSALS = [
    "/../outside.txt",
    "/assets/../../outside.txt",
    "/assets/..%2f..%2foutside.txt",
    "/%2e%2e/%2e%2e/pyproject.toml",
    "/..%5c..%5coutside.txt",
    "/assets/%2e%2e/index.html",
    "/./index.html",
    "/../../../../etc/passwd",
    "//etc/passwd",
    "/assets/app-1234abcd.js%00.html",
]


async def test_path_traversal_never_leaves_the_build(build: Path) -> None:
    app = FastAPI()  # the middleware alone: no database needed to serve files
    assert spa.install(app, hsts=False, directory=build)
    with serve(app) as url:
        for target in TRAVERSALS:
            status, body = raw_get(url, target)
            assert b"secret outside the build" not in body, target
            assert b"root:" not in body and b"[project]" not in body, target
            assert status in (400, 404) or body == INDEX, (target, status, body[:80])
        assert raw_get(url, "/assets/app-1234abcd.js")[0] == 200  # the socket path works


async def test_no_build_means_api_only(tmp_path: Path) -> None:
    app = make_app(tmp_path, None)
    assert not spa.install(app, hsts=False, directory=tmp_path / "nothing")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://kokoa.test"
    ) as client:
        # create_app installed the committed build; an app without one answers 404 at /
        assert (await client.get("/api/openapi.json")).status_code == 200


async def test_hsts_only_in_production(tmp_path: Path, build: Path) -> None:
    app = make_app(tmp_path, build, mode="production")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://kokoa.test"
    ) as client:
        assert "max-age" in (await client.get("/")).headers["strict-transport-security"]


async def test_committed_build_is_served_whole(tmp_path: Path) -> None:
    """The build shipped in control/web/dist: index.html and every file it references."""
    app = make_app(tmp_path, None)  # create_app itself installs the committed build
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://kokoa.test"
    ) as client:
        index = await client.get("/orgs/any/services")
        assert index.status_code == 200
        assert index.text == (ROOT / "control/web/dist/index.html").read_text()
        assert "<script>" not in index.text and "style=" not in index.text  # nothing inline
        refs = re.findall(r'(?:src|href)="(/[^"]+)"', index.text)
        assert any(ref.endswith(".js") for ref in refs)
        for ref in refs:
            response = await client.get(ref, headers={"accept-encoding": "gzip"})
            assert response.status_code == 200, ref
            if ref.startswith("/assets/"):
                assert "immutable" in response.headers["cache-control"]
            if response.headers.get("content-encoding") == "gzip":
                assert gzip.decompress(gzip.compress(response.content))
