"""The session cookie: `__Host-` prefixed (Secure, Path=/, no Domain), HttpOnly, SameSite=Lax."""

from __future__ import annotations

from fastapi import Response

from control.auth.sessions import COOKIE_NAME
from control.settings import Settings


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(settings.session_absolute_timeout.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax")
