"""The agent ↔ ingress connection matrix, one row per (agent, node) pair, written from both
sides: an agent's report sets the `agent_*` columns of its rows, a node's report the `node_*`
columns of its rows. Each report replaces its side entirely: pairs it no longer lists lose
that side, and a row that no side reports any more is deleted. A subject that goes offline
loses its side as well (`forget`): the matrix shows what live reporters say now.

Peers are looked up in the reporter's own organisation; an id of another organisation, or of
no node or agent at all, is dropped (a report can never create a row naming foreign ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control.db.models import AgentConnection, EdgeAgent, IngressNode
from control.schemas.status import PeerConnection
from control.services.upsert import upsert

Side = Literal["agent", "node"]
C = AgentConnection


async def replace(
    db: AsyncSession,
    *,
    side: Side,
    subject_id: uuid.UUID,
    org_id: uuid.UUID,
    peers: Sequence[PeerConnection],
    now: datetime,
) -> int:
    """Set `subject_id`'s side of the matrix to `peers`; returns how many were kept."""
    wanted = "ingress" if side == "agent" else "agent"
    listed = {peer.id: peer for peer in peers if peer.kind == wanted}
    known = await _existing(db, side, org_id, list(listed))
    rows = [_row(side, subject_id, org_id, listed[peer_id], now) for peer_id in sorted(known)]
    mine, theirs = _columns(side)
    stale = mine == subject_id
    if known:
        stale = and_(stale, theirs.not_in(known))
    await db.execute(update(C).where(stale).values(_cleared(side)))
    columns = [f"{side}_reported_at", f"{side}_since", f"{side}_rtt_ms"]
    await upsert(
        db,
        cast(Table, C.__table__),
        rows,
        ("agent_id", "node_id"),
        lambda new: {c: new[c] for c in columns},
    )
    await _drop_empty(db, side, subject_id)
    return len(rows)


async def forget(db: AsyncSession, *, side: Side, subject_id: uuid.UUID) -> None:
    """Remove `subject_id`'s side from every row (it no longer reports)."""
    mine, _ = _columns(side)
    await db.execute(update(C).where(mine == subject_id).values(_cleared(side)))
    await _drop_empty(db, side, subject_id)


async def _existing(
    db: AsyncSession, side: Side, org_id: uuid.UUID, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    if not ids:
        return set()
    model: type[IngressNode] | type[EdgeAgent] = IngressNode if side == "agent" else EdgeAgent
    query = select(model.id).where(model.org_id == org_id, model.id.in_(ids))
    return set((await db.execute(query)).scalars())


def _columns(side: Side) -> tuple[Any, Any]:
    """(the reporter's id column, the peer's id column)."""
    return (C.agent_id, C.node_id) if side == "agent" else (C.node_id, C.agent_id)


def _row(
    side: Side, subject_id: uuid.UUID, org_id: uuid.UUID, peer: PeerConnection, now: datetime
) -> dict[str, Any]:
    agent_id, node_id = (subject_id, peer.id) if side == "agent" else (peer.id, subject_id)
    return {
        "agent_id": agent_id,
        "node_id": node_id,
        "org_id": org_id,
        f"{side}_reported_at": now,
        f"{side}_since": peer.connected_since,
        f"{side}_rtt_ms": peer.rtt_ms,
    }


def _cleared(side: Side) -> dict[str, None]:
    return {f"{side}_reported_at": None, f"{side}_since": None, f"{side}_rtt_ms": None}


async def _drop_empty(db: AsyncSession, side: Side, subject_id: uuid.UUID) -> None:
    mine, _ = _columns(side)
    await db.execute(
        delete(C).where(
            mine == subject_id, C.agent_reported_at.is_(None), C.node_reported_at.is_(None)
        )
    )
