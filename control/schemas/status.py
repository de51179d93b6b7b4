"""Status and health: the control channel's `status` message as parsed, and the API's shapes.

`StatusReport` is what an ingress node or an edge agent sends every heartbeat interval
(docs/protocol.md, "Control channel"); unknown fields are ignored (newer peers may add some),
every list and string is bounded (one message cannot make the control plane store megabytes).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from control.schemas.common import In, Out
from control.schemas.resources import Status

MAX_COUNTER = 2**63 - 1  # the database's BIGINT
MAX_SERVICES = 1000
MAX_CONNECTIONS = 1000
MAX_PROBLEMS = 20
MAX_PROBLEM = 200

# ---- the channel's status message -------------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Counter = Annotated[int, Field(ge=0, le=MAX_COUNTER)]


class ServiceCounters(_Message):
    """One service's counters: cumulative since the process started, except `in_flight`."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    requests: Counter = 0
    errors: Counter = 0
    bytes_in: Counter = 0
    bytes_out: Counter = 0
    in_flight: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class PeerConnection(_Message):
    """An ingress node reports the agents connected to it; an agent, the nodes it reaches."""

    kind: Literal["agent", "ingress"]
    id: uuid.UUID
    name: Annotated[str, StringConstraints(max_length=253)] = ""
    connected_since: AwareDatetime
    rtt_ms: Annotated[float, Field(ge=0, le=3_600_000)] | None = None


class StatusReport(_Message):
    sent_at: AwareDatetime
    snapshot_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    software: Annotated[str, StringConstraints(max_length=100)] = ""
    started_at: AwareDatetime
    services: list[ServiceCounters] = Field(default_factory=list, max_length=MAX_SERVICES)
    connections: list[PeerConnection] = Field(default_factory=list, max_length=MAX_CONNECTIONS)
    problems: list[Annotated[str, StringConstraints(max_length=MAX_PROBLEM)]] = Field(
        default_factory=list, max_length=MAX_PROBLEMS
    )


# ---- the API ------------------------------------------------------------------------------

HEALTH_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://"
    r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
)
HealthUrl = Annotated[
    str,
    StringConstraints(max_length=300, pattern=HEALTH_URL_PATTERN),
    Field(
        description="http(s)://host[:port][/path] of the node's readiness endpoint "
        "(the ingress admin listener's /readyz); no query, fragment or credentials",
        examples=["http://10.0.0.5:9901/readyz"],
    ),
]


class HealthCheckIn(In):
    url: HealthUrl


class HealthCheckOut(Out):
    url: str
    ok: bool | None = Field(description="the judged result; null until a verdict is reached")
    failures: int = Field(description="consecutive failed checks")
    checked_at: datetime | None
    detail: str


class StatusCounts(BaseModel):
    online: int = 0
    degraded: int = 0
    offline: int = 0
    unknown: int = 0
    disabled: int = Field(default=0, description="disabled, whatever their last status")


class StatusSummary(BaseModel):
    heartbeat_interval: float = Field(description="seconds between a channel's status messages")
    stale_after: float = Field(description="seconds without a status message before offline")
    nodes: StatusCounts
    agents: StatusCounts


class SubjectStatusOut(Out):
    id: uuid.UUID
    name: str
    enabled: bool
    status: Status
    status_detail: str
    last_seen_at: datetime | None = Field(description="the last status message")
    software: str | None = Field(description="what the process says it runs ('kokoa 2.0.1')")
    started_at: datetime | None
    snapshot_version: str | None = Field(description="the config version it runs (acked)")
    channel_open: bool
    problems: list[str]
    connections: int = Field(description="peers it reported in its last status message")


class NodeStatusOut(SubjectStatusOut):
    health_check: HealthCheckOut | None


class AgentStatusOut(SubjectStatusOut):
    pass


class ConnectionSide(BaseModel):
    reported_at: datetime
    since: datetime | None
    rtt_ms: float | None


class ConnectionOut(BaseModel):
    agent_id: uuid.UUID
    agent_name: str
    node_id: uuid.UUID
    node_name: str
    seen_by_agent: ConnectionSide | None = Field(description="the agent's last report of it")
    seen_by_node: ConnectionSide | None = Field(description="the node's last report of it")


GroupBy = Literal["service", "node", "agent"]


class TrafficPoint(BaseModel):
    at: datetime = Field(description="start of the step")
    requests: int
    errors: int
    bytes_in: int
    bytes_out: int
    max_in_flight: int = Field(description="highest in-flight count reported in the step")


class TrafficSeries(BaseModel):
    id: uuid.UUID
    name: str
    requests: int = Field(description="total over the window")
    points: list[TrafficPoint]


class TrafficOut(BaseModel):
    by: GroupBy
    source: Literal["ingress", "agent"] = Field(description="whose reports were counted")
    since: datetime
    until: datetime
    step: int = Field(description="seconds per point")
    total: int = Field(description="groups with traffic in the window (series holds the top)")
    series: list[TrafficSeries]
