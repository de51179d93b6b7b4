"""Readiness checks of ingress nodes from the control plane, besides their heartbeats.

A node's check is an operator-set URL (its admin listener's `/readyz`, e.g.
`http://10.0.0.5:9901/readyz`), kept in its `node_status` row; nodes without one are judged by
their heartbeats alone. Every `health_check_interval` seconds each enabled node with a URL gets
one GET (no redirects followed, no proxy from the environment, TLS verified against the
system's CAs plus `health_check_ca_file`, at most `health_check_timeout` seconds): 2xx passes;
anything else fails. `health_check_failures` consecutive failures make the node's check
failing; one pass makes it passing again. Then its status is judged again
(control/services/status_rules.py).

Setting or removing a check needs nodes.write (admins): it makes the control plane send
requests to that address. Its result shows only a status code or an error class, never a
response body.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission
from control.db.models import IngressNode, NodeStatus
from control.runtime import Runtime
from control.schemas.status import HealthCheckOut
from control.services import status
from control.services.context import OrgContext
from control.services.scoped import get_scoped
from control.settings import Settings

log = logging.getLogger(__name__)
CONCURRENCY = 16  # checks in flight at once per replica
MAX_NODES = 10_000  # checked per round at most


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    detail: str


def make_client(settings: Settings) -> httpx.AsyncClient:
    """The client every check of one app uses (one connection pool, our TLS trust)."""
    context = ssl.create_default_context()
    if settings.health_check_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.health_check_ca_file))
    return httpx.AsyncClient(
        verify=context,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(settings.health_check_timeout),
        headers={"user-agent": "kokoa-control health check"},
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0),
    )


async def probe(client: httpx.AsyncClient, url: str, within: float) -> Outcome:
    """One GET of `url`: passes on 2xx. Failures are described by status code or error class."""
    try:
        async with asyncio.timeout(within):
            response = await client.get(url)
    except TimeoutError:
        return Outcome(False, "timed out")
    except httpx.TimeoutException:
        return Outcome(False, "timed out")
    except httpx.ConnectError as exc:
        return Outcome(False, _connect_error(exc))
    except httpx.HTTPError as exc:
        return Outcome(False, f"request failed ({type(exc).__name__})")
    if 200 <= response.status_code < 300:
        return Outcome(True, f"HTTP {response.status_code}")
    return Outcome(False, f"HTTP {response.status_code}")


def _connect_error(exc: httpx.ConnectError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "TLS certificate not trusted"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    if "refused" in text:  # httpcore keeps only the message of some OS errors
        return "connection refused"
    return "cannot connect"


async def check_all(rt: Runtime, client: httpx.AsyncClient) -> int:
    """Check every enabled node with a readiness URL once; returns how many were checked."""
    async with rt.sessionmaker() as db, db.begin():
        query = (
            select(NodeStatus.node_id, NodeStatus.health_url)
            .join(IngressNode, IngressNode.id == NodeStatus.node_id)
            .where(NodeStatus.health_url.is_not(None), IngressNode.enabled.is_(True))
            .order_by(NodeStatus.health_checked_at.asc().nulls_first(), NodeStatus.node_id)
            .limit(MAX_NODES)
        )
        targets = [(node_id, str(url)) for node_id, url in await db.execute(query)]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(node_id: uuid.UUID, url: str) -> None:
        async with gate:
            outcome = await probe(client, url, rt.settings.health_check_timeout)
        try:
            async with rt.sessionmaker() as db:
                await record(db, rt, node_id, url, outcome)
        except SQLAlchemyError as exc:  # one node's write must not cancel the others' checks
            log.warning("could not record the readiness check of node %s: %s", node_id, exc)

    async with asyncio.TaskGroup() as group:
        for node_id, url in targets:
            group.create_task(one(node_id, url), name=f"health-check-{node_id}")
    return len(targets)


async def record(
    db: AsyncSession, rt: Runtime, node_id: uuid.UUID, url: str, outcome: Outcome
) -> None:
    """Keep one check's outcome (unless the URL changed meanwhile) and judge the node again."""
    now = rt.now()
    kind = status.KINDS["ingress"]
    async with db.begin():
        node = await db.get(IngressNode, node_id)
        if node is None:
            return
        state: NodeStatus = await status.load_state(db, kind, node_id)
        if state.health_url != url:
            return
        state.health_checked_at = now
        state.health_detail = outcome.detail
        if outcome.ok:
            state.health_failures, state.health_ok = 0, True
        else:
            state.health_failures += 1
            if state.health_failures >= rt.settings.health_check_failures:
                state.health_ok = False
        await status.rejudge(db, rt, node, state, now)


def view(state: NodeStatus | None) -> HealthCheckOut | None:
    if state is None or state.health_url is None:
        return None
    return HealthCheckOut(
        url=state.health_url,
        ok=state.health_ok,
        failures=state.health_failures,
        checked_at=state.health_checked_at,
        detail=state.health_detail,
    )


async def set_check(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID, url: str
) -> HealthCheckOut:
    """Set (or replace) the readiness URL of a node; its verdict starts afresh."""
    ctx.require(Permission.NODES_WRITE)
    async with db.begin():
        node = await get_scoped(db, IngressNode, ctx.org_id, node_id, what="ingress node")
        state: NodeStatus = await status.load_state(db, status.KINDS["ingress"], node_id)
        before = state.health_url
        _reset(state, url)
        _audit(db, ctx, node, "node.health_check.set", before, url)
        await status.rejudge(db, rt, node, state, rt.now())
        result = view(state)
    assert result is not None
    return result


async def remove_check(db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID) -> None:
    """Remove a node's readiness check (nothing to do if it has none)."""
    ctx.require(Permission.NODES_WRITE)
    async with db.begin():
        node = await get_scoped(db, IngressNode, ctx.org_id, node_id, what="ingress node")
        state: NodeStatus = await status.load_state(db, status.KINDS["ingress"], node_id)
        if state.health_url is None:
            return
        before = state.health_url
        _reset(state, None)
        _audit(db, ctx, node, "node.health_check.remove", before, None)
        await status.rejudge(db, rt, node, state, rt.now())


def _reset(state: NodeStatus, url: str | None) -> None:
    state.health_url = url
    state.health_ok = None
    state.health_failures = 0
    state.health_checked_at = None
    state.health_detail = ""


def _audit(
    db: AsyncSession,
    ctx: OrgContext,
    node: IngressNode,
    action: str,
    before: str | None,
    after: str | None,
) -> None:
    audit.record(
        db,
        ctx.actor,
        action,
        org_id=ctx.org_id,
        target=audit.Target("node", node.id, node.name),
        before={"health_url": before},
        after={"health_url": after},
    )
