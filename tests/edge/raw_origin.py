"""Scripted origins for edge cases: a real asyncio server on 127.0.0.1 running a handler per
connection, counting connections. Requests are parsed with httptools (never by hand)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import httptools

Handler = Callable[["Connection"], Awaitable[None]]


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass
class _RequestParts:
    target: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    done: bool = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One accepted connection, with a request reader on httptools."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        index: int,
        log: list[Request],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.index = index  # 0 for the first connection the origin accepted
        self.requests = 0
        self._log = log

    async def request(self) -> Request | None:
        """The next request on this connection, or None at EOF."""
        parts = _RequestParts()
        parser = httptools.HttpRequestParser(parts)
        while not parts.done:
            data = await self.reader.read(65536)
            if not data:
                return None
            try:
                parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                break
        self.requests += 1
        method = parser.get_method().decode()
        request = Request(method, parts.target.decode(), parts.headers, b"".join(parts.body))
        self._log.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class RawOrigin:
    """`async with RawOrigin(handler) as origin:` serves on `origin.port` until the block ends."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._tls = tls
        self.connections = 0
        self.closed = 0
        self.requests: list[Request] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Event()

    async def __aenter__(self) -> RawOrigin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Connection(reader, writer, self.connections, self.requests)
        self.connections += 1
        self.changed.set()
        try:
            await self._handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # cancelled by __aexit__; asyncio's stream callback mishandles cancelled tasks
        finally:
            writer.close()
            self.closed += 1
            self.changed.set()
            self._tasks.discard(task)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def response(status: int = 200, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body
