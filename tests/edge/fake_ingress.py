"""A minimal ingress node for the agent's tests: the real QUIC server (`common.quic.serve`,
mutual TLS) and the real codec (`common.wire`), with knobs a test turns.

It plays the node's side of docs/protocol.md §4: reads HELLO, answers HELLO_ACK (accepting
`allowed` services, or all), PONGs every PING unless `answer_pings` is off, re-acks SERVICES,
records every control message, and lets a test open request streams to the agent.

Run as a script (`python -m tests.edge.fake_ingress CERT KEY CA PORT`) it serves until killed,
for tests that SIGSTOP a whole node.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path

from common.pki import TlsFiles
from common.quic import QuicOptions, QuicServer, QuicTunnelConnection, serve
from common.streams import read_head
from common.transport import ConnectionClosed, StreamReset, TunnelStream
from common.wire import (
    ControlMessage,
    ControlReader,
    Drain,
    ErrorCode,
    Hello,
    HelloAck,
    Ping,
    Pong,
    RequestHead,
    ResponseHead,
    Services,
    encode_control,
    encode_request,
)
from common.wire.head import HeadReader

HOST = "127.0.0.1"


@dataclass
class Response:
    head: ResponseHead | None = None
    body: bytes = b""
    reset: int | None = None
    closed: ConnectionClosed | None = None


@dataclass
class Session:
    """One agent connection as the fake node sees it."""

    conn: QuicTunnelConnection
    control: TunnelStream
    hello: Hello
    messages: list[ControlMessage] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: ConnectionClosed | None = None

    async def send(self, message: ControlMessage) -> None:
        await self.control.write(encode_control(message))

    async def wait_for(self, kind: type[ControlMessage], within: float = 10.0) -> ControlMessage:
        """The first message of type `kind` the agent sent (waits for it)."""
        async with asyncio.timeout(within):
            while True:
                for message in self.messages:
                    if isinstance(message, kind):
                        return message
                self.changed.clear()
                await self.changed.wait()

    async def wait_closed(self, within: float = 10.0) -> ConnectionClosed:
        async with asyncio.timeout(within):
            return await self.conn.wait_closed()

    async def request(self, head: RequestHead, body: bytes = b"") -> Response:
        """Open a tunnel stream, send `head` and `body`, read the whole response."""
        stream = await self.conn.open_stream()
        response = Response()
        try:
            await stream.write(encode_request(head) + body)
            await stream.write_eof()
            got, data = await read_head(stream, HeadReader.response())
            assert isinstance(got, ResponseHead)
            response.head = got
            parts = [data]
            while data := await stream.read():
                parts.append(data)
            response.body = b"".join(parts)
        except StreamReset as exc:
            response.reset = exc.code
        except ConnectionClosed as exc:
            response.closed = exc
        return response


def get(target: str, service: str = "web", rid: str = "rid-1") -> RequestHead:
    return RequestHead(service, rid, "192.0.2.1", method="GET", target=target, authority="t")


class FakeIngress:
    """The node's side of the control stream, on a real QUIC server."""

    def __init__(
        self,
        tls: TlsFiles,
        *,
        name: str = "ingress-1",
        allowed: set[str] | None = None,
        heartbeat_interval: float = 2.0,
        options: QuicOptions = QuicOptions(),  # noqa: B008
    ) -> None:
        self.tls = tls
        self.name = name
        self.allowed = allowed
        self.heartbeat_interval = heartbeat_interval
        self.answer_pings = True
        self.options = options
        self.sessions: list[Session] = []
        self.server: QuicServer | None = None
        self._new = asyncio.Event()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def start(self, port: int = 0) -> FakeIngress:
        self.server = await serve(HOST, port, self.tls, self._handle, options=self.options)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed(grace=2.0)
            self.server = None

    async def __aenter__(self) -> FakeIngress:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def session(self, index: int = 0, within: float = 10.0) -> Session:
        """The `index`-th session (waits for it)."""
        async with asyncio.timeout(within):
            while len(self.sessions) <= index:
                self._new.clear()
                await self._new.wait()
        return self.sessions[index]

    def ack(self, claimed: tuple[str, ...]) -> HelloAck:
        accepted = tuple(s for s in claimed if self.allowed is None or s in self.allowed)
        rejected = tuple((s, "not allowed for this agent") for s in claimed if s not in accepted)
        return HelloAck(self.name, accepted, rejected, self.heartbeat_interval)

    async def _handle(self, conn: QuicTunnelConnection) -> None:
        control = await conn.accept_stream()
        reader = ControlReader()
        messages: list[ControlMessage] = []
        while not messages:
            messages = reader.feed(await control.read())
        hello = messages.pop(0)
        assert isinstance(hello, Hello), hello
        if hello.agent_id != conn.peer.name:
            conn.close(ErrorCode.UNAUTHORIZED, "agent_id does not match the certificate")
            return
        ack = self.ack(hello.services)
        await control.write(encode_control(ack, preface=True))
        if not ack.accepted:
            await asyncio.sleep(0.2)  # let HELLO_ACK reach the agent first
            conn.close(ErrorCode.UNAUTHORIZED, "no service allowed")
            return
        session = Session(conn, control, hello)
        self.sessions.append(session)
        self._new.set()
        try:
            await self._serve(session, reader, messages)
        except ConnectionClosed as exc:
            session.closed = exc
        finally:
            session.changed.set()

    async def _serve(
        self, session: Session, reader: ControlReader, messages: list[ControlMessage]
    ) -> None:
        while True:
            for message in messages:
                session.messages.append(message)
                session.changed.set()
                await self._answer(session, message)
            data = await session.control.read()
            if not data:
                return
            messages = reader.feed(data)

    async def _answer(self, session: Session, message: ControlMessage) -> None:
        match message:
            case Ping(seq=seq) if self.answer_pings:
                await session.send(Pong(seq))
            case Services(services=services):
                await session.send(self.ack(services))
            case Drain():
                pass


async def _main(cert: str, key: str, ca: str, port: str) -> None:
    node = await FakeIngress(TlsFiles(Path(cert), Path(key), Path(ca))).start(int(port))
    try:
        sys.stdout.write(f"listening {node.port}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:5]))
