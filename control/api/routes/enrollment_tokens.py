"""Enrollment tokens: made for one ingress node or one edge agent, listed, revoked."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.common import Page
from control.schemas.enrollment import EnrollmentTokenCreated, EnrollmentTokenIn, EnrollmentTokenOut
from control.services import enrollment_tokens

router = APIRouter(prefix="/orgs/{org_id}", tags=["enrollment"], responses=error_responses())
TokenIn = Annotated[EnrollmentTokenIn | None, Body(description="optional: the expiry")]


@router.post("/nodes/{node_id}/enrollment-tokens", status_code=status.HTTP_201_CREATED)
async def create_node_enrollment_token(
    ctx: OrgCtx,
    db: Db,
    rt: RuntimeDep,
    node_id: Annotated[uuid.UUID, Path(description="ingress node id")],
    data: TokenIn = None,
) -> EnrollmentTokenCreated:
    """A one-time token that enrolls this ingress node; `token` is shown only here."""
    return await enrollment_tokens.create_for_node(
        db, rt, ctx, node_id, data or EnrollmentTokenIn()
    )


@router.post("/agents/{agent_id}/enrollment-tokens", status_code=status.HTTP_201_CREATED)
async def create_agent_enrollment_token(
    ctx: OrgCtx,
    db: Db,
    rt: RuntimeDep,
    agent_id: Annotated[uuid.UUID, Path(description="edge agent id")],
    data: TokenIn = None,
) -> EnrollmentTokenCreated:
    """A one-time token that enrolls this edge agent; `token` is shown only here."""
    return await enrollment_tokens.create_for_agent(
        db, rt, ctx, agent_id, data or EnrollmentTokenIn()
    )


@router.get("/enrollment-tokens")
async def list_enrollment_tokens(ctx: OrgCtx, db: Db, page: PageParams) -> Page[EnrollmentTokenOut]:
    return to_page(Page[EnrollmentTokenOut], await enrollment_tokens.list_tokens(db, ctx, page))


@router.delete("/enrollment-tokens/{enrollment_token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_enrollment_token(
    ctx: OrgCtx,
    db: Db,
    rt: RuntimeDep,
    enrollment_token_id: Annotated[uuid.UUID, Path(description="enrollment token id")],
) -> None:
    """Make an unused token unusable."""
    await enrollment_tokens.revoke(db, rt, ctx, enrollment_token_id)
