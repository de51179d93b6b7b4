"""HTTPS certificates chosen by SNI, replaceable while listeners run (SIGHUP reload).

Each (certificate chain, key) pair covers the DNS names in its certificate's subject
alternative names, wildcards (`*.example.com`, one label) included. A client's SNI picks
the pair with the exact name, else the wildcard, else the first pair (so a client without
SNI, or with an unknown name, still completes the handshake and gets our 404 page).

`update` builds every context first (a bad file raises and changes nothing), then swaps one
reference: handshakes already running finish with the old table, new ones use the new.
TLS 1.2 and 1.3 only; ALPN offers `http/1.1`.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

_ALPN = ["http/1.1"]


@dataclass(frozen=True, slots=True)
class _Table:
    exact: dict[str, ssl.SSLContext]
    wildcard: dict[str, ssl.SSLContext]  # keyed by the suffix after "*."
    default: ssl.SSLContext

    def pick(self, server_name: str | None) -> ssl.SSLContext:
        if not server_name:
            return self.default
        name = server_name.lower().rstrip(".")
        context = self.exact.get(name)
        if context is None:
            _, dot, parent = name.partition(".")
            context = self.wildcard.get(parent) if dot else None
        return context or self.default


class SniCertificates:
    """Certificates chosen by SNI; `update()` swaps them atomically."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]]) -> None:
        """Load every (certificate, key) pair.

        Raises:
            ValueError: no pair, or a certificate without DNS names.
            OSError, ssl.SSLError: a file is unreadable or the key does not match.
        """
        self._table = _build(pairs)

    def update(self, pairs: Sequence[tuple[Path, Path]]) -> None:
        """Replace the certificates; on error, raise and keep the current ones."""
        self._table = _build(pairs)

    def names(self) -> list[str]:
        """Every name covered, wildcards as `*.suffix`."""
        table = self._table
        return sorted([*table.exact, *(f"*.{suffix}" for suffix in table.wildcard)])

    def server_context(self) -> ssl.SSLContext:
        """A context for a listener. It holds no certificate itself: its SNI callback (run
        for every handshake, with None when the client sent no name) switches to the context
        of the certificate that covers the name, looked up in the current table."""
        context = _context()
        context.sni_callback = self._choose
        return context

    def _choose(
        self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        sock.context = self._table.pick(server_name)


def _build(pairs: Sequence[tuple[Path, Path]]) -> _Table:
    if not pairs:
        raise ValueError("at least one certificate and key pair is needed")
    exact: dict[str, ssl.SSLContext] = {}
    wildcard: dict[str, ssl.SSLContext] = {}
    contexts = []
    for cert, key in pairs:
        context = _context()
        context.load_cert_chain(cert, key)
        contexts.append(context)
        for name in _dns_names(cert):
            if name.startswith("*."):
                wildcard.setdefault(name[2:], context)
            else:
                exact.setdefault(name, context)
    return _Table(exact, wildcard, contexts[0])


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(_ALPN)
    return context


def _dns_names(cert: Path) -> list[str]:
    """The DNS names of the first (leaf) certificate in a PEM chain, lowercase."""
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise ValueError(f"{cert}: the certificate has no subject alternative names") from None
    names = [name.lower().rstrip(".") for name in san.value.get_values_for_type(x509.DNSName)]
    if not names:
        raise ValueError(f"{cert}: the certificate has no DNS names")
    return names
