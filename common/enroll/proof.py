"""Keys, CSRs and the proofs signed by the current certificate's key (renewal, channel hello).

The signed message binds the server's nonce, the current certificate's serial and the new CSR,
under a fixed context string, so that a signature can serve for nothing but this one renewal:

    b"kokoa certificate renewal v1\\n" + nonce + b"\\n" + hex(serial) + b"\\n" + SHA-256(CSR DER)

A control-channel hello signs the nonce and serial under its own context string, so neither
signature can stand in for the other:

    b"kokoa channel v1\\n" + nonce + b"\\n" + hex(serial)
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RENEWAL_CONTEXT = b"kokoa certificate renewal v1\n"


def new_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 key: the only kind common.pki issues for."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: ec.EllipticCurvePrivateKey) -> str:
    """A PEM CSR for `key`. Its subject is informational: the control plane decides the name."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kokoa enrollment")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def renewal_message(nonce: str, serial: int, csr_der: bytes) -> bytes:
    digest = hashlib.sha256(csr_der).digest()
    return RENEWAL_CONTEXT + nonce.encode() + b"\n" + f"{serial:x}".encode() + b"\n" + digest


def sign_renewal(key: ec.EllipticCurvePrivateKey, nonce: str, serial: int, csr_pem: str) -> str:
    """The base64url signature of the renewal message by the current key."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    der = csr.public_bytes(serialization.Encoding.DER)
    signature = key.sign(renewal_message(nonce, serial, der), ec.ECDSA(hashes.SHA256()))
    return base64.urlsafe_b64encode(signature).decode().rstrip("=")


def verify_renewal(
    public_key: ec.EllipticCurvePublicKey, signature: str, nonce: str, serial: int, csr_der: bytes
) -> bool:
    """Whether `signature` is the current key's signature of this renewal."""
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        public_key.verify(raw, renewal_message(nonce, serial, csr_der), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


CHANNEL_CONTEXT = b"kokoa channel v1\n"


def channel_message(nonce: str, serial: int) -> bytes:
    """What a control-channel hello signs: the context, the server's nonce, the serial in hex."""
    return CHANNEL_CONTEXT + nonce.encode() + b"\n" + f"{serial:x}".encode()


def sign_channel(key: ec.EllipticCurvePrivateKey, nonce: str, serial: int) -> str:
    """The base64url signature of the channel hello by the tunnel key."""
    signature = key.sign(channel_message(nonce, serial), ec.ECDSA(hashes.SHA256()))
    return base64.urlsafe_b64encode(signature).decode().rstrip("=")


def verify_channel(cert: x509.Certificate, nonce: str, signature: str) -> bool:
    """Whether `signature` is the hello by the key `cert` certifies, for `nonce` and its serial.

    Only a P-256 key can pass (the only kind common.pki issues for).
    """
    public_key = cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        message = channel_message(nonce, cert.serial_number)
        public_key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
