"""Public (HTTPS) test certificates made with `cryptography`: a CA, an optional intermediate,
and server certificates of the key type, names and validity a test asks for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

PEM = serialization.Encoding.PEM


def _key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> str:
    return key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass(frozen=True)
class Issued:
    """A server certificate: its chain (server's first) and key as an upload sends them."""

    cert: x509.Certificate
    chain: str
    key: str

    def body(self) -> dict[str, str]:
        return {"chain": self.chain, "private_key": self.key}

    @property
    def serial(self) -> str:
        return f"{self.cert.serial_number:x}"


class TestCA:
    """A root CA (and, with `intermediate`, an intermediate that signs the servers')."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str = "Kokoa Test Root", *, intermediate: bool = False) -> None:
        now = datetime.now(UTC)
        self.key = _key("ec")
        self.cert = self._ca(_name(name), self.key, _name(name), self.key, now)
        self.signer_key, self.signer = self.key, self.cert
        self.intermediates: list[x509.Certificate] = []
        if intermediate:
            key = _key("ec")
            cert = self._ca(_name(f"{name} Intermediate"), key, _name(name), self.key, now)
            self.signer_key, self.signer = key, cert
            self.intermediates.append(cert)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(PEM).decode()

    @staticmethod
    def _ca(
        subject: x509.Name,
        key: CertificateIssuerPrivateKeyTypes,
        issuer: x509.Name,
        issuer_key: CertificateIssuerPrivateKeyTypes,
        now: datetime,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(issuer_key, hashes.SHA256())
        )

    def issue(
        self,
        *names: str,
        kind: str = "ec",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        """A server certificate for `names` (the first is also its CN), valid from a day ago
        for 90 days unless told otherwise; `kind` "ec" (P-256) or "rsa" (2048 bits)."""
        now = datetime.now(UTC)
        key = _key(kind)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.signer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(self.signer_key, hashes.SHA256())
        )
        chain = "".join(c.public_bytes(PEM).decode() for c in [cert, *self.intermediates])
        return Issued(cert, chain, key_pem(key))
