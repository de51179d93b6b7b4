"""/orgs/{org_id}/audit: the organisation's audit log, filtered and paged, or exported."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import StringConstraints

from control.api.deps import Db, OrgCtx, PageParams
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.audit import AuditEventOut
from control.schemas.common import Page
from control.services import audit_log

router = APIRouter(prefix="/orgs/{org_id}/audit", tags=["audit"], responses=error_responses())
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:*-]{1,64}$")]


def get_audit_filter(
    actor_id: Annotated[uuid.UUID | None, Query(description="user or token id")] = None,
    action: Annotated[Token | None, Query(description="exact, or a prefix: service.*")] = None,
    target_type: Annotated[Token | None, Query(description="service, node, user, …")] = None,
    target_id: Annotated[Token | None, Query(description="id of the target")] = None,
    since: Annotated[datetime | None, Query(description="at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="before (ISO 8601)")] = None,
) -> audit_log.AuditFilter:
    return audit_log.AuditFilter(actor_id, action, target_type, target_id, since, until)


AuditFilterDep = Annotated[audit_log.AuditFilter, Depends(get_audit_filter)]
MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get("")
async def list_audit_events(
    ctx: OrgCtx, db: Db, page: PageParams, filters: AuditFilterDep
) -> Page[AuditEventOut]:
    """Newest first."""
    return to_page(Page[AuditEventOut], await audit_log.list_events(db, ctx, filters, page))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/AuditEventOut"},
                    }
                },
            },
            "description": "every matching event, newest first",
        }
    },
)
async def export_audit_events(
    ctx: OrgCtx,
    db: Db,
    filters: AuditFilterDep,
    format: Annotated[Literal["csv", "json"], Query(description="csv or json")] = "json",
) -> StreamingResponse:
    """Download the matching events (up to 100 000) as CSV or a JSON array."""
    audit_log.authorise_export(ctx)
    name = f"audit-{ctx.org_id}.{format}"
    return StreamingResponse(
        audit_log.export(db, ctx, filters, format),
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
