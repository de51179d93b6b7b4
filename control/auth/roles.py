"""Roles and permissions: the one table that says who may do what in an organisation.

Roles are ordered: viewer < operator < admin < owner. Each permission names the least role
that holds it; every service method asks `OrgContext.require(permission)` before it acts.
docs/control-plane.md shows the same table for people.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Permission(StrEnum):
    ORG_READ = "org.read"
    ORG_UPDATE = "org.update"
    MEMBERS_READ = "members.read"
    MEMBERS_MANAGE = "members.manage"
    OWNERS_MANAGE = "owners.manage"
    INVITATIONS_MANAGE = "invitations.manage"
    TOKENS_MANAGE = "tokens.manage"
    SERVICES_READ = "services.read"
    SERVICES_WRITE = "services.write"
    CERTIFICATES_READ = "certificates.read"
    CERTIFICATES_WRITE = "certificates.write"
    NODES_READ = "nodes.read"
    NODES_TOGGLE = "nodes.toggle"
    NODES_WRITE = "nodes.write"
    AGENTS_READ = "agents.read"
    AGENTS_TOGGLE = "agents.toggle"
    AGENTS_WRITE = "agents.write"
    ENROLLMENT_MANAGE = "enrollment.manage"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    STATUS_READ = "status.read"


LEAST_ROLE: dict[Permission, Role] = {
    Permission.ORG_READ: Role.VIEWER,
    Permission.ORG_UPDATE: Role.OWNER,
    Permission.MEMBERS_READ: Role.VIEWER,
    Permission.MEMBERS_MANAGE: Role.ADMIN,
    Permission.OWNERS_MANAGE: Role.OWNER,
    Permission.INVITATIONS_MANAGE: Role.ADMIN,
    Permission.TOKENS_MANAGE: Role.ADMIN,
    Permission.SERVICES_READ: Role.VIEWER,
    Permission.SERVICES_WRITE: Role.OPERATOR,
    Permission.CERTIFICATES_READ: Role.VIEWER,
    Permission.CERTIFICATES_WRITE: Role.OPERATOR,
    Permission.NODES_READ: Role.VIEWER,
    Permission.NODES_TOGGLE: Role.OPERATOR,
    Permission.NODES_WRITE: Role.ADMIN,
    Permission.AGENTS_READ: Role.VIEWER,
    Permission.AGENTS_TOGGLE: Role.OPERATOR,
    Permission.AGENTS_WRITE: Role.ADMIN,
    Permission.ENROLLMENT_MANAGE: Role.ADMIN,
    Permission.AUDIT_READ: Role.OPERATOR,
    Permission.AUDIT_EXPORT: Role.ADMIN,
    Permission.STATUS_READ: Role.VIEWER,
}

# Permissions a service-account token never holds, whatever its role: people are managed
# by people (a leaked automation token cannot mint more tokens or invite accomplices).
HUMAN_ONLY = frozenset(
    {
        Permission.MEMBERS_MANAGE,
        Permission.OWNERS_MANAGE,
        Permission.INVITATIONS_MANAGE,
        Permission.TOKENS_MANAGE,
    }
)

# The highest role a service-account token may carry.
MAX_SERVICE_ROLE = Role.ADMIN


def allows(role: Role, permission: Permission) -> bool:
    return role.at_least(LEAST_ROLE[permission])
