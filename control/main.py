"""The composition root: `create_app(settings)` builds one control-plane application.

Everything the app holds lives on `app.state.runtime` (engine, hasher, throttle, clock), made
here and disposed of at shutdown; nothing is global, so tests build as many apps as they like.
Migrations are not run here but by `kokoa control serve` before it starts serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from control import channel, spa
from control.api import problems
from control.api.headers import SecurityHeaders
from control.api.routes import (
    agents,
    audit,
    auth,
    certificates,
    enrollment,
    enrollment_tokens,
    me,
    members,
    nodes,
    orgs,
    services,
    status,
    tokens,
)
from control.db.base import utcnow
from control.runtime import Runtime, build_runtime
from control.services.status_monitor import StatusMonitor
from control.settings import Settings

API_PREFIX = "/api/v1"
ROUTERS = (
    auth, me, orgs, members, tokens, services, certificates, nodes, agents, audit,
    enrollment_tokens, enrollment, status,
)  # fmt: skip
VERSION = "1.0.0"


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """A ready-to-serve ASGI app for `settings` (the database must already be migrated)."""
    runtime = build_runtime(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await runtime.ca.authority()  # created on first start; a wrong passphrase fails here
            async with (
                hub.running(),  # config change notifications for the control channel
                StatusMonitor(runtime).running(),  # sweeper and readiness checks
            ):
                yield
        finally:
            await runtime.engine.dispose()

    app = FastAPI(
        title="Kokoa control plane",
        version=VERSION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    for module in ROUTERS:
        app.include_router(module.router, prefix=API_PREFIX)
    hub = channel.install(app, runtime, prefix=API_PREFIX)  # WebSocket, not in the OpenAPI
    problems.install(app)
    app.add_middleware(SecurityHeaders, hsts=settings.mode == "production")
    spa.install(app, hsts=settings.mode == "production")  # the web app at /, after the API
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                routes=app.routes,
                description="REST API of the Kokoa control plane; see docs/api.md.",
            )
            app.openapi_schema = problems.document_problems(schema)
        return app.openapi_schema

    return build
