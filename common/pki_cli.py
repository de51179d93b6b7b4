"""`kokoa pki …`: make a CA, issue agent and ingress certificates, show a certificate.

Exit status: 0 on success, 1 when the operation failed (the reason is on stderr), 2 on a usage
error. Nothing is overwritten unless asked: a failed command leaves the files as they were.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from common import pki

app = typer.Typer(help="Kokoa's certificates (see docs/pki.md).", no_args_is_help=True)


_SAN_KINDS: dict[type[x509.GeneralName], str] = {
    x509.DNSName: "DNS",
    x509.IPAddress: "IP",
    x509.UniformResourceIdentifier: "URI",
}
_EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
}


class RoleChoice(enum.StrEnum):
    agent = "agent"
    ingress = "ingress"


def _fail(message: str) -> NoReturn:
    typer.echo(f"kokoa pki: error: {message}", err=True)
    raise typer.Exit(1)


def _refuse_existing(*paths: Path, hint: str = "") -> None:
    for path in paths:
        if path.exists() or path.is_symlink():
            _fail(f"{path} already exists; not overwriting it{hint}")


@app.command("init-ca")
def init_ca(
    directory: Annotated[Path, typer.Argument(help="Where to write ca.crt and ca.key.")],
    name: Annotated[str, typer.Option(help="The CA's common name.")] = "Kokoa CA",
    days: Annotated[int, typer.Option(min=1, help="Lifetime in days.")] = 3650,
) -> None:
    """Create a CA: DIRECTORY/ca.crt and DIRECTORY/ca.key (mode 0600). Refuses to overwrite."""
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    _refuse_existing(cert_path, key_path)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key, cert = pki.create_ca(name, days=days)
        pki.write_key(key_path, key)
        pki.write_certificate(cert_path, cert)
    except (OSError, pki.PkiError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {cert_path} and {key_path}")
    typer.echo(f"sha256 fingerprint: {pki.fingerprint(cert)}")


@app.command()
def issue(
    directory: Annotated[Path, typer.Argument(help="The CA's directory (ca.crt, ca.key).")],
    role: Annotated[RoleChoice, typer.Option(help="What the certificate is for.")],
    name: Annotated[str, typer.Option(help="Agent id or ingress node name.")],
    org: Annotated[str | None, typer.Option(help="Organisation the identity belongs to.")] = None,
    dns: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="DNS name agents dial (ingress; repeatable)."),
    ] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option(metavar="ADDR", help="IP address agents dial (ingress; repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Lifetime in days.")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="Write OUT.crt and OUT.key (default: DIRECTORY/NAME).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Issue a certificate and a new key (mode 0600) for an agent or an ingress node."""
    prefix = out if out is not None else directory / name
    cert_path, key_path = (
        prefix.with_name(f"{prefix.name}.crt"),
        prefix.with_name(f"{prefix.name}.key"),
    )
    if not force:
        _refuse_existing(cert_path, key_path, hint=" (use --force to replace it)")
    try:
        ca_key = pki.load_private_key(directory / "ca.key")
        ca_cert = pki.load_certificates(directory / "ca.crt")[0]
        key, cert = pki.issue_certificate(
            ca_key, ca_cert, role=role.value, name=name, org=org,
            dns_names=dns or (), ip_addresses=ip or (), days=days,
        )  # fmt: skip
        assert key is not None  # generated, since no public key was given
        pki.write_key(key_path, key)
        pki.write_certificate(cert_path, cert)
    except pki.PkiError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {cert_path} and {key_path}")
    typer.echo(
        f"identity: {_identity(cert)}; valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%MZ}"
    )


@app.command()
def show(
    cert: Annotated[Path, typer.Argument(help="A PEM file with one or more certificates.")],
) -> None:
    """Print each certificate's identity, serial, validity, SANs and fingerprint."""
    try:
        certs = pki.load_certificates(cert)
    except pki.PkiError as exc:
        _fail(str(exc))
    blocks = []
    for index, certificate in enumerate(certs, 1):
        try:
            blocks.append("\n".join(f"{k + ':':<13} {v}" for k, v in _describe(certificate)))
        except ValueError as exc:  # extensions are parsed on first access
            _fail(f"{cert}: certificate {index} cannot be parsed: {exc}")
    typer.echo("\n\n".join(blocks))


def _describe(cert: x509.Certificate) -> Iterator[tuple[str, str]]:
    yield "identity", _identity(cert)
    yield "subject", cert.subject.rfc4514_string()
    yield "issuer", cert.issuer.rfc4514_string()
    yield "serial", f"{cert.serial_number:x}"
    yield "not before", f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%SZ}"
    yield "not after", f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%SZ}"
    yield "status", _status(cert)
    yield "SANs", ", ".join(_san_strings(cert)) or "none"
    yield "usage", ", ".join(_usages(cert)) or "none"
    yield "sha256", pki.fingerprint(cert)


def _status(cert: x509.Certificate) -> str:
    now = datetime.now(UTC)
    if now < cert.not_valid_before_utc:
        return "not yet valid"
    if now > cert.not_valid_after_utc:
        return "expired"
    return f"valid ({(cert.not_valid_after_utc - now).days} days left)"


def _identity(cert: x509.Certificate) -> str:
    try:
        identity = pki.identity_from_certificate(cert)
    except pki.PkiError as exc:
        return f"none ({exc})"
    org = f" of org {identity.org}" if identity.org else ""
    return f"{identity.role} {identity.name}{org}"


def _san_strings(cert: x509.Certificate) -> Iterator[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return
    for general_name in san:
        kind = _SAN_KINDS.get(type(general_name), type(general_name).__name__)
        yield f"{kind}:{general_name.value}"


def _usages(cert: x509.Certificate) -> Iterator[str]:
    for extension in cert.extensions:
        value = extension.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            yield f"CA (pathlen {value.path_length})"
        elif isinstance(value, x509.ExtendedKeyUsage):
            yield from (_EKU_NAMES.get(oid, oid.dotted_string) for oid in value)
