"""Who is asking: the actor (for the audit log), the principal (for authorisation) and the
organisation context every org-scoped service method receives and checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from control.auth.roles import HUMAN_ONLY, Permission, Role, allows
from control.services.errors import Forbidden

ActorKind = Literal["user", "token", "anonymous", "system"]


@dataclass(frozen=True, slots=True)
class Client:
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, as the audit log records it."""

    kind: ActorKind
    id: uuid.UUID | None
    label: str
    client: Client

    @classmethod
    def anonymous(cls, client: Client, label: str = "") -> Actor:
        return cls("anonymous", None, label, client)

    @classmethod
    def system(cls, label: str = "kokoa control") -> Actor:
        return cls("system", None, label, Client(None, None))


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user (by session or personal token) or a service account."""

    actor: Actor
    user_id: uuid.UUID | None  # None for service-account tokens
    session_id: uuid.UUID | None = None  # set when authenticated by session cookie
    token_org_id: uuid.UUID | None = None  # service accounts: their one organisation
    token_role: Role | None = None

    @property
    def is_service_account(self) -> bool:
        return self.user_id is None


@dataclass(frozen=True, slots=True)
class OrgContext:
    """The caller inside one organisation they belong to, with their role there."""

    org_id: uuid.UUID
    role: Role
    principal: Principal

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    def require(self, permission: Permission) -> None:
        """Raise Forbidden unless this caller holds `permission` here."""
        if not allows(self.role, permission):
            raise Forbidden(f"needs the {permission.value} permission, which {self.role} lacks")
        if permission in HUMAN_ONLY and self.principal.is_service_account:
            raise Forbidden(f"service-account tokens cannot use {permission.value}")

    def may(self, permission: Permission) -> bool:
        try:
            self.require(permission)
        except Forbidden:
            return False
        return True
