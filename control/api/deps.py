"""Dependencies and their `Annotated` aliases: what a handler may ask for by type.

    async def get_service(ctx: OrgCtx, db: Db, service_id: UUID) -> ServiceOut

Authentication happens here (bearer token, or session cookie plus CSRF); authorisation in
the service layer (`OrgContext.require`), so handlers hold no access rules of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from control.auth import csrf, sessions
from control.runtime import Runtime
from control.services import authn, orgs
from control.services.context import Client, OrgContext, Principal
from control.services.errors import Unauthenticated
from control.services.scoped import DEFAULT_LIMIT, MAX_LIMIT, PageRequest

bearer_scheme = HTTPBearer(auto_error=False, description="an API token: kokoa_pat_… or kokoa_sat_…")
cookie_scheme = APIKeyCookie(
    name=sessions.COOKIE_NAME,
    auto_error=False,
    description="the session cookie set by /auth/login; unsafe requests need X-CSRF-Token",
)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_db(rt: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with rt.sessionmaker() as session:
        yield session


Db = Annotated[AsyncSession, Depends(get_db)]


def get_client(request: Request) -> Client:
    ip = request.client.host if request.client else None
    return Client(ip=ip, user_agent=request.headers.get("user-agent"))


ClientDep = Annotated[Client, Depends(get_client)]


async def get_principal(
    request: Request,
    rt: RuntimeDep,
    db: Db,
    client: ClientDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    cookie: Annotated[str | None, Depends(cookie_scheme)],
) -> Principal:
    if "authorization" in request.headers:
        if bearer is None or not bearer.credentials:
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return await authn.from_bearer(db, rt, bearer.credentials, client)
    if not cookie:
        raise Unauthenticated("log in, or send an API token as 'Authorization: Bearer …'")
    unsafe = request.method not in csrf.SAFE_METHODS
    if unsafe:
        csrf.check_origin(request.headers, rt.settings.allowed_origins)
    principal, session = await authn.from_session(db, rt, cookie, client)
    if unsafe:
        csrf.check_token(request.headers.get(sessions.CSRF_HEADER), sessions.csrf_for(rt, session))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_org_context(
    org_id: Annotated[uuid.UUID, Path(description="organisation id")],
    principal: CurrentPrincipal,
    db: Db,
) -> OrgContext:
    return await orgs.context(db, principal, org_id)


OrgCtx = Annotated[OrgContext, Depends(get_org_context)]


def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


PageParams = Annotated[PageRequest, Depends(get_page)]
