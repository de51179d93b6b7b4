"""/orgs/{org_id}/services: published host names and where they lead."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.filters import Filter
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.common import Page
from control.schemas.resources import ServiceIn, ServiceOut, ServicePatch
from control.services import service_catalog

router = APIRouter(prefix="/orgs/{org_id}/services", tags=["services"], responses=error_responses())
ServiceId = Annotated[uuid.UUID, Path(description="service id")]


@router.get("")
async def list_services(
    ctx: OrgCtx,
    db: Db,
    page: PageParams,
    filters: Filter,
    agent_id: Annotated[uuid.UUID | None, Query(description="served by this agent")] = None,
) -> Page[ServiceOut]:
    result = await service_catalog.list_services(db, ctx, filters, page, agent_id)
    return to_page(Page[ServiceOut], result)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_service(ctx: OrgCtx, db: Db, rt: RuntimeDep, data: ServiceIn) -> ServiceOut:
    return await service_catalog.create(db, rt, ctx, data)


@router.get("/{service_id}")
async def get_service(ctx: OrgCtx, db: Db, service_id: ServiceId) -> ServiceOut:
    return await service_catalog.get(db, ctx, service_id)


@router.patch("/{service_id}")
async def update_service(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, service_id: ServiceId, data: ServicePatch
) -> ServiceOut:
    return await service_catalog.update(db, rt, ctx, service_id, data)


@router.delete("/{service_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_service(ctx: OrgCtx, db: Db, service_id: ServiceId) -> None:
    await service_catalog.remove(db, ctx, service_id)


@router.post("/{service_id}/enable")
async def enable_service(ctx: OrgCtx, db: Db, rt: RuntimeDep, service_id: ServiceId) -> ServiceOut:
    return await service_catalog.set_enabled(db, rt, ctx, service_id, True)


@router.post("/{service_id}/disable")
async def disable_service(ctx: OrgCtx, db: Db, rt: RuntimeDep, service_id: ServiceId) -> ServiceOut:
    return await service_catalog.set_enabled(db, rt, ctx, service_id, False)
