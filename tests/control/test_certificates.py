"""Public (HTTPS) certificates through the API: what an upload must be (each refusal names its
field), the key kept encrypted and never shown, replace/delete, audit, roles and tenancy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID
from fastapi import FastAPI
from sqlalchemy import select

from control.db.models import PublicCertificate
from control.main import runtime_of
from control.services import public_tls
from tests.control.certificates_support import TestCA, key_pem
from tests.control.helpers import API, check, first_org, join, signup

MakeClient = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def owner(make_client: MakeClient) -> tuple[httpx.AsyncClient, str]:
    client = make_client()
    await signup(client, "owner@example.com")
    return client, f"{API}/orgs/{await first_org(client)}"


def refused(response: httpx.Response, field: str) -> str:
    """The reason of a 422 whose first error names `field` of the body."""
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:kokoa:problem:validation-error"
    error = problem["errors"][0]
    assert error["loc"] == ["body", field], problem
    assert problem["detail"].startswith(f"body.{field}: ")
    return str(error["msg"])


@pytest.mark.parametrize("kind", ["ec", "rsa"])
async def test_upload_shows_the_certificate_and_never_the_key(
    owner: tuple[httpx.AsyncClient, str], app: FastAPI, kind: str
) -> None:
    client, base = owner
    ca = TestCA(intermediate=True)
    issued = ca.issue("www.example.com", "*.apps.example.com", kind=kind)
    made = check(await client.post(f"{base}/certificates", json=issued.body()), 201)
    assert made["names"] == ["*.apps.example.com", "www.example.com"]
    assert made["key_type"] == ("ec-p256" if kind == "ec" else "rsa-2048")
    assert made["serial"] == issued.serial
    assert made["issuer"] == "CN=Kokoa Test Root Intermediate"
    assert made["subject"] == "CN=www.example.com"
    assert made["chain"] == issued.chain  # already clean PEM: stored as sent
    got = check(await client.get(f"{base}/certificates/{made['id']}"), 200)
    listed = check(await client.get(f"{base}/certificates"), 200)
    assert listed["total"] == 1 and listed["items"] == [got] and got == made
    for response_text in (str(made), str(got), str(listed)):
        assert "PRIVATE KEY" not in response_text and "private_key" not in response_text
    # At rest: only the encrypted PKCS#8, which the CA passphrase opens to the same key.
    rt = runtime_of(app)
    async with rt.sessionmaker() as db:
        row = (await db.execute(select(PublicCertificate))).scalar_one()
    assert row.encrypted_key.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert issued.key.split("-----")[2] not in row.encrypted_key
    plain = public_tls.unseal(row.encrypted_key, rt.ca.passphrase())
    loaded = serialization.load_pem_private_key(plain.encode(), password=None)
    assert loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(public_tls.KeyUnreadable):
        public_tls.unseal(row.encrypted_key, b"another passphrase")


async def test_refusals_name_the_field_and_the_reason(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    client, base = owner
    url = f"{base}/certificates"
    ca = TestCA(intermediate=True)
    good = ca.issue("shop.example.com")
    other = ca.issue("shop.example.com")
    now = datetime.now(UTC)

    async def post(**body: Any) -> httpx.Response:
        return await client.post(url, json=good.body() | body)

    reason = refused(await post(private_key=other.key), "private_key")
    assert "does not match the server's certificate (shop.example.com)" in reason
    assert "no PEM certificate" in refused(await post(chain="garbage"), "chain")
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert "certificate 1 is not a valid X.509" in refused(await post(chain=broken), "chain")
    assert "not closed" in refused(await post(chain=good.chain[:-30]), "chain")
    assert "the key goes in private_key" in refused(
        await post(chain=good.chain + good.key), "chain"
    )
    assert "exactly one PEM private key" in refused(await post(private_key="nope"), "private_key")
    assert "at most 16384" in refused(await post(chain="A" * 16_385), "chain")
    expired = ca.issue(
        "old.example.com", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    assert "expired at" in refused(await client.post(url, json=expired.body()), "chain")
    pem = serialization.Encoding.PEM
    reversed_chain = (ca.intermediates[0].public_bytes(pem) + good.cert.public_bytes(pem)).decode()
    assert "did not issue" in refused(
        await post(chain=good.chain + TestCA("Stranger").pem), "chain"
    )
    assert "the key belongs to certificate 2" in refused(await post(chain=reversed_chain), "chain")
    encrypted = serialization.load_pem_private_key(good.key.encode(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert "encrypted keys are not accepted" in refused(
        await post(private_key=encrypted.decode()), "private_key"
    )
    nothing = check(await client.get(url), 200)
    assert nothing["total"] == 0
    check(await post(), 201)
    assert check(await post(), 409)["type"] == "urn:kokoa:problem:conflict"


async def test_replace_delete_and_the_audit_log(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    ca = TestCA()
    first, renewed = ca.issue("a.example.com"), ca.issue("a.example.com", "b.example.com")
    made = check(await client.post(f"{base}/certificates", json=first.body()), 201)
    url = f"{base}/certificates/{made['id']}"
    mismatch = renewed.body() | {"private_key": first.key}
    refused(await client.put(url, json=mismatch), "private_key")
    assert check(await client.get(url), 200)["serial"] == first.serial  # unchanged
    replaced = check(await client.put(url, json=renewed.body()), 200)
    assert replaced["id"] == made["id"] and replaced["serial"] == renewed.serial
    assert replaced["names"] == ["a.example.com", "b.example.com"]
    assert replaced["created_at"] == made["created_at"]
    check(await client.delete(url), 204)
    check(await client.get(url), 404)
    check(await client.put(url, json=first.body()), 404)
    events = check(await client.get(f"{base}/audit", params={"target_id": made["id"]}), 200)
    deleted, updated, uploaded = events["items"]
    assert [e["action"] for e in events["items"]] == [
        "public_certificate.delete",
        "public_certificate.replace",
        "public_certificate.upload",
    ]
    assert uploaded["target_type"] == "public_certificate"
    assert uploaded["target_label"] == "a.example.com"
    assert uploaded["after"]["serial"] == first.serial and uploaded["before"] is None
    assert updated["before"]["serial"] == first.serial
    assert updated["after"]["serial"] == renewed.serial
    assert updated["after"]["names"] == ["a.example.com", "b.example.com"]
    assert deleted["before"]["fingerprint"] == replaced["fingerprint"]
    assert "PRIVATE KEY" not in str(events)


@pytest.mark.parametrize("settings_overrides", [{"open_signup": True}])
async def test_roles_and_tenancy(make_client: MakeClient) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    org = await first_org(owner)
    base = f"{API}/orgs/{org}/certificates"
    ca = TestCA()
    made = check(await owner.post(base, json=ca.issue("a.example.com").body()), 201)
    viewer = (await join(owner, org, "viewer", make_client(), "viewer@example.com")).client
    operator = (await join(owner, org, "operator", make_client(), "op@example.com")).client
    assert check(await viewer.get(base), 200)["total"] == 1
    check(await viewer.get(f"{base}/{made['id']}"), 200)
    assert check(await viewer.post(base, json=ca.issue("v.example.com").body()), 403)
    check(await viewer.put(f"{base}/{made['id']}", json=ca.issue("a.example.com").body()), 403)
    check(await viewer.delete(f"{base}/{made['id']}"), 403)
    check(await operator.post(base, json=ca.issue("o.example.com").body()), 201)
    # Another organisation sees none of it, by list or by id, and cannot touch it.
    stranger = make_client()
    await signup(stranger, "stranger@example.com", organisation_name="Other")
    theirs = f"{API}/orgs/{await first_org(stranger)}/certificates"
    assert check(await stranger.get(theirs), 200)["total"] == 0
    check(await stranger.get(f"{theirs}/{made['id']}"), 404)
    check(await stranger.delete(f"{theirs}/{made['id']}"), 404)
    check(await stranger.get(f"{base}/{made['id']}"), 404)
    check(await stranger.get(base), 404)
    # The same certificate may be uploaded by another organisation: its copy is its own.
    again = ca.issue("a.example.com")
    check(await stranger.post(theirs, json=again.body()), 201)
    check(await owner.post(base, json=again.body()), 201)
    assert check(await owner.get(f"{base}/{made['id']}"), 200)["id"] == made["id"]


def test_a_certificate_with_a_malformed_extension_is_refused_not_a_crash() -> None:
    """cryptography parses extensions lazily: a broken one must be a refusal naming the chain
    (found by reading the parser, not by luck: the fuzzer rarely makes valid signatures)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broken.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01"),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(public_tls.CertificateRejected) as refused_:
        public_tls.inspect(chain, key_pem(key), now)
    assert refused_.value.field == "chain"
    assert "cannot be read" in refused_.value.reason
