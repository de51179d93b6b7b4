"""The sign-in attempt's state, kept by the browser that started it in a sealed cookie.

`GET …/oidc/{provider}/login` makes a state, a nonce and a PKCE verifier, sends the first two
(and the verifier's S256 challenge) to the provider, and seals all three with the provider's
slug, where to go afterwards and an expiry into `__Host-kokoa_oidc` (AES-256-GCM under a key
derived from `secret_key`: the browser can neither read the verifier nor change anything).
The callback opens the cookie, requires its `state` to equal the one the provider sent back
and its provider to be the one called, and clears the cookie: one use, one browser.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from control.auth.tokens import same

COOKIE_NAME = "__Host-kokoa_oidc"
STATE_TTL = timedelta(minutes=10)
MAX_COOKIE = 3000
_NONCE_BYTES = 12
_INFO = b"kokoa oidc state cookie v1"


class StateInvalid(ValueError):
    """Missing, tampered with, expired, or made for another provider or attempt."""


@dataclass(frozen=True, slots=True)
class LoginState:
    provider: str
    state: str
    nonce: str
    code_verifier: str
    next: str
    expires: float  # POSIX seconds
    link_user: str | None = None  # linking from a signed-in session: that user's id


class StateSealer:
    """Seals and opens LoginState with a key derived from the control plane's secret."""

    def __init__(self, secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, state: LoginState) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(asdict(state), separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, _INFO)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(
        self, cookie: str | None, *, provider: str, state: str | None, now: datetime
    ) -> LoginState:
        """The state sealed in `cookie`, if it is ours, unexpired, for `provider` and `state`."""
        if not cookie or len(cookie) > MAX_COOKIE or not state:
            raise StateInvalid("no sign-in in progress in this browser")
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _INFO)
            found = LoginState(**json.loads(plain))
        except (binascii.Error, InvalidTag, ValueError, TypeError) as exc:
            raise StateInvalid("the sign-in cookie is not ours") from exc
        if found.expires <= now.timestamp():
            raise StateInvalid("the sign-in took too long")
        if found.provider != provider or not same(found.state, state):
            raise StateInvalid("the state does not match this browser's sign-in")
        return found
