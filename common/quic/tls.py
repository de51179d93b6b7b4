"""TLS for the tunnel: aioquic configurations and the peer checks aioquic does not make.

- The **server** (ingress) asks for a client certificate (see `engine.py`) but aioquic never
  verifies it, so `PeerVerifier(role="agent")` validates the chain with `common.pki` once the
  handshake completes, before the application sees the connection.
- The **client** (agent) lets aioquic check the server's chain against our CA during the
  handshake, but without a name: aioquic's name check cannot read our URN SANs (see
  tests/common/test_pki_verify.py). `PeerVerifier(role="ingress", server_name=...)` then
  checks the chain, the name and the role. Consequence: the client sends no SNI.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicProtocolVersion
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from common.pki import PkiError, Role, TlsFiles, load_certificates, load_private_key, verify_peer
from common.quic.options import ALPN, QuicOptions
from common.transport import PeerIdentity
from common.wire.errors import ErrorCode

log = logging.getLogger(__name__)

RevocationCheck = Callable[[PeerIdentity], bool]


class PeerRejected(Exception):
    """The peer's certificate is not acceptable: close with `code`, send `public_reason`."""

    def __init__(self, code: int, public_reason: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.public_reason = public_reason


def server_configuration(tls: TlsFiles, options: QuicOptions) -> QuicConfiguration:
    """An aioquic server configuration with our certificate; client checks are ours."""
    configuration = _configuration(options, is_client=False)
    _load_identity(configuration, tls)
    return configuration


def client_configuration(tls: TlsFiles, options: QuicOptions) -> QuicConfiguration:
    """An aioquic client configuration: our certificate, and the CA to check the server."""
    configuration = _configuration(options, is_client=True)
    _load_identity(configuration, tls)
    configuration.cadata = b"".join(
        cert.public_bytes(serialization.Encoding.PEM) for cert in load_certificates(tls.ca)
    )
    configuration.verify_mode = ssl.CERT_REQUIRED
    return configuration


def _load_identity(configuration: QuicConfiguration, tls: TlsFiles) -> None:
    certificates = load_certificates(tls.cert)
    configuration.certificate = certificates[0]
    configuration.certificate_chain = certificates[1:]
    configuration.private_key = load_private_key(tls.key)


def _configuration(options: QuicOptions, *, is_client: bool) -> QuicConfiguration:
    return QuicConfiguration(
        alpn_protocols=[ALPN],
        is_client=is_client,
        idle_timeout=options.idle_timeout,
        max_datagram_size=options.max_datagram_size,
        max_data=options.connection_window,
        max_stream_data=options.stream_window,
        supported_versions=[QuicProtocolVersion.VERSION_1],
    )


class PeerVerifier:
    """Checks a peer's certificate chain, role, name and revocation after the handshake."""

    def __init__(
        self,
        tls: TlsFiles,
        role: Role,
        *,
        server_name: str | None = None,
        is_revoked: RevocationCheck | None = None,
    ) -> None:
        self._roots = load_certificates(tls.ca)
        self._role: Role = role
        self._server_name = server_name
        self._is_revoked = is_revoked

    def verify(
        self,
        alpn: str | None,
        leaf: x509.Certificate | None,
        chain: list[x509.Certificate],
    ) -> PeerIdentity:
        """Return the peer's identity, or raise PeerRejected (with the reason for our logs)."""
        unauthorized = ErrorCode.UNAUTHORIZED
        if alpn != ALPN:
            raise PeerRejected(unauthorized, "unauthorized", f"ALPN {alpn!r} is not {ALPN}")
        if leaf is None:
            raise PeerRejected(unauthorized, "unauthorized", "no certificate presented")
        try:
            identity = verify_peer(
                leaf, chain, self._roots, role=self._role, server_name=self._server_name
            )
        except PkiError as exc:
            raise PeerRejected(unauthorized, "unauthorized", str(exc)) from exc
        if self._revoked(identity):
            raise PeerRejected(ErrorCode.REVOKED, "revoked", f"{identity} is revoked")
        return identity

    def _revoked(self, identity: PeerIdentity) -> bool:
        if self._is_revoked is None:
            return False
        try:
            return self._is_revoked(identity)
        except Exception:
            log.exception("revocation check failed for %s; refusing it", identity)
            return True
