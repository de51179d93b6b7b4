"""The response-head deadline around a request body, on the public front end with the fake
agent (`public_fakes`) and `response_head_timeout` 0.3 s.

The deadline counts from the end of the request: from the last body bytes the agent took
(the FIN), not from the head. While the body is being streamed, each write the agent takes
starts it again; when it passes, the answer is 408 if the client stopped sending, 504 if
the agent stopped taking the body. An answer before the body ends is served as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json

from common.wire import ErrorCode
from ingress.public import HttpLimits
from tests.ingress.public_fakes import Front, eventually, read_response, running_front

TIMEOUT = 0.3
SWEEP = TIMEOUT / 4  # how often the sweeper checks the deadlines
PIECE = 16 * 1024


def head(target: str, size: int) -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: app.test\r\nAccept: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()


async def send_slowly(writer: asyncio.StreamWriter, pieces: int, interval: float) -> float:
    """`pieces` × `PIECE` bytes, one every `interval` s; when the last one went out."""
    for i in range(pieces):
        if i:
            await asyncio.sleep(interval)
        writer.write(b"x" * PIECE)
        await writer.drain()
    return asyncio.get_running_loop().time()


def in_flight(front: Front) -> float:
    return front.sample("kokoa_ingress_in_flight", service="app")


async def test_slow_steady_body_outlasting_the_deadline_is_answered() -> None:
    async with running_front(HttpLimits(response_head_timeout=TIMEOUT)) as front:
        reader, writer = await front.open()
        pieces = 25  # over 1.2 s: four deadlines
        try:
            writer.write(head("/sha256", pieces * PIECE))
            await send_slowly(writer, pieces, 0.05)
            status, _, body = await read_response(reader)
        finally:
            writer.close()
        assert status == 200, body
        expected = hashlib.sha256(b"x" * PIECE * pieces).hexdigest()
        assert json.loads(body) == {"sha256": expected, "size": pieces * PIECE}


async def test_a_client_that_stops_sending_its_body_gets_408() -> None:
    async with running_front(HttpLimits(response_head_timeout=TIMEOUT)) as front:
        reader, writer = await front.open()
        loop = asyncio.get_running_loop()
        try:
            writer.write(head("/sha256", 1 << 20))
            stalled = await send_slowly(writer, 16, 0.05)  # 0.75 s of progress, then nothing
            status, headers, body = await read_response(reader)
            answered = loop.time()
            assert (status, json.loads(body)["error"]) == (408, "body_timeout")
            assert headers["connection"] == "close"
            assert TIMEOUT <= answered - stalled <= TIMEOUT + SWEEP + 0.2, answered - stalled
            async with asyncio.timeout(5):  # what still comes is dropped for a moment
                assert await reader.read(-1) == b""
        finally:
            writer.close()
        await eventually(lambda: front.agent.resets_seen == [ErrorCode.CANCELLED])
        assert in_flight(front) == 0
        assert front.sample("kokoa_ingress_requests_total", service="app", status="408") == 1


async def test_an_agent_that_stops_taking_the_body_is_504() -> None:
    limits = HttpLimits(response_head_timeout=TIMEOUT)
    async with running_front(limits, high_water=64 * 1024) as front:
        reader, writer = await front.open()
        loop = asyncio.get_running_loop()
        try:
            # /slow-sink reads nothing for 2 s: the stream fills and the upload waits.
            writer.write(head("/slow-sink", 1 << 20) + b"x" * (1 << 20))
            started = loop.time()
            status, headers, body = await read_response(reader)
            answered = loop.time()
        finally:
            writer.close()
        assert (status, json.loads(body)["error"]) == (504, "agent_timeout")
        assert headers["connection"] == "close"
        assert TIMEOUT <= answered - started <= TIMEOUT + SWEEP + 0.2, answered - started
        await eventually(lambda: in_flight(front) == 0)


async def test_silent_agent_is_504_a_deadline_after_the_body_ended() -> None:
    async with running_front(HttpLimits(response_head_timeout=TIMEOUT)) as front:
        reader, writer = await front.open()
        loop = asyncio.get_running_loop()
        pieces = 16  # over 0.75 s: longer than the deadline
        try:
            # /slow-head/5 answers after 5 s; the body fits in the stream meanwhile.
            writer.write(head("/slow-head/5", pieces * PIECE))
            ended = await send_slowly(writer, pieces, 0.05)
            status, _, body = await read_response(reader)
            answered = loop.time()
        finally:
            writer.close()
        assert (status, json.loads(body)["error"]) == (504, "agent_timeout")
        assert TIMEOUT <= answered - ended <= TIMEOUT + SWEEP + 0.2, answered - ended
        await eventually(lambda: in_flight(front) == 0)


async def test_an_answer_before_the_body_ends_is_served() -> None:
    async with running_front(HttpLimits(response_head_timeout=TIMEOUT)) as front:
        reader, writer = await front.open()
        sending: asyncio.Task[float] | None = None
        try:
            # Any other path: the fake agent answers 200 first, then reads the body.
            writer.write(head("/early", 40 * PIECE))
            sending = asyncio.get_running_loop().create_task(send_slowly(writer, 40, 0.05))
            status, headers, body = await read_response(reader)
            assert not sending.done()  # the body was still coming
        finally:
            if sending is not None:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await sending
            writer.close()
        assert (status, body, headers["connection"]) == (200, b"ok", "close")
        await eventually(lambda: in_flight(front) == 0)
