"""/orgs: the caller's organisations, creating one, reading and renaming it; accepting an
invitation (/invitations/accept)."""

from __future__ import annotations

from fastapi import APIRouter, status

from control.api.deps import CurrentPrincipal, Db, OrgCtx, RuntimeDep
from control.api.problems import error_responses
from control.schemas.orgs import InvitationAcceptIn, OrgIn, OrgOut
from control.services import invitations, orgs

router = APIRouter(tags=["organisations"], responses=error_responses())


@router.get("/orgs")
async def list_orgs(principal: CurrentPrincipal, db: Db) -> list[OrgOut]:
    """The organisations you belong to (a service account: its own)."""
    return await orgs.list_mine(db, principal)


@router.post("/orgs", status_code=status.HTTP_201_CREATED)
async def create_org(principal: CurrentPrincipal, db: Db, rt: RuntimeDep, data: OrgIn) -> OrgOut:
    """Start a new organisation; you become its owner."""
    return await orgs.create(db, rt, principal, data)


@router.get("/orgs/{org_id}")
async def get_org(ctx: OrgCtx, db: Db) -> OrgOut:
    return await orgs.get(db, ctx)


@router.patch("/orgs/{org_id}")
async def update_org(ctx: OrgCtx, db: Db, data: OrgIn) -> OrgOut:
    return await orgs.update(db, ctx, data)


@router.post("/invitations/accept")
async def accept_invitation(
    principal: CurrentPrincipal, db: Db, rt: RuntimeDep, data: InvitationAcceptIn
) -> OrgOut:
    """Join the organisation of an invitation link while signed in."""
    org_id = await invitations.accept(db, rt, principal, data.token)
    return await orgs.get(db, await orgs.context(db, principal, org_id))
