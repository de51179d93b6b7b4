"""API tokens: personal (act as their user) and service accounts (one org, one role).

The secret is returned once at creation and stored as SHA-256; revoking keeps the row (with
`revoked_at`) so that the audit trail can still name it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import MAX_SERVICE_ROLE, Permission
from control.auth.tokens import digest, new_api_token
from control.db.models import ApiToken
from control.runtime import Runtime
from control.schemas.tokens import ServiceTokenIn, TokenCreated, TokenIn, TokenOut
from control.services.context import Actor, OrgContext, Principal
from control.services.errors import Forbidden, NotFound
from control.services.profile import user_id_of
from control.services.scoped import PageRequest, PageResult, paginate


async def create_personal(
    db: AsyncSession, rt: Runtime, principal: Principal, data: TokenIn
) -> TokenCreated:
    user_id = user_id_of(principal)
    if principal.session_id is None:
        # A token that mints tokens would outlive its own revocation through its children.
        raise Forbidden("personal tokens are made from a signed-in session, not with a token")
    return await _create(db, rt, principal.actor, data, kind="personal", user_id=user_id)


async def create_service(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, data: ServiceTokenIn
) -> TokenCreated:
    ctx.require(Permission.TOKENS_MANAGE)
    if data.role.rank > min(ctx.role.rank, MAX_SERVICE_ROLE.rank):
        raise Forbidden(
            f"a service account cannot have role {data.role} (at most "
            f"{MAX_SERVICE_ROLE}, and not above your own)"
        )
    return await _create(
        db,
        rt,
        ctx.actor,
        data,
        kind="service",
        org_id=ctx.org_id,
        role=data.role.value,
        created_by=ctx.principal.user_id,
    )


async def _create(
    db: AsyncSession,
    rt: Runtime,
    actor: Actor,
    data: TokenIn,
    *,
    kind: str,
    user_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    role: str | None = None,
    created_by: uuid.UUID | None = None,
) -> TokenCreated:
    secret, prefix = new_api_token(kind)
    now = rt.now()
    row = ApiToken(
        name=data.name,
        kind=kind,
        token_hash=digest(secret),
        prefix=prefix,
        user_id=user_id,
        org_id=org_id,
        role=role,
        created_by_id=created_by or user_id,
        created_at=now,
        expires_at=now + timedelta(days=data.expires_in_days),
    )
    async with db.begin():
        db.add(row)
        await db.flush()
        after = {"kind": kind, "role": role, "expires_at": row.expires_at}
        audit.record(
            db,
            actor,
            "token.create",
            org_id=org_id,
            target=audit.Target("token", row.id, row.name),
            after=after,
        )
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=secret)


async def list_personal(db: AsyncSession, principal: Principal, page: PageRequest) -> PageResult:
    user_id = user_id_of(principal)
    query = select(ApiToken).where(ApiToken.kind == "personal", ApiToken.user_id == user_id)
    return await _list(db, query, page)


async def list_service(db: AsyncSession, ctx: OrgContext, page: PageRequest) -> PageResult:
    ctx.require(Permission.TOKENS_MANAGE)
    query = select(ApiToken).where(ApiToken.kind == "service", ApiToken.org_id == ctx.org_id)
    return await _list(db, query, page)


async def _list(db: AsyncSession, query: object, page: PageRequest) -> PageResult:
    ordered = query.order_by(ApiToken.created_at.desc(), ApiToken.id)  # type: ignore[attr-defined]
    async with db.begin():
        result = await paginate(db, ordered, page)
    items = [TokenOut.model_validate(r) for r in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


async def revoke_personal(
    db: AsyncSession, rt: Runtime, principal: Principal, token_id: uuid.UUID
) -> None:
    user_id = user_id_of(principal)
    where = (ApiToken.kind == "personal", ApiToken.user_id == user_id)
    await _revoke(db, rt, principal.actor, token_id, where, org_id=None)


async def revoke_service(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, token_id: uuid.UUID
) -> None:
    ctx.require(Permission.TOKENS_MANAGE)
    where = (ApiToken.kind == "service", ApiToken.org_id == ctx.org_id)
    await _revoke(db, rt, ctx.actor, token_id, where, org_id=ctx.org_id)


async def _revoke(
    db: AsyncSession,
    rt: Runtime,
    actor: Actor,
    token_id: uuid.UUID,
    where: tuple[ColumnElement[bool], ...],
    *,
    org_id: uuid.UUID | None,
) -> None:
    async with db.begin():
        row = (await db.execute(select(ApiToken).where(ApiToken.id == token_id, *where))).scalar()
        if row is None:
            raise NotFound("no such token")
        if row.revoked_at is None:
            row.revoked_at = rt.now()
            audit.record(
                db,
                actor,
                "token.revoke",
                org_id=org_id,
                target=audit.Target("token", row.id, row.name),
            )
