"""Opaque random secrets (session ids, API tokens, invitation codes) and how we store them.

They carry 256 bits from `secrets.token_urlsafe`, so a plain SHA-256 is the right storage hash
(ASVS 5.0 6.5.2): a slow hash adds nothing against guessing 2^256 values, and a database leak
gives no usable secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32
PERSONAL_PREFIX = "kokoa_pat_"
SERVICE_PREFIX = "kokoa_sat_"
DISPLAY_CHARS = 4


def new_secret() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_token(kind: str) -> tuple[str, str]:
    """(token, display prefix) for a personal or service token."""
    prefix = PERSONAL_PREFIX if kind == "personal" else SERVICE_PREFIX
    token = prefix + new_secret()
    return token, token[: len(prefix) + DISPLAY_CHARS]


def csrf_token(key: bytes, session_hash: str) -> str:
    """The synchronizer token bound to one session: HMAC(secret key, session hash)."""
    return hmac.new(key, b"csrf:" + session_hash.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
