"""Shared pieces of the agent's tests: throwaway PKI, ingress node entries, tunnels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import pki, quic
from common.pki import TlsFiles
from common.transport import TunnelConnection, TunnelStream
from edge.settings import IngressNode
from edge.tunnel import StreamHandler, Tunnel, TunnelOptions
from tests.common.quic_support import HOST, Authority

FAST = quic.QuicOptions(handshake_timeout=1.0, idle_timeout=5.0)


@dataclass
class Pki:
    authority: Authority
    agent: TlsFiles
    ingress: TlsFiles


def make_pki(directory: Path, agent: str = "agent-1") -> Pki:
    authority = Authority(directory)
    return Pki(authority, authority.issue("agent", agent), authority.issue("ingress", "ingress-1"))


def node_tls(authority: Authority, node_id: str, org: str) -> TlsFiles:
    """Files for an ingress node as the control plane certifies it: named by its id in its
    organisation (urn:kokoa:org:<org>:ingress:<id>), for the address 127.0.0.1."""
    key, cert = pki.issue_certificate(
        authority.key, authority.cert, role="ingress", name=node_id, org=org,
        ip_addresses=[HOST], days=1,
    )  # fmt: skip
    assert key is not None
    base = authority.directory / f"ingress-{org}-{node_id}"
    pki.write_key(base.with_suffix(".key"), key)
    pki.write_certificate(base.with_suffix(".pem"), cert)
    return TlsFiles(
        cert=base.with_suffix(".pem"),
        key=base.with_suffix(".key"),
        ca=authority.directory / "ca.pem",
    )


def node(port: int, name: str = "ingress-1", server_name: str | None = None) -> IngressNode:
    return IngressNode(name=name, address=f"{HOST}:{port}", server_name=server_name)


async def fast_connect(target: IngressNode, tls: TlsFiles) -> TunnelConnection:
    """QUIC with a 1 s handshake timeout, so that a node that is down fails fast."""
    return await quic.connect(
        target.host, target.port, tls, server_name=target.verify_name, options=FAST
    )


def options(tls: TlsFiles, **overrides: object) -> TunnelOptions:
    values: dict[str, object] = {
        "agent": "agent-1",
        "tls": tls,
        "services": ("web",),
        "version": "test",
        "heartbeat_interval": 0.5,
        "hello_timeout": 2.0,
        "drain_grace": 5.0,
    }
    values.update(overrides)
    return TunnelOptions(**values)  # type: ignore[arg-type]


async def refuse(stream: TunnelStream) -> None:
    """A stream handler that serves nothing (for tests that only look at the control stream)."""
    stream.reset(0x3)


def tunnel(
    target: IngressNode,
    tls: TlsFiles,
    handler: StreamHandler = refuse,
    on_connected: Callable[[], None] | None = None,
    **overrides: object,
) -> Tunnel:
    return Tunnel(
        target,
        options(tls, **overrides),
        handler=handler,
        connect=fast_connect,
        on_connected=on_connected,
    )


async def until(check: Callable[[], bool], within: float = 10.0, step: float = 0.02) -> None:
    """Wait until `check()` holds (AssertionError after `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(step)
