"""Issued certificates and their renewal against a real server, on SQLite and PostgreSQL:
what a certificate says, and that renewal needs the current, unexpired, unrevoked certificate's
key and an enabled node or agent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from fastapi import FastAPI

from common import pki
from common.enroll.proof import make_csr, new_key, sign_renewal
from control.settings import Settings
from tests.control.enroll_support import (
    ENROLL,
    Owner,
    enroll_body,
    owner,
    pem,
    query,
    renewal_body,
)
from tests.control.helpers import Clock, check
from tests.control.server import serve

RENEWALS = f"{ENROLL}/renewals"


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


@pytest.fixture
def anonymous(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


@dataclass
class Enrolled:
    subject: dict[str, Any]
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    roots: list[x509.Certificate]
    reply: dict[str, Any]


def enroll(boss: Owner, client: httpx.Client, kind: str, subject: dict[str, Any]) -> Enrolled:
    key = new_key()
    token = boss.token(kind, subject["id"])["token"]
    reply = check(client.post(ENROLL, json=enroll_body(token, kind, key)), 201)
    cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
    roots = x509.load_pem_x509_certificates(reply["ca_certificates"].encode())
    return Enrolled(subject, key, cert, roots, reply)


def test_an_agent_certificate_names_the_agent_and_nothing_else(
    boss: Owner, anonymous: httpx.Client
) -> None:
    agent = boss.agent()
    got = enroll(boss, anonymous, "agent", agent)
    identity = pki.verify_peer(got.cert, [], got.roots, role="agent")
    assert (identity.role, identity.name, identity.org) == ("agent", agent["id"], boss.org_id)
    uri = f"urn:kokoa:org:{boss.org_id}:agent:{agent['id']}"
    assert got.reply["subject"] == {
        "kind": "agent",
        "id": agent["id"],
        "org_id": boss.org_id,
        "name": agent["name"],
        "identity": uri,
        "tunnel_address": None,
        "public_address": None,
    }
    san = got.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(name.value) for name in san] == [uri]  # no DNS name, no IP address
    eku = got.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = got.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.key_encipherment
    basic = got.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    assert got.cert.public_key() == got.key.public_key()  # the CSR's key: ours never left us


def test_an_ingress_certificate_names_its_tunnel_address(
    boss: Owner, anonymous: httpx.Client
) -> None:
    by_ip = enroll(boss, anonymous, "ingress", boss.node("192.0.2.7:7844"))
    identity = pki.verify_peer(by_ip.cert, [], by_ip.roots, role="ingress", server_name="192.0.2.7")
    assert identity.name == by_ip.subject["id"]
    assert by_ip.reply["subject"]["tunnel_address"] == "192.0.2.7:7844"
    eku = by_ip.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    by_name = enroll(boss, anonymous, "ingress", boss.node("tunnel.example.com:7844"))
    pki.verify_peer(
        by_name.cert, [], by_name.roots, role="ingress", server_name="tunnel.example.com"
    )
    with pytest.raises(pki.PkiError):
        pki.verify_peer(by_name.cert, [], by_name.roots, role="ingress", server_name="evil.example")


@pytest.mark.parametrize("settings_overrides", [{}, {"certificate_lifetime": timedelta(hours=3)}])
def test_the_lifetime_is_the_configured_one_and_renewal_starts_at_two_thirds(
    boss: Owner, anonymous: httpx.Client, settings_overrides: dict[str, Any]
) -> None:
    lifetime = settings_overrides.get("certificate_lifetime", timedelta(days=7))
    got = enroll(boss, anonymous, "agent", boss.agent())
    issued = got.cert.not_valid_before_utc + pki.CLOCK_SKEW
    assert abs(got.cert.not_valid_after_utc - issued - lifetime) < timedelta(seconds=5)
    renew_after = datetime.fromisoformat(got.reply["renew_after"])
    assert abs(renew_after - (issued + lifetime * 2 / 3)) < timedelta(seconds=5)


def test_renewal_gives_a_new_key_the_same_identity(
    settings: Settings, boss: Owner, anonymous: httpx.Client
) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    new_key_ = new_key()
    reply = check(
        anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, got.key, new_key_)), 201
    )
    renewed = x509.load_pem_x509_certificate(reply["certificate"].encode())
    assert renewed.public_key() == new_key_.public_key()
    assert renewed.serial_number != got.cert.serial_number
    old_id = pki.identity_from_certificate(got.cert)
    new_id = pki.identity_from_certificate(renewed)
    assert (new_id.name, new_id.role, new_id.org) == (old_id.name, old_id.role, old_id.org)
    [event] = boss.audit("certificate.renew")
    assert event["before"] == {"serial": f"{got.cert.serial_number:x}"}
    assert event["after"] == {"serial": f"{renewed.serial_number:x}"}
    rows = query(settings, "SELECT serial, via, previous_serial FROM issued_certificates")
    assert sorted((row.via, row.previous_serial) for row in rows) == [
        ("enroll", None),
        ("renew", f"{got.cert.serial_number:x}"),
    ]


def test_renewal_is_refused_for_a_disabled_or_deleted_agent(
    settings: Settings, boss: Owner, anonymous: httpx.Client
) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    agent_path = f"{boss.base}/agents/{got.subject['id']}"
    check(boss.client.post(f"{agent_path}/disable"), 200)
    revoked_at = "SELECT revoked_at FROM issued_certificates WHERE serial = :serial"
    [[when]] = query(settings, revoked_at, serial=f"{got.cert.serial_number:x}")
    assert when is not None
    refused = anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, got.key))
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:kokoa:problem:identity-disabled"
    check(boss.client.post(f"{agent_path}/enable"), 200)
    # disabling revoked the certificate for good: enabled again, the agent enrolls anew
    revoked = anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, got.key))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    again = enroll(boss, anonymous, "agent", got.subject)
    check(anonymous.post(RENEWALS, json=renewal_body(anonymous, again.cert, again.key)), 201)
    assert boss.client.delete(agent_path).status_code == 204
    for old in (got, again):
        gone = anonymous.post(RENEWALS, json=renewal_body(anonymous, old.cert, old.key))
        assert gone.status_code == 403
    failures = boss.audit("certificate.renew_failed")
    assert len(failures) == 4
    assert {event["target_id"] for event in failures} == {got.subject["id"]}


def test_renewal_is_refused_for_a_disabled_node(boss: Owner, anonymous: httpx.Client) -> None:
    got = enroll(boss, anonymous, "ingress", boss.node())
    check(boss.client.post(f"{boss.base}/nodes/{got.subject['id']}/disable"), 200)
    refused = anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, got.key))
    assert refused.status_code == 403


def test_an_expired_certificate_cannot_renew(
    boss: Owner, anonymous: httpx.Client, clock: Clock
) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    clock.advance(days=7, minutes=1)
    refused = anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, got.key))
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"] or "validity" in refused.json()["detail"]


def test_a_foreign_certificate_with_the_same_identity_cannot_renew(
    boss: Owner, anonymous: httpx.Client
) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    ca_key, ca_cert = pki.create_ca(got.roots[0].subject.rfc4514_string().split("=", 1)[1])
    key = new_key()
    _, forged = pki.issue_certificate(
        ca_key, ca_cert, role="agent", name=got.subject["id"], org=boss.org_id,
        public_key=key.public_key(),
    )  # fmt: skip
    forged = _with_serial(forged, ca_key, got.cert.serial_number)
    refused = anonymous.post(RENEWALS, json=renewal_body(anonymous, forged, key))
    assert refused.status_code == 401
    assert refused.json()["type"] == "urn:kokoa:problem:renewal-refused"


def _with_serial(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, serial: int
) -> x509.Certificate:
    """`cert` re-signed with another serial (the one of a certificate we did issue)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(serial)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, hashes.SHA256())


def test_the_proof_must_come_from_the_current_key(boss: Owner, anonymous: httpx.Client) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    other = new_key()
    refused = anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, other))
    assert refused.status_code == 401
    assert "signature" in refused.json()["detail"]
    body = renewal_body(anonymous, got.cert, got.key)
    body["csr"] = make_csr(new_key())  # a signature over another CSR
    assert anonymous.post(RENEWALS, json=body).status_code == 401


def test_the_nonce_must_be_ours_and_fresh(
    boss: Owner, anonymous: httpx.Client, clock: Clock
) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    csr = make_csr(new_key())
    for nonce in ("not-a-nonce", "A" * 54):
        body = {
            "certificate": pem(got.cert),
            "csr": csr,
            "nonce": nonce,
            "signature": sign_renewal(got.key, nonce, got.cert.serial_number, csr),
        }
        refused = anonymous.post(RENEWALS, json=body)
        assert refused.status_code == 401, refused.text
    stale = renewal_body(anonymous, got.cert, got.key)
    clock.advance(minutes=6)
    refused = anonymous.post(RENEWALS, json=stale)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


def test_a_revoked_certificate_cannot_renew(
    settings: Settings, boss: Owner, anonymous: httpx.Client
) -> None:
    got = enroll(boss, anonymous, "agent", boss.agent())
    query(
        settings,
        "UPDATE issued_certificates SET revoked_at = CURRENT_TIMESTAMP WHERE serial = :serial",
        serial=f"{got.cert.serial_number:x}",
    )
    refused = anonymous.post(RENEWALS, json=renewal_body(anonymous, got.cert, got.key))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
