"""The channel hello's proof: a signature by the tunnel key over the nonce and the serial."""

from __future__ import annotations

from common.enroll.proof import make_csr, new_key, sign_channel, sign_renewal, verify_channel
from common.pki.issue import create_ca, issue_certificate


def test_a_hello_signed_by_the_tunnel_key_verifies() -> None:
    ca_key, ca_cert = create_ca()
    key, cert = issue_certificate(ca_key, ca_cert, role="agent", name="a1", org="o1")
    assert key is not None
    signature = sign_channel(key, "nonce-1", cert.serial_number)
    assert verify_channel(cert, "nonce-1", signature)


def test_another_nonce_serial_key_or_garbage_fails() -> None:
    ca_key, ca_cert = create_ca()
    key, cert = issue_certificate(ca_key, ca_cert, role="agent", name="a1", org="o1")
    _, other = issue_certificate(ca_key, ca_cert, role="agent", name="a1", org="o1")
    assert key is not None
    signature = sign_channel(key, "nonce-1", cert.serial_number)
    assert not verify_channel(cert, "nonce-2", signature)
    assert not verify_channel(other, "nonce-1", signature)  # other serial and key
    assert not verify_channel(
        cert, "nonce-1", sign_channel(new_key(), "nonce-1", cert.serial_number)
    )
    assert not verify_channel(cert, "nonce-1", "not base64 !!")
    assert not verify_channel(cert, "nonce-1", "")


def test_a_renewal_signature_is_not_a_channel_hello() -> None:
    ca_key, ca_cert = create_ca()
    key, cert = issue_certificate(ca_key, ca_cert, role="agent", name="a1", org="o1")
    assert key is not None
    renewal = sign_renewal(key, "nonce-1", cert.serial_number, make_csr(key))
    assert not verify_channel(cert, "nonce-1", renewal)
