"""CSRF defence for cookie-authenticated requests: Origin / Sec-Fetch-Site, then the token.

Every unsafe method (anything but GET, HEAD, OPTIONS) authenticated by the session cookie
must carry `X-CSRF-Token` equal to the session's token, and must not come from another site:
an `Origin` header must be one of ours, and `Sec-Fetch-Site` (when the browser sends it) must
be `same-origin` or `none`. The login and sign-up forms get the origin check too (login CSRF).
SameSite=Lax on the cookie is a third, independent layer.
"""

from __future__ import annotations

from collections.abc import Mapping

from control.auth.tokens import same
from control.services.errors import CsrfFailed

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def check_origin(headers: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Refuse a request a browser marked as coming from another site."""
    origin = headers.get("origin")
    if origin is not None and origin not in allowed:
        raise CsrfFailed(f"requests from {origin!r} are not allowed")
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ALLOWED_FETCH_SITES:
        raise CsrfFailed(f"cross-site request refused (Sec-Fetch-Site: {site})")


def check_token(sent: str | None, expected: str) -> None:
    if not sent or not same(sent, expected):
        raise CsrfFailed("missing or wrong X-CSRF-Token header")
