"""Enrollment tokens: created for one ingress node or one edge agent, shown once, stored as
SHA-256, expiring (1 hour by default), redeemed once (control/services/enrollment.py).

A token may be made for a disabled node or agent: enrollment then refuses it until it is
enabled again. Revoking an unused token keeps the row (with `revoked_at`) for the audit trail.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common.enroll.messages import Kind
from control import audit
from control.auth.roles import Permission
from control.auth.tokens import digest, new_secret
from control.db.models import EdgeAgent, EnrollmentToken, IngressNode
from control.runtime import Runtime
from control.schemas.enrollment import EnrollmentTokenCreated, EnrollmentTokenIn, EnrollmentTokenOut
from control.services.context import OrgContext
from control.services.errors import Conflict
from control.services.scoped import PageRequest, PageResult, get_scoped, paginate

TOKEN_PREFIX = "kokoa_ent_"
DISPLAY_CHARS = 4
COMMANDS = {"ingress": "kokoa ingress run", "agent": "kokoa edge run"}


async def create_for_node(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID, data: EnrollmentTokenIn
) -> EnrollmentTokenCreated:
    ctx.require(Permission.ENROLLMENT_MANAGE)
    async with db.begin():
        node = await get_scoped(db, IngressNode, ctx.org_id, node_id, what="ingress node")
        row, secret = _new_token(rt, ctx, "ingress", data, node_id=node.id)
        await _add(db, ctx, row, audit.Target("node", node.id, node.name))
    return _created(rt, row, secret)


async def create_for_agent(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, agent_id: uuid.UUID, data: EnrollmentTokenIn
) -> EnrollmentTokenCreated:
    ctx.require(Permission.ENROLLMENT_MANAGE)
    async with db.begin():
        agent = await get_scoped(db, EdgeAgent, ctx.org_id, agent_id, what="edge agent")
        row, secret = _new_token(rt, ctx, "agent", data, agent_id=agent.id)
        await _add(db, ctx, row, audit.Target("agent", agent.id, agent.name))
    return _created(rt, row, secret)


def _new_token(
    rt: Runtime,
    ctx: OrgContext,
    kind: Kind,
    data: EnrollmentTokenIn,
    **subject: uuid.UUID,
) -> tuple[EnrollmentToken, str]:
    secret = TOKEN_PREFIX + new_secret()
    ttl = rt.settings.enrollment_token_ttl
    if data.expires_in_minutes is not None:
        ttl = timedelta(minutes=data.expires_in_minutes)
    now = rt.now()
    row = EnrollmentToken(
        org_id=ctx.org_id,
        kind=kind,
        token_hash=digest(secret),
        prefix=secret[: len(TOKEN_PREFIX) + DISPLAY_CHARS],
        created_by_id=ctx.principal.user_id,
        created_at=now,
        expires_at=now + ttl,
        **subject,
    )
    return row, secret


async def _add(
    db: AsyncSession, ctx: OrgContext, row: EnrollmentToken, target: audit.Target
) -> None:
    db.add(row)
    await db.flush()
    audit.record(
        db,
        ctx.actor,
        "enrollment_token.create",
        org_id=ctx.org_id,
        target=target,
        after={"token_id": row.id, "prefix": row.prefix, "expires_at": row.expires_at},
    )


def _created(rt: Runtime, row: EnrollmentToken, secret: str) -> EnrollmentTokenCreated:
    url = rt.settings.public_url
    command = f"{COMMANDS[row.kind]} --config FILE --control {url} --token {secret}"
    out = EnrollmentTokenOut.model_validate(row)
    return EnrollmentTokenCreated(**out.model_dump(), token=secret, command=command)


async def list_tokens(db: AsyncSession, ctx: OrgContext, page: PageRequest) -> PageResult:
    ctx.require(Permission.ENROLLMENT_MANAGE)
    query = (
        select(EnrollmentToken)
        .where(EnrollmentToken.org_id == ctx.org_id)
        .order_by(EnrollmentToken.created_at.desc(), EnrollmentToken.id)
    )
    async with db.begin():
        result = await paginate(db, query, page)
    items = [EnrollmentTokenOut.model_validate(row) for row in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


async def revoke(db: AsyncSession, rt: Runtime, ctx: OrgContext, token_id: uuid.UUID) -> None:
    """Make an unused token unusable (a no-op if it already is revoked)."""
    ctx.require(Permission.ENROLLMENT_MANAGE)
    async with db.begin():
        row = await get_scoped(db, EnrollmentToken, ctx.org_id, token_id, what="enrollment token")
        if row.used_at is not None:
            raise Conflict(
                "the token was already used; disable the node or agent to stop its certificate"
            )
        if row.revoked_at is None:
            row.revoked_at = rt.now()
            audit.record(
                db,
                ctx.actor,
                "enrollment_token.revoke",
                org_id=ctx.org_id,
                target=audit.Target("enrollment_token", row.id, row.prefix),
            )
