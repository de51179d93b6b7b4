"""/orgs/{org_id}/tokens: service-account tokens (an organisation, a role, an expiry)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.common import Page
from control.schemas.tokens import ServiceTokenIn, TokenCreated, TokenOut
from control.services import tokens

router = APIRouter(prefix="/orgs/{org_id}/tokens", tags=["tokens"], responses=error_responses())
TokenId = Annotated[uuid.UUID, Path(description="token id")]


@router.get("")
async def list_service_tokens(ctx: OrgCtx, db: Db, page: PageParams) -> Page[TokenOut]:
    return to_page(Page[TokenOut], await tokens.list_service(db, ctx, page))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_service_token(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, data: ServiceTokenIn
) -> TokenCreated:
    """A service account token; `token` is shown only in this response."""
    return await tokens.create_service(db, rt, ctx, data)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_service_token(ctx: OrgCtx, db: Db, rt: RuntimeDep, token_id: TokenId) -> None:
    await tokens.revoke_service(db, rt, ctx, token_id)
