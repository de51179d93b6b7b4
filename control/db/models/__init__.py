"""All ORM models; importing this package registers every table on `Base.metadata`."""

from control.db.base import Base
from control.db.models.accounts import (
    ApiToken,
    Invitation,
    Membership,
    Organisation,
    User,
    UserSession,
)
from control.db.models.audit import AuditEvent
from control.db.models.enrollment import CertificateAuthority, EnrollmentToken, IssuedCertificate
from control.db.models.oidc import OidcIdentity
from control.db.models.public_certificates import PublicCertificate
from control.db.models.resources import EdgeAgent, IngressNode, Service, ServiceAgent
from control.db.models.status import (
    AgentConnection,
    AgentStatus,
    NodeStatus,
    TrafficBucket,
)

__all__ = [
    "AgentConnection",
    "AgentStatus",
    "ApiToken",
    "AuditEvent",
    "Base",
    "CertificateAuthority",
    "EdgeAgent",
    "EnrollmentToken",
    "IngressNode",
    "Invitation",
    "IssuedCertificate",
    "Membership",
    "NodeStatus",
    "OidcIdentity",
    "Organisation",
    "PublicCertificate",
    "Service",
    "ServiceAgent",
    "TrafficBucket",
    "User",
    "UserSession",
]
