"""Services, ingress nodes and edge agents: create, patch and output shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from control.schemas.common import In, Out
from control.schemas.patch import Patch
from control.schemas.validators import (
    Address,
    HostHeader,
    Hostname,
    Labels,
    Name,
    Origin,
    Text,
)

Status = Literal["unknown", "online", "offline", "degraded"]
ConnectTimeout = Field(default=5.0, gt=0, le=300, description="seconds to connect to the origin")
ReadTimeout = Field(default=60.0, gt=0, le=86400, description="seconds to wait for origin data")
AgentIds: list[uuid.UUID] = Field(
    default_factory=list, max_length=100, description="edge agents serving it"
)
Weight = Field(default=100, ge=1, le=1000, description="relative share of new connections")


class ServiceIn(In):
    name: Name
    hostname: Hostname
    origin: Origin
    protocol: Literal["http"] = "http"
    enabled: bool = True
    description: Text = ""
    agent_ids: list[uuid.UUID] = AgentIds
    connect_timeout: float = ConnectTimeout
    read_timeout: float = ReadTimeout
    tls_verify: bool = True
    host_header: HostHeader | None = None


class ServicePatch(Patch):
    NULLABLE: ClassVar[frozenset[str]] = frozenset({"host_header"})

    name: Name | SkipJsonSchema[None] = None
    hostname: Hostname | SkipJsonSchema[None] = None
    origin: Origin | SkipJsonSchema[None] = None
    protocol: Literal["http"] | SkipJsonSchema[None] = None
    description: Text | SkipJsonSchema[None] = None
    agent_ids: list[uuid.UUID] | SkipJsonSchema[None] = Field(default=None, max_length=100)
    connect_timeout: float | SkipJsonSchema[None] = Field(default=None, gt=0, le=300)
    read_timeout: float | SkipJsonSchema[None] = Field(default=None, gt=0, le=86400)
    tls_verify: bool | SkipJsonSchema[None] = None
    host_header: HostHeader | None = None


class ServiceOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    hostname: str
    origin: str
    protocol: Literal["http"]
    enabled: bool
    description: str
    agent_ids: list[uuid.UUID]
    connect_timeout: float
    read_timeout: float
    tls_verify: bool
    host_header: str | None
    created_at: datetime
    updated_at: datetime


class NodeIn(In):
    name: Name
    public_address: Address
    tunnel_address: Address
    region: Name | Literal[""] = ""
    labels: Labels = Field(default_factory=dict)
    weight: int = Weight
    enabled: bool = True


class NodePatch(Patch):
    name: Name | SkipJsonSchema[None] = None
    public_address: Address | SkipJsonSchema[None] = None
    tunnel_address: Address | SkipJsonSchema[None] = None
    region: Name | Literal[""] | SkipJsonSchema[None] = None
    labels: Labels | SkipJsonSchema[None] = None
    weight: int | SkipJsonSchema[None] = Field(default=None, ge=1, le=1000)


class StatusOut(Out):
    status: Status
    status_detail: str
    version: str | None
    last_seen_at: datetime | None


class NodeOut(StatusOut):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    public_address: str
    tunnel_address: str
    region: str
    labels: dict[str, str]
    weight: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


IngressMode = Literal["all", "labels"]


class AgentIn(In):
    name: Name
    enabled: bool = True
    labels: Labels = Field(default_factory=dict)
    ingress_mode: IngressMode = Field(
        default="all", description="use all enabled ingress nodes, or those matching labels"
    )
    ingress_labels: Labels = Field(
        default_factory=dict, description="with mode labels: a node must carry all of these"
    )


class AgentPatch(Patch):
    name: Name | SkipJsonSchema[None] = None
    labels: Labels | SkipJsonSchema[None] = None
    ingress_mode: IngressMode | SkipJsonSchema[None] = None
    ingress_labels: Labels | SkipJsonSchema[None] = None


class AgentOut(StatusOut):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    enabled: bool
    labels: dict[str, str]
    ingress_mode: IngressMode
    ingress_labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
