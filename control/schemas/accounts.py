"""Sign-up, login, the current user, sessions and password changes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from control.auth.roles import Role
from control.schemas.common import In, Out
from control.schemas.validators import DisplayName, OrgName

# Long enough for any policy-valid password, short enough that hashing cannot be abused.
Password = Field(min_length=1, max_length=1024)


class SignupIn(In):
    email: EmailStr
    password: str = Password
    name: DisplayName = ""
    organisation_name: OrgName | None = Field(
        default=None, description="name of the new organisation (first user, open sign-up)"
    )
    invitation_token: str | None = Field(default=None, min_length=1, max_length=200)


class LoginIn(In):
    email: EmailStr
    password: str = Password


class PasswordChangeIn(In):
    current_password: str = Password
    new_password: str = Password


class UserUpdateIn(In):
    name: DisplayName


class UserOut(Out):
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class MembershipOut(Out):
    org_id: uuid.UUID
    org_name: str
    role: Role


class MeOut(Out):
    user: UserOut
    memberships: list[MembershipOut]


class SessionInfo(Out):
    """The current login, with the CSRF token to send as X-CSRF-Token on unsafe requests."""

    user: UserOut
    csrf_token: str
    expires_at: datetime


class SessionOut(Out):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_ip: str | None
    user_agent: str | None
    current: bool = False
