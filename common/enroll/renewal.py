"""Renewing the tunnel certificate in the background, well before it expires.

`Renewer.run(on_renewed)` sleeps until 2/3 of the certificate's lifetime has passed
(common/enroll/lifetime.py), then renews: a new key, a CSR, the control plane's nonce signed by
the current key. The new pair is written to the state directory and `on_renewed(tls)` is
called, so the process uses it for new connections; connections already up keep theirs.

On failure it retries with exponential backoff and jitter (at most `retry_max`, and never
waiting longer than a tenth of the time left), logging a warning, then an error once 5/6 of
the lifetime has passed, then a critical message per attempt once the certificate has
expired (only a new enrollment token can help then).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from common import pki
from common.enroll.client import ControlClient, EnrollError
from common.enroll.lifetime import renew_after, urgent_after
from common.enroll.proof import make_csr, new_key
from common.enroll.state import StateDir
from common.pki import TlsFiles

log = logging.getLogger(__name__)

OnRenewed = Callable[[TlsFiles], None]
RETRY_BASE = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Renewer:
    """Keeps the certificate in `state` fresh for as long as `run()` runs."""

    def __init__(
        self,
        state: StateDir,
        client: ControlClient,
        *,
        retry_max: float = 300.0,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._state = state
        self._client = client
        self._retry_max = retry_max
        self._clock = clock
        self._sleep = sleep
        self.failures = 0

    async def run(self, on_renewed: OnRenewed) -> None:
        """Renew forever (until cancelled)."""
        while True:
            try:
                cert = self._state.certificate()
            except pki.PkiError as exc:  # someone removed or broke the file under us
                log.error("cannot read the tunnel certificate", extra={"error": str(exc)})
                await self._sleep(self._retry_max)
                continue
            await self._sleep(self.delay(cert))
            try:
                await self.renew_once(on_renewed)
            except (EnrollError, pki.PkiError, OSError) as exc:
                self.failures += 1
                self._report(cert, exc)
            else:
                self.failures = 0

    def delay(self, cert: x509.Certificate) -> float:
        """Seconds until the next attempt for `cert`."""
        now = self._clock()
        if self.failures == 0:
            return max(0.0, (renew_after(cert) - now).total_seconds())
        left = (cert.not_valid_after_utc - now).total_seconds()
        backoff = min(self._retry_max, RETRY_BASE * 2.0 ** (self.failures - 1))
        if left > 0:
            backoff = min(backoff, max(1.0, left / 10))
        return backoff * random.uniform(0.5, 1.0)

    async def renew_once(self, on_renewed: OnRenewed) -> x509.Certificate:
        """One renewal: new key, proof, new certificate stored, `on_renewed` told."""
        old = self._state.certificate()
        current_pem = old.public_bytes(serialization.Encoding.PEM).decode()
        key = new_key()
        credentials = await self._client.renew(current_pem, self._state.key(), make_csr(key))
        self._state.save(self._client.url, key, credentials)
        new = self._state.certificate()
        on_renewed(self._state.tls)
        log.info(
            "tunnel certificate renewed",
            extra={
                "old_serial": f"{old.serial_number:x}",
                "serial": f"{new.serial_number:x}",
                "not_after": new.not_valid_after_utc.isoformat(),
            },
        )
        return new

    def _report(self, cert: x509.Certificate, exc: Exception) -> None:
        now = self._clock()
        expires = cert.not_valid_after_utc
        fields = {
            "error": str(exc),
            "failures": self.failures,
            "expires_at": expires.isoformat(),
            "expires_in_s": round((expires - now).total_seconds()),
        }
        if now >= expires:
            log.critical(
                "the tunnel certificate has EXPIRED and renewal fails: peers refuse this "
                "process until it is enrolled again with a new token",
                extra=fields,
            )
        elif now >= urgent_after(cert):
            log.error("the tunnel certificate expires soon and renewal keeps failing", extra=fields)
        else:
            log.warning("certificate renewal failed; retrying", extra=fields)
