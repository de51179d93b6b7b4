"""common.pki files: PEM round trips, modes, atomic replacement, load errors, fingerprints."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from common import pki

CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


@pytest.fixture(scope="module")
def ca() -> CA:
    return pki.create_ca()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_round_trip_mode_0600(tmp_path: Path, ca: CA) -> None:
    path = tmp_path / "ca.key"
    pki.write_key(path, ca[0])
    assert mode(path) == 0o600
    assert pki.load_private_key(path).private_numbers() == ca[0].private_numbers()
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_key_replaces_a_readable_file_with_a_private_one(tmp_path: Path, ca: CA) -> None:
    path = tmp_path / "agent.key"
    path.write_text("old")
    path.chmod(0o644)
    pki.write_key(path, ca[0])
    assert mode(path) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_certificate_chain_round_trip_mode_0644(tmp_path: Path, ca: CA) -> None:
    _, leaf = pki.issue_certificate(*ca, role="agent", name="a")
    path = tmp_path / "a.crt"
    pki.write_certificate(path, leaf, ca[1])
    assert mode(path) == 0o644
    assert pki.load_certificates(path) == [leaf, ca[1]]


def test_write_is_atomic_rename(tmp_path: Path, ca: CA) -> None:
    path = tmp_path / "ca.crt"
    pki.write_certificate(path, ca[1])
    reader = path.open("rb")  # a reader holding the old file keeps reading the old content
    other = pki.create_ca()[1]
    pki.write_certificate(path, other)
    with reader:
        assert x509.load_pem_x509_certificate(reader.read()) == ca[1]
    assert pki.load_certificates(path) == [other]
    assert sorted(tmp_path.iterdir()) == [path]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match="no certificate"):
        pki.write_certificate(tmp_path / "x.crt")
    with pytest.raises(pki.PkiError, match=r"cannot write .*x\.crt: No such file"):
        pki.write_certificate(tmp_path / "missing" / "x.crt", pki.create_ca()[1])
    (tmp_path / "dir.crt").mkdir()
    with pytest.raises(pki.PkiError, match=r"cannot write .*dir\.crt"):
        pki.write_certificate(tmp_path / "dir.crt", pki.create_ca()[1])
    assert list(tmp_path.iterdir()) == [tmp_path / "dir.crt"]  # no temporary file left


def test_load_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(pki.PkiError, match=r"cannot read .*nope\.pem"):
        pki.load_certificates(missing)
    with pytest.raises(pki.PkiError, match="cannot read"):
        pki.load_private_key(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a pem\n")
    with pytest.raises(pki.PkiError, match="no valid PEM certificate"):
        pki.load_certificates(garbage)
    with pytest.raises(pki.PkiError, match="not an unencrypted PEM private key"):
        pki.load_private_key(garbage)


def test_load_refuses_rsa_and_encrypted_keys(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.key"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(pki.PkiError, match="expected an EC private key"):
        pki.load_private_key(path)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(pki.PkiError, match="not an unencrypted PEM private key"):
        pki.load_private_key(path)


def test_fingerprint_is_sha256_of_der(ca: CA) -> None:
    der = ca[1].public_bytes(serialization.Encoding.DER)
    assert pki.fingerprint(ca[1]) == hashlib.sha256(der).hexdigest()
    assert len(pki.fingerprint(ca[1])) == 64


def test_tls_files_is_a_frozen_value(tmp_path: Path) -> None:
    files = pki.TlsFiles(cert=tmp_path / "a.crt", key=tmp_path / "a.key", ca=tmp_path / "ca.crt")
    assert files == pki.TlsFiles(tmp_path / "a.crt", tmp_path / "a.key", tmp_path / "ca.crt")
    with pytest.raises(AttributeError):
        files.cert = tmp_path  # type: ignore[misc]
