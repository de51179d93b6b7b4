"""Organisations, members and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from control.auth.roles import Role
from control.schemas.common import In, Out
from control.schemas.validators import OrgName


class OrgIn(In):
    name: OrgName


class OrgOut(Out):
    id: uuid.UUID
    name: str
    created_at: datetime
    role: Role = Field(description="the caller's role in this organisation")


class MemberOut(Out):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime


class MemberUpdateIn(In):
    role: Role


class InvitationIn(In):
    role: Role = Role.VIEWER
    email: EmailStr | None = Field(default=None, description="only this address may accept")
    expires_in_hours: int | None = Field(
        default=None, ge=1, le=24 * 30, description="default: the invitation_ttl setting"
    )


class InvitationOut(Out):
    id: uuid.UUID
    role: Role
    email: str | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None


class InvitationCreated(InvitationOut):
    """Returned once at creation: the secret token and the link built from public_url."""

    token: str
    link: str


class InvitationAcceptIn(In):
    token: str = Field(min_length=1, max_length=200)
