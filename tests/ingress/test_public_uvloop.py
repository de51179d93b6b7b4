"""The front end's scenarios again on uvloop, the ingress node's event loop in production
(its transports differ from asyncio's: flow control, half-close, TLS, writelines)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme
import uvloop

from ingress.public import HttpLimits, SniCertificates
from tests.ingress import test_public_errors as errors
from tests.ingress import test_public_proxy as proxy
from tests.ingress import test_public_smuggling as smuggling
from tests.ingress import test_public_streaming as streaming
from tests.ingress.public_fakes import Front, read_response, running_front
from tests.ingress.smuggling.corpus import CASES
from tests.ingress.test_public_tls import write_pair

Scenario = Callable[[Front], Awaitable[None]]


async def smuggling_corpus(front: Front) -> None:
    for name in sorted(CASES):
        await smuggling.test_refused_with_one_response_and_closed(front, name)


SCENARIOS: dict[str, Scenario] = {
    "forwarding": proxy.test_forwarding_headers_are_ours_not_the_clients,
    "keep-alive": proxy.test_keep_alive_serves_many_requests_on_one_connection,
    "pipelining": proxy.test_pipelined_requests_are_answered_in_order,
    "chunked": proxy.test_chunked_request_and_response,
    "http10": proxy.test_http10_client_gets_close_delimited_chunked_responses,
    "100-continue": proxy.test_expect_100_continue,
    "sse": proxy.test_server_sent_events_are_not_buffered,
    "client-gone-upload": proxy.test_client_gone_mid_upload_cancels_the_stream,
    "client-gone-download": proxy.test_client_gone_mid_download_cancels_the_stream,
    "slow-client": streaming.test_slow_client_slows_the_agent,
    "slow-agent": streaming.test_slow_agent_stops_reading_the_client,
    "websocket": streaming.test_websocket_through_the_tunnel,
    "raw-upgrade": streaming.test_upgrade_pipe_carries_raw_bytes_both_ways,
    "refused-upgrade": streaming.test_refused_upgrade_is_an_ordinary_response_then_close,
    "no-agent": errors.test_no_agent_connected_is_502_and_says_so,
    "reset-after-head": errors.test_reset_after_the_head_truncates_the_response,
    "lingering-close": errors.test_unwanted_body_is_read_before_closing,
    "smuggling": smuggling_corpus,
}


def on_uvloop(main: Callable[[], Awaitable[None]]) -> None:
    async def checked() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        await main()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(checked())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_on_uvloop(name: str) -> None:
    async def main() -> None:
        async with running_front(high_water=streaming.HIGH_WATER) as front:
            await SCENARIOS[name](front)

    on_uvloop(main)


def test_large_bodies_on_uvloop() -> None:
    async def main() -> None:
        async with running_front(high_water=streaming.HIGH_WATER) as front:
            await streaming.test_large_download_arrives_intact_with_bounded_buffers(front, "")
            await streaming.test_large_upload_arrives_intact_with_bounded_buffers(front, False)

    on_uvloop(main)


def test_header_timeout_on_uvloop() -> None:
    async def main() -> None:
        async with running_front(HttpLimits(header_timeout=0.3)) as front:
            reader, writer = await front.open()
            try:
                writer.write(b"GET / HTTP/1.1\r\n")
                async with asyncio.timeout(5):
                    answer = await reader.read(-1)
            finally:
                writer.close()
            assert answer.startswith(b"HTTP/1.1 408 ")

    on_uvloop(main)


def test_https_with_sni_on_uvloop(tmp_path: Path) -> None:
    ca = trustme.CA()
    pairs = [write_pair(ca, tmp_path, "a", "a.test"), write_pair(ca, tmp_path, "app", "app.test")]

    async def main() -> None:
        async with running_front(tls=SniCertificates(pairs)) as front:
            context = ssl.create_default_context()
            ca.configure_trust(context)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", front.port, ssl=context, server_hostname="app.test"
            )
            try:
                for _ in range(2):
                    writer.write(b"GET /bytes/100000 HTTP/1.1\r\nHost: app.test\r\n\r\n")
                    status, _, body = await read_response(reader)
                    assert (status, len(body)) == (200, 100000)
            finally:
                writer.close()
            assert front.agent.heads[-1].scheme == "https"

    on_uvloop(main)
