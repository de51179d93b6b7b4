"""/orgs/{org_id}/certificates: public (HTTPS) certificates for the services' host names.

An upload that is not a usable certificate and key is answered like any invalid body: 422
`validation-error`, its `errors` naming the field (`["body", "chain"]` or
`["body", "private_key"]`) and the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, status
from fastapi.exceptions import RequestValidationError

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.certificates import CertificateIn, CertificateOut
from control.schemas.common import Page
from control.services import public_certificates
from control.services.public_tls import CertificateRejected

router = APIRouter(
    prefix="/orgs/{org_id}/certificates", tags=["certificates"], responses=error_responses()
)
CertificateId = Annotated[uuid.UUID, Path(description="certificate id")]
T = TypeVar("T")


async def _checked(work: Awaitable[T]) -> T:
    try:
        return await work
    except CertificateRejected as exc:
        error = {"loc": ("body", exc.field), "msg": exc.reason, "type": "value_error"}
        raise RequestValidationError([error]) from None


@router.get("")
async def list_certificates(ctx: OrgCtx, db: Db, page: PageParams) -> Page[CertificateOut]:
    result = await public_certificates.list_certificates(db, ctx, page)
    return to_page(Page[CertificateOut], result)


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_certificate(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, data: CertificateIn
) -> CertificateOut:
    return await _checked(public_certificates.upload(db, rt, ctx, data))


@router.get("/{certificate_id}")
async def get_certificate(ctx: OrgCtx, db: Db, certificate_id: CertificateId) -> CertificateOut:
    return await public_certificates.get(db, ctx, certificate_id)


@router.put("/{certificate_id}")
async def replace_certificate(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, certificate_id: CertificateId, data: CertificateIn
) -> CertificateOut:
    return await _checked(public_certificates.replace(db, rt, ctx, certificate_id, data))


@router.delete("/{certificate_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_certificate(ctx: OrgCtx, db: Db, certificate_id: CertificateId) -> None:
    await public_certificates.remove(db, ctx, certificate_id)
