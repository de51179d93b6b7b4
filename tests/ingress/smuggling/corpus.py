"""A raw-bytes corpus of request-smuggling and malformed-framing vectors (threats.md T1).

Every case is the exact bytes a client sends on a fresh connection. The front end must answer
each with exactly one error response (`status`, 400 for every framing ambiguity) and close the
connection, and nothing may reach an agent. Families, after PortSwigger's research,
defparam/smuggler and AWS http_desync_guardian's test tables:

- CL.TE / TE.CL: both Content-Length and Transfer-Encoding, in either order;
- TE.TE: Transfer-Encoding obfuscations one parser honours and another ignores;
- CL: duplicate, conflicting, signed, hex, listed, spaced, empty or overflowing lengths;
- line framing: obs-fold, bare LF, bare CR, whitespace before the colon, headers without colon;
- characters: NUL and other controls in names, values and targets;
- chunked bodies: invalid sizes, overflow, bad extensions, missing CRLF, bare LF, long data;
- versions and methods: HTTP/1.0 with TE, HTTP/0.9, HTTP/2.0 text, CONNECT, unknown methods;
- Host: missing, repeated, malformed;
- the rest: upgrade with a body, unsupported Expect, underscore aliases of framing fields.

Each case's smuggled part, where there is one, is a `GPOST` request: if any part of a case
were ever forwarded, the fake agent would record it.
"""

from __future__ import annotations

from dataclasses import dataclass

CRLF = "\r\n"
SMUGGLED = "GPOST /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


def raw(*lines: str, body: str = "") -> bytes:
    """A head from `lines` joined by CRLF, its blank line, then `body` (latin-1 bytes)."""
    return (CRLF.join(lines) + CRLF + CRLF + body).encode("latin-1")


@dataclass(frozen=True)
class Case:
    payload: bytes
    status: int = 400
    family: str = ""


POST = ("POST / HTTP/1.1", "Host: app.test")
CHUNKED = (*POST, "Transfer-Encoding: chunked")


def _te(value: str, family: str = "te.te") -> Case:
    return Case(
        raw(*POST, f"Transfer-Encoding: {value}", body="0\r\n\r\n" + SMUGGLED), family=family
    )


def _cl(value: str) -> Case:
    return Case(raw(*POST, f"Content-Length: {value}", body="hello" + SMUGGLED), family="cl")


def _chunks(body: str) -> Case:
    return Case(raw(*CHUNKED, body=body + SMUGGLED), family="chunked")


CASES: dict[str, Case] = {
    # CL.TE and TE.CL
    "cl-te": Case(
        raw(*POST, "Content-Length: 6", "Transfer-Encoding: chunked", body="0\r\n\r\nG"),
        family="cl.te",
    ),
    "te-cl": Case(
        raw(*CHUNKED, "Content-Length: 3", body="8\r\nSMUGGLED\r\n0\r\n\r\n"), family="te.cl"
    ),
    "cl-te-identity": Case(
        raw(*POST, "Content-Length: 5", "Transfer-Encoding: identity", body="hello"),
        family="cl.te",
    ),
    "cl-te-smuggled-request": Case(
        raw(*POST, "Content-Length: 4", "Transfer-Encoding: chunked", body="0\r\n\r\n" + SMUGGLED),
        family="cl.te",
    ),
    # TE.TE obfuscations
    "te-chunkedx": _te("chunkedx"),
    "te-xchunked": _te("xchunked"),
    "te-chunked-identity": _te("chunked, identity"),
    "te-identity-chunked": _te("identity, chunked"),
    "te-gzip-chunked": _te("gzip, chunked"),
    "te-chunked-chunked": _te("chunked, chunked"),
    "te-identity": _te("identity"),
    "te-empty": _te(""),
    "te-quoted": _te('"chunked"'),
    "te-vertical-tab": _te("\x0bchunked"),
    "te-nul": _te("chunked\x00"),
    "te-twice": Case(
        raw(*POST, "Transfer-Encoding: gzip", "Transfer-Encoding: chunked", body="0\r\n\r\n"),
        family="te.te",
    ),
    "te-twice-both-chunked": Case(
        raw(*POST, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked", body="0\r\n\r\n"),
        family="te.te",
    ),
    "te-space-before-colon": Case(
        raw(*POST, "Transfer-Encoding : chunked", body="0\r\n\r\n"), family="te.te"
    ),
    "te-underscore": Case(
        raw(*POST, "Transfer_Encoding: chunked", body="0\r\n\r\n"), family="te.te"
    ),
    "te-obs-fold": Case(
        raw(*POST, "Transfer-Encoding:", " chunked", body="0\r\n\r\n"), family="te.te"
    ),
    "te-leading-space-line": Case(
        raw(*POST, " Transfer-Encoding: chunked", body="0\r\n\r\n"), family="te.te"
    ),
    "te-http10": Case(
        raw("POST / HTTP/1.0", "Host: app.test", "Transfer-Encoding: chunked", body="0\r\n\r\n"),
        family="te.te",
    ),
    # Content-Length
    "cl-duplicate-different": Case(
        raw(*POST, "Content-Length: 3", "Content-Length: 4", body="abcd"), family="cl"
    ),
    "cl-duplicate-same": Case(
        raw(*POST, "Content-Length: 3", "Content-Length: 3", body="abc"), family="cl"
    ),
    "cl-list": _cl("3, 3"),
    "cl-plus": _cl("+5"),
    "cl-minus": _cl("-5"),
    "cl-hex": _cl("0x5"),
    "cl-inner-space": _cl("1 2"),
    "cl-empty": _cl(""),
    "cl-overflow": _cl("99999999999999999999999"),
    "cl-underscore": Case(raw(*POST, "Content_Length: 5", body="hello"), family="cl"),
    "cl-space-before-colon": Case(raw(*POST, "Content-Length : 5", body="hello"), family="cl"),
    # line framing
    "obs-fold": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A: a", " b"), family="lines"),
    "obs-fold-tab": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A: a", "\tb"), family="lines"),
    "bare-lf-everywhere": Case(b"GET / HTTP/1.1\nHost: app.test\n\n", family="lines"),
    "bare-lf-request-line": Case(b"GET / HTTP/1.1\nHost: app.test\r\n\r\n", family="lines"),
    "bare-lf-header": Case(b"GET / HTTP/1.1\r\nHost: app.test\nX: y\r\n\r\n", family="lines"),
    "bare-lf-end-of-head": Case(b"GET / HTTP/1.1\r\nHost: app.test\r\n\n", family="lines"),
    "bare-cr-header": Case(b"GET / HTTP/1.1\r\nHost: app.test\rX: y\r\n\r\n", family="lines"),
    "space-before-colon": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A : b"), family="lines"),
    "tab-before-colon": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A\t: b"), family="lines"),
    "header-without-colon": Case(raw("GET / HTTP/1.1", "Host: app.test", "Foo"), family="lines"),
    "empty-header-name": Case(raw("GET / HTTP/1.1", "Host: app.test", ": b"), family="lines"),
    "space-in-header-name": Case(raw("GET / HTTP/1.1", "Host: app.test", "X A: b"), family="lines"),
    # characters
    "nul-in-value": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A: a\x00b"), family="chars"),
    "ctl-in-value": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A: a\x01b"), family="chars"),
    "del-in-value": Case(raw("GET / HTTP/1.1", "Host: app.test", "X-A: a\x7fb"), family="chars"),
    "ctl-in-name": Case(raw("GET / HTTP/1.1", "Host: app.test", "X\x01A: b"), family="chars"),
    "ctl-in-target": Case(raw("GET /a\x01b HTTP/1.1", "Host: app.test"), family="chars"),
    "high-byte-in-target": Case(raw("GET /a\xffb HTTP/1.1", "Host: app.test"), family="chars"),
    "tab-in-target": Case(raw("GET /a\tb HTTP/1.1", "Host: app.test"), family="chars"),
    # chunked bodies
    "chunk-size-not-hex": _chunks("zz\r\nhi\r\n0\r\n\r\n"),
    "chunk-size-0x": _chunks("0x2\r\nhi\r\n0\r\n\r\n"),
    "chunk-size-negative": _chunks("-1\r\nhi\r\n0\r\n\r\n"),
    "chunk-size-overflow": _chunks("FFFFFFFFFFFFFFFFF1\r\nhi\r\n0\r\n\r\n"),
    "chunk-size-space": _chunks("2 \r\nhi\r\n0\r\n\r\n"),
    "chunk-size-space-before-ext": _chunks("2 ;a=b\r\nhi\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": _chunks("2\nhi\r\n0\r\n\r\n"),
    "chunk-data-bare-lf": _chunks("2\r\nhi\n0\r\n\r\n"),
    "chunk-data-too-long": _chunks("2\r\nhiX\r\n0\r\n\r\n"),
    "chunk-data-no-crlf": _chunks("2\r\nhiXX0\r\n\r\n"),
    "chunk-last-bare-lf": _chunks("2\r\nhi\r\n0\n\n"),
    "chunk-ext-bare-lf": _chunks("2;a\nhi\r\n0\r\n\r\n"),
    "chunk-ext-no-name": _chunks("2;\r\nhi\r\n0\r\n\r\n"),
    "chunk-ext-ctl": _chunks("2;a=\x01\r\nhi\r\n0\r\n\r\n"),
    "chunk-ext-open-quote": _chunks('2;a="b\r\nhi\r\n0\r\n\r\n'),
    "chunk-ext-quoted-lf": _chunks('2;a="x\ny"\r\nhi\r\n0\r\n\r\n'),
    "trailer-obs-fold": _chunks("2\r\nhi\r\n0\r\nX: a\r\n b\r\n\r\n"),
    "trailer-bare-lf": _chunks("2\r\nhi\r\n0\r\nX: a\n\r\n"),
    # versions and methods
    "http09": Case(b"GET /\r\n\r\n", 505, "version"),
    "http20-text": Case(raw("GET / HTTP/2.0", "Host: app.test"), 505, "version"),
    "http12": Case(raw("GET / HTTP/1.2", "Host: app.test"), family="version"),
    "lowercase-version": Case(raw("GET / http/1.1", "Host: app.test"), family="version"),
    "h2-preface": Case(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", family="version"),
    "connect": Case(raw("CONNECT app.test:443 HTTP/1.1", "Host: app.test:443"), 405, "method"),
    "unknown-method": Case(raw("FOO / HTTP/1.1", "Host: app.test"), family="method"),
    "lowercase-method": Case(raw("get / HTTP/1.1", "Host: app.test"), family="method"),
    "tab-after-method": Case(b"GET\t/ HTTP/1.1\r\nHost: app.test\r\n\r\n", family="method"),
    "tls-hello": Case(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, family="method"
    ),
    # Host
    "no-host": Case(raw("GET / HTTP/1.1"), family="host"),
    "two-hosts": Case(raw("GET / HTTP/1.1", "Host: app.test", "Host: other.test"), family="host"),
    "two-hosts-same": Case(
        raw("GET / HTTP/1.1", "Host: app.test", "Host: app.test"), family="host"
    ),
    "host-with-space": Case(raw("GET / HTTP/1.1", "Host: app .test"), family="host"),
    "host-with-slash": Case(raw("GET / HTTP/1.1", "Host: app.test/x"), family="host"),
    "host-with-userinfo": Case(raw("GET / HTTP/1.1", "Host: user@app.test"), family="host"),
    "host-bad-port": Case(raw("GET / HTTP/1.1", "Host: app.test:99999"), family="host"),
    "host-open-bracket": Case(raw("GET / HTTP/1.1", "Host: [::1"), family="host"),
    "absolute-target-userinfo": Case(
        raw("GET http://user@app.test/ HTTP/1.1", "Host: app.test"), family="host"
    ),
    "absolute-target-ftp": Case(
        raw("GET ftp://app.test/ HTTP/1.1", "Host: app.test"), family="host"
    ),
    "asterisk-not-options": Case(raw("GET * HTTP/1.1", "Host: app.test"), family="host"),
    # the rest
    "upgrade-with-body": Case(
        raw(*POST, "Connection: upgrade", "Upgrade: websocket", "Content-Length: 5", body="hello"),
        family="upgrade",
    ),
    "upgrade-with-chunked-body": Case(
        raw(*CHUNKED, "Connection: upgrade", "Upgrade: websocket", body="0\r\n\r\n"),
        family="upgrade",
    ),
    "expect-unknown": Case(
        raw(*POST, "Content-Length: 5", "Expect: 200-ok", body="hello"), 417, "expect"
    ),
    "x-forwarded-for-underscore": Case(
        raw("GET / HTTP/1.1", "Host: app.test", "X_Forwarded_For: 6.6.6.6"), family="forwarding"
    ),
}

# Requests that look unusual but are valid: each must reach the agent, framed as noted.
VALID: dict[str, tuple[bytes, bytes]] = {
    # name: (payload, the body the agent must receive)
    "te-uppercase-chunked": (
        raw(*POST, "Transfer-Encoding: CHUNKED", body="2\r\nhi\r\n0\r\n\r\n"),
        b"hi",
    ),
    "te-tab-before-value": (
        raw(*POST, "Transfer-Encoding:\tchunked", body="2\r\nhi\r\n0\r\n\r\n"),
        b"hi",
    ),
    "te-trailing-space": (
        raw(*POST, "Transfer-Encoding: chunked ", body="2\r\nhi\r\n0\r\n\r\n"),
        b"hi",
    ),
    "chunk-extension": (raw(*CHUNKED, body="2;name=value\r\nhi\r\n0\r\n\r\n"), b"hi"),
    "chunk-extension-quoted": (raw(*CHUNKED, body='2;n="a b"\r\nhi\r\n0\r\n\r\n'), b"hi"),
    "chunk-uppercase-hex": (raw(*CHUNKED, body="A\r\n0123456789\r\n0\r\n\r\n"), b"0123456789"),
    "trailers-dropped": (raw(*CHUNKED, body="2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n"), b"hi"),
    "cl-leading-zeros": (raw(*POST, "Content-Length: 002", body="hi"), b"hi"),
    "leading-empty-line": (b"\r\n" + raw(*POST, "Content-Length: 2", body="hi"), b"hi"),
    "obs-text-in-value": (raw(*POST, "X-A: caf\xe9", "Content-Length: 2", body="hi"), b"hi"),
    "absolute-form": (
        raw(
            "POST http://app.test/abs HTTP/1.1", "Host: other.test", "Content-Length: 2", body="hi"
        ),
        b"hi",
    ),
}
