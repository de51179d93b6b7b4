"""Password hashing (Argon2id via pwdlib) and the NIST SP 800-63B password policy.

Policy: at least 8 characters, up to 256 (well past the 64 NIST asks us to allow), any
characters at all (no composition rules), not on the shipped list of common passwords and not
the account's own e-mail address. Hashing runs in a worker thread: Argon2 is deliberately slow
and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from importlib.resources import files

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from control.settings import PasswordHashSettings

MIN_LENGTH = 8
MAX_LENGTH = 256
CONTEXT_WORDS = frozenset({"kokoa", "kokoaproxy", "kokoa proxy"})


class WeakPasswordError(ValueError):
    """The password breaks the policy; the message says how, for the person typing it."""


def load_common_passwords() -> frozenset[str]:
    """The shipped blocklist (control/common_passwords.txt), lowercased."""
    text = files("control").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


@dataclass(frozen=True)
class PasswordPolicy:
    common: frozenset[str]

    def check(self, password: str, *, email: str | None = None) -> None:
        """Raise WeakPasswordError when `password` may not be used."""
        length = len(unicodedata.normalize("NFKC", password))
        if length < MIN_LENGTH:
            raise WeakPasswordError(f"use at least {MIN_LENGTH} characters")
        if length > MAX_LENGTH:
            raise WeakPasswordError(f"use at most {MAX_LENGTH} characters")
        folded = password.strip().lower()
        if folded in self.common or folded in CONTEXT_WORDS:
            raise WeakPasswordError("this password is too common; choose another")
        if email and folded in (email.lower(), email.lower().partition("@")[0]):
            raise WeakPasswordError("do not use your e-mail address as your password")


class PasswordHasher:
    """Argon2id hashing with a dummy hash for the constant-time unknown-user path."""

    def __init__(self, settings: PasswordHashSettings) -> None:
        hasher = Argon2Hasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_cost,
            parallelism=settings.parallelism,
        )
        self._hash = PasswordHash((hasher,))
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, stored: str) -> tuple[bool, str | None]:
        """(matches, a new hash when the parameters changed and it should be stored)."""
        return await asyncio.to_thread(self._hash.verify_and_update, password, stored)

    async def verify_dummy(self, password: str) -> None:
        """Spend the same time as a real verification, for accounts that do not exist."""
        if self._dummy is None:
            self._dummy = await self.hash("dummy password that never matches anything")
        await asyncio.to_thread(self._hash.verify, password, self._dummy)
