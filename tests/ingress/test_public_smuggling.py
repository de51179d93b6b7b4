"""The smuggling corpus against a real listener: every ambiguous or malformed request gets
exactly one error response and a closed connection, and nothing reaches the agent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.ingress.public_fakes import Front, read_response, running_front
from tests.ingress.smuggling.corpus import CASES, SMUGGLED, VALID

NEXT_REQUEST = b"GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n"


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with running_front() as f:
        yield f


async def exchange(front: Front, payload: bytes) -> bytes:
    """Send `payload` on a fresh connection; everything received until the server closes."""
    reader, writer = await front.open()
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(-1)
    finally:
        writer.close()


@pytest.mark.parametrize("name", sorted(CASES))
async def test_refused_with_one_response_and_closed(front: Front, name: str) -> None:
    case = CASES[name]
    seen = len(front.agent.heads)
    # A valid request follows on the same connection: a desync would serve it (or the
    # smuggled GPOST) as a second request.
    answer = await exchange(front, case.payload + NEXT_REQUEST)
    head, body, rest = split_response(answer)
    assert head.startswith(b"HTTP/1.1 %d " % case.status), (name, answer[:300])
    assert head.endswith(b"\r\nconnection: close\r\n\r\n"), name
    assert rest == b"", (name, rest)  # exactly one response, then the server closed
    assert body
    assert front.agent.heads[seen:] == [], name


def split_response(answer: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, whatever follows) of a sized response."""
    end = answer.index(b"\r\n\r\n") + 4
    head = answer[:end]
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, answer[end : end + length], answer[end + length :]


async def test_corpus_covers_every_family() -> None:
    families = {case.family for case in CASES.values()}
    assert families >= {"cl.te", "te.cl", "te.te", "cl", "lines", "chars", "chunked", "host"}
    assert all(SMUGGLED.encode() in c.payload for c in CASES.values() if c.family == "chunked")


async def test_error_page_is_json_for_api_clients(front: Front) -> None:
    answer = await exchange(
        front,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: b.test\r\nAccept: application/json\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    # The head was refused before its fields could be trusted: the page is HTML by default.
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"<h1>400 Bad Request</h1>" in body


@pytest.mark.parametrize("name", sorted(VALID))
async def test_unusual_but_valid_requests_get_through(front: Front, name: str) -> None:
    payload, body = VALID[name]
    target = b"/abs" if name == "absolute-form" else b"/sha256"
    payload = payload.replace(b"POST / ", b"POST " + target + b" ", 1)
    reader, writer = await front.open()
    try:
        writer.write(payload)
        status, _, answer = await read_response(reader)
    finally:
        writer.close()
    assert status == 200, (name, answer)
    head = front.agent.heads[-1]
    if name == "absolute-form":
        assert (head.authority, head.target) == ("app.test", "/abs")
        return
    import hashlib

    assert json.loads(answer) == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    names = [n for n, _ in head.headers]
    assert b"transfer-encoding" not in names and b"x-t" not in names
    assert head.chunked == (b"chunked" in payload.lower())


async def test_smuggled_request_in_a_valid_body_is_only_body(front: Front) -> None:
    # The same bytes that smuggle behind a CL.TE disagreement are harmless body bytes when
    # the framing is unambiguous: the agent gets one request whose body contains them.
    body = "0\r\n\r\n" + SMUGGLED
    payload = (
        f"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )
    seen = len(front.agent.heads)
    reader, writer = await front.open()
    try:
        writer.write(payload.encode() + NEXT_REQUEST)
        first = await read_response(reader)
        second = await read_response(reader)
    finally:
        writer.close()
    assert first[0] == second[0] == 200
    assert json.loads(first[2])["size"] == len(body)
    assert [h.target for h in front.agent.heads[seen:]] == ["/sha256", "/after"]


@pytest.mark.parametrize("name", ["chunk-size-not-hex", "chunk-data-too-long", "trailer-obs-fold"])
async def test_malformed_chunk_after_the_head_resets_the_stream(front: Front, name: str) -> None:
    # The head alone is valid, so it is forwarded at once; when the body breaks its framing
    # later, the stream is reset (the agent never sees the rest) and the client gets 400.
    head, _, body = CASES[name].payload.partition(b"\r\n\r\n")
    target = head.replace(b"POST / ", b"POST /sha256 ", 1) + b"\r\n\r\n"
    reader, writer = await front.open()
    try:
        writer.write(target + b"2\r\nhi\r\n")
        await writer.drain()
        for _ in range(100):
            if front.agent.heads:
                break
            await asyncio.sleep(0.01)
        writer.write(body[len(b"2\r\nhi\r\n") :] if body.startswith(b"2\r\nhi\r\n") else body)
        async with asyncio.timeout(5):
            answer = await reader.read(-1)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert [h.target for h in front.agent.heads] == ["/sha256"]
    for _ in range(100):
        if front.agent.resets_seen:
            break
        await asyncio.sleep(0.01)
    assert front.agent.resets_seen == [0x9]  # CANCELLED
