"""HTTPS certificates chosen by SNI, replaceable while listeners run (SIGHUP reload, and in
control mode every snapshot).

Certificates come from two places: (certificate chain, key) file pairs of the configuration
file, and in control mode the control plane's snapshot (`Issued`: PEM in memory). Each covers
the DNS names in its certificate's subject alternative names, wildcards (`*.example.com`, one
label) included. A client's SNI picks the certificate with the exact name, else the wildcard;
for one name, **the snapshot's certificate wins over a file's** (the control plane is where a
certificate is replaced; a file's stays the fallback), and within one source the first listed.
A client without SNI, or with a name nothing covers, gets the file's first pair (so it still
completes the handshake and gets our 404 page), else the snapshot's first; with no certificate
at all the handshake is refused (`unrecognized_name`).

`load_files` and `load_issued` make every context first (a bad file or PEM raises and changes
nothing); `update` (the file's part) or `install` (the snapshot's part) then swaps one
reference: handshakes already running finish with the old table, new ones use the new. A
snapshot's PEM is loaded through a private temporary directory (0700, files 0600, removed at
once) made in `scratch`: `ssl` loads certificates and keys only from files. The node's scratch
is `tls-tmp` in its state directory (beside `snapshot.json`, which holds the same keys), not
the system's temporary directory: a process killed during a load leaves its key there, and
`clear_scratch` removes it at the next start. `load_issued(…, reuse=)` takes the
context of a certificate already loaded with the same chain and key, so a change of the list
loads only what changed; it blocks (~1.5 ms a certificate loaded), so the node calls it in a
worker thread.
TLS 1.2 and 1.3 only; ALPN offers `http/1.1`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

_ALPN = ["http/1.1"]


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate chain (server's first) and its key, as PEM in memory."""

    label: str  # how errors name it: "certificate <id>"
    chain: str
    key: str = field(repr=False)


Pairs = Sequence[tuple[Path, Path]]


Entry = tuple[ssl.SSLContext, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Loaded:
    """Certificates loaded into contexts, each with the DNS names it covers, in order; for
    `load_issued`'s, the digest of each one's chain and key (what `reuse` matches on)."""

    entries: tuple[Entry, ...] = ()
    digests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Table:
    exact: dict[str, ssl.SSLContext]
    wildcard: dict[str, ssl.SSLContext]  # keyed by the suffix after "*."
    default: ssl.SSLContext | None

    @classmethod
    def of(cls, files: Loaded, issued: Loaded) -> _Table:
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        for context, names in (*issued.entries, *files.entries):  # the snapshot's first
            for name in names:
                if name.startswith("*."):
                    wildcard.setdefault(name[2:], context)
                else:
                    exact.setdefault(name, context)
        first = files.entries or issued.entries
        return cls(exact, wildcard, first[0][0] if first else None)

    def pick(self, server_name: str | None) -> ssl.SSLContext | None:
        if not server_name:
            return self.default
        name = server_name.lower().rstrip(".")
        context = self.exact.get(name)
        if context is None:
            _, dot, parent = name.partition(".")
            context = self.wildcard.get(parent) if dot else None
        return context or self.default


class SniCertificates:
    """Certificates chosen by SNI: the file's (`update`) and the snapshot's (`install`),
    each part replaced atomically without touching the other."""

    def __init__(self, pairs: Pairs, issued: Loaded = Loaded()) -> None:
        """Load every (certificate, key) file pair; serve them with `issued`.

        Raises:
            ValueError: a certificate that is not PEM or has no DNS names.
            OSError, ssl.SSLError: a file is unreadable or a key does not match.
        """
        self._files = load_files(pairs)
        self._issued = issued
        self._table = _Table.of(self._files, issued)

    def update(self, pairs: Pairs) -> None:
        """Replace the file's certificates; on error, raise and keep the current ones."""
        files = load_files(pairs)
        self._files, self._table = files, _Table.of(files, self._issued)

    def install(self, issued: Loaded) -> None:
        """Serve `issued` (from `load_issued`) in place of the snapshot's certificates."""
        self._issued, self._table = issued, _Table.of(self._files, issued)

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
    ) -> int | None:
        context = self._table.pick(server_name)
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = context
        return None


def load_files(pairs: Pairs) -> Loaded:
    """Each (certificate chain file, key file) pair in a context of its own.

    Raises:
        ValueError: a certificate that is not PEM or has no DNS names (the file named).
        OSError, ssl.SSLError: a file is unreadable, or the key does not load or match.
    """
    entries: list[Entry] = []
    for cert, key in pairs:
        context = _context()
        context.load_cert_chain(cert, key)
        entries.append((context, _dns_names(cert.read_bytes(), str(cert))))
    return Loaded(tuple(entries))


def load_issued(
    issued: Sequence[Issued], *, scratch: Path | None = None, reuse: Loaded = Loaded()
) -> Loaded:
    """Each certificate held in memory in a context of its own: the context of `reuse` for
    the same chain and key (a change of the list loads only what changed: ~1.5 ms each),
    else one loaded through a private temporary directory (0700, files 0600, removed at once)
    made in `scratch` (made 0700 if missing; None: the system's temporary directory).

    Raises:
        ValueError: a certificate that is not PEM or has no DNS names (its label named).
        ssl.SSLError: the chain or the key does not load, or they do not match (label named).
    """
    known = dict(zip(reuse.digests, reuse.entries, strict=True))
    entries, digests = [], []
    for certificate in issued:
        digest = _digest(certificate)
        entry = known.get(digest)
        if entry is None:
            entry = known[digest] = _load(certificate, scratch)
        entries.append(entry)
        digests.append(digest)
    return Loaded(tuple(entries), tuple(digests))


def _digest(certificate: Issued) -> str:
    chain, key = certificate.chain.encode(), certificate.key.encode()
    return hashlib.sha256(b"%d:%b%b" % (len(chain), chain, key)).hexdigest()


def clear_scratch(scratch: Path) -> None:
    """Remove what a process killed while loading left in `scratch` (private keys among it).

    Raises:
        OSError: it exists and cannot be removed.
    """
    if scratch.is_dir() and not scratch.is_symlink():
        shutil.rmtree(scratch)
    elif scratch.exists() or scratch.is_symlink():
        scratch.unlink()


def _load(certificate: Issued, scratch: Path | None) -> Entry:
    names = _dns_names(certificate.chain.encode(), certificate.label)
    context = _context()
    if scratch is not None:
        scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kokoa-tls-", dir=scratch) as directory:
        chain, key = Path(directory, "chain.pem"), Path(directory, "key.pem")
        _write_private(chain, certificate.chain)
        _write_private(key, certificate.key)
        try:
            context.load_cert_chain(chain, key)
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            raise ssl.SSLError(
                f"{certificate.label}: the chain and key do not load together: {reason}"
            ) from None
    return context, names


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii", errors="replace") as file:
        file.write(text)


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(_ALPN)
    return context


def _dns_names(chain: bytes, label: str) -> tuple[str, ...]:
    """The DNS names of the first (leaf) certificate in a PEM chain, lowercase."""
    try:
        leaf = x509.load_pem_x509_certificate(chain)
    except ValueError:
        raise ValueError(f"{label}: not a PEM certificate") from None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise ValueError(f"{label}: the certificate has no subject alternative names") from None
    names = tuple(name.lower().rstrip(".") for name in san.value.get_values_for_type(x509.DNSName))
    if not names:
        raise ValueError(f"{label}: the certificate has no DNS names")
    return names
