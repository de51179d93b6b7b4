"""Error paths through real processes: unknown host, origin down, malformed and smuggling-style
requests (which must never reach the origin)."""

from __future__ import annotations

import json
import socket

import pytest

from common.localrun import LOOPBACK
from tests.e2e.conftest import DOWN, RECORD, RecordingOrigin
from tests.e2e.harness import Topology, get


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or times out)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while data := sock.recv(65536):
                chunks.append(data)
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_unknown_host_is_404(two_nodes: Topology) -> None:
    for node in two_nodes.nodes:
        status, body = get(
            node.base + "/", headers={"Host": "nobody.test", "Accept": "application/json"}
        )
        assert status == 404
        assert json.loads(body)["error"]


def test_origin_down_is_502(two_nodes: Topology) -> None:
    two_nodes.wait_agents("down", 1)
    status, body = get(
        two_nodes.nodes[0].base + "/", headers={"Host": DOWN, "Accept": "application/json"}
    )
    assert status == 502
    assert json.loads(body)["error"]


def test_record_service_reaches_the_origin(
    two_nodes: Topology, recording_origin: RecordingOrigin
) -> None:
    # The control case for the smuggling tests below: a well-formed request does arrive.
    two_nodes.wait_agents("record", 1)
    before = len(recording_origin.received)
    status, body = get(two_nodes.nodes[0].base + "/hello", headers={"Host": RECORD})
    assert (status, body) == (200, b"ok")
    assert b"GET /hello HTTP/1.1" in recording_origin.received[before:]


CRLF = "\r\n"


def raw(*lines: str, body: str = "") -> bytes:
    """A request head from lines joined by CRLF (a bare LF inside a line stays bare)."""
    return (CRLF.join(lines) + CRLF + CRLF + body).encode("latin-1")


POST_TE = ("POST / HTTP/1.1", "Host: H", "Transfer-Encoding: chunked")
SMUGGLING = {
    "cl-te": raw(
        "POST / HTTP/1.1",
        "Host: H",
        "Content-Length: 6",
        "Transfer-Encoding: chunked",
        body="0\r\n\r\nG",
    ),
    "te-cl": raw(*POST_TE, "Content-Length: 3", body="8\r\nSMUGGLED\r\n0\r\n\r\n"),
    "duplicate-cl": raw(
        "POST / HTTP/1.1", "Host: H", "Content-Length: 3", "Content-Length: 4", body="abcd"
    ),
    "te-chunkedx": raw(
        "POST / HTTP/1.1", "Host: H", "Transfer-Encoding: chunkedx", body="0\r\n\r\n"
    ),
    "te-not-last": raw(
        "POST / HTTP/1.1", "Host: H", "Transfer-Encoding: chunked, identity", body="0\r\n\r\n"
    ),
    "obs-fold": raw("GET / HTTP/1.1", "Host: H", "X-A: a", " b"),
    "bare-lf": b"GET / HTTP/1.1\nHost: H\n\n",
    "space-before-colon": raw("GET / HTTP/1.1", "Host: H", "Content-Length : 0"),
    "cl-not-digits": raw("POST / HTTP/1.1", "Host: H", "Content-Length: +5", body="hello"),
    "bad-chunk-size": raw(*POST_TE, body="zz\r\nhi\r\n0\r\n\r\n"),
    "two-hosts": raw("GET / HTTP/1.1", "Host: H", "Host: other.test"),
    "no-host": raw("GET / HTTP/1.1"),
    "http10-te": raw("POST / HTTP/1.0", "Host: H", "Transfer-Encoding: chunked", body="0\r\n\r\n"),
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
    "nul-in-value": raw("GET / HTTP/1.1", "Host: H", "X-A: a\x00b"),
}


@pytest.mark.parametrize("case", sorted(SMUGGLING))
def test_malformed_request_gets_4xx_and_never_reaches_origin(
    two_nodes: Topology, recording_origin: RecordingOrigin, case: str
) -> None:
    payload = SMUGGLING[case].replace(b"Host: H", b"Host: " + RECORD.encode())
    before = len(recording_origin.received)
    answer = raw_exchange(two_nodes.nodes[0].http, payload)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), (case, answer[:200])
    # Exactly one response, then the connection is closed: nothing was smuggled behind it.
    assert answer.count(b"HTTP/1.1 ") == 1, (case, answer)
    assert bytes(recording_origin.received[before:]) == b"", case
