"""/orgs/{org_id}/members and /invitations: who is in an organisation, and who may join."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.common import Page
from control.schemas.orgs import (
    InvitationCreated,
    InvitationIn,
    InvitationOut,
    MemberOut,
    MemberUpdateIn,
)
from control.schemas.validators import SearchText
from control.services import invitations, members

router = APIRouter(prefix="/orgs/{org_id}", tags=["members"], responses=error_responses())
UserId = Annotated[uuid.UUID, Path(description="the member's user id")]
InvitationId = Annotated[uuid.UUID, Path(description="invitation id")]


@router.get("/members")
async def list_members(
    ctx: OrgCtx,
    db: Db,
    page: PageParams,
    q: Annotated[SearchText | None, Query(description="part of the e-mail or name")] = None,
) -> Page[MemberOut]:
    return to_page(Page[MemberOut], await members.list_members(db, ctx, page, q))


@router.patch("/members/{user_id}")
async def update_member(ctx: OrgCtx, db: Db, user_id: UserId, data: MemberUpdateIn) -> MemberOut:
    """Change a member's role (the owner role: owners only; never the last owner)."""
    return await members.update_role(db, ctx, user_id, data)


@router.delete("/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(ctx: OrgCtx, db: Db, user_id: UserId) -> None:
    """Remove a member, or leave (your own user id)."""
    await members.remove(db, ctx, user_id)


@router.get("/invitations")
async def list_invitations(ctx: OrgCtx, db: Db, page: PageParams) -> Page[InvitationOut]:
    return to_page(Page[InvitationOut], await invitations.list_invitations(db, ctx, page))


@router.post("/invitations", status_code=status.HTTP_201_CREATED)
async def create_invitation(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, data: InvitationIn
) -> InvitationCreated:
    """An invitation link; its token is shown only in this response."""
    return await invitations.create(db, rt, ctx, data)


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(ctx: OrgCtx, db: Db, invitation_id: InvitationId) -> None:
    await invitations.revoke(db, ctx, invitation_id)
