"""Helpers for the enrollment tests: an owner with an API token against a real server, and
tokens, CSRs and renewals made the way nodes and agents make them."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from common.enroll.proof import make_csr, new_key, sign_renewal
from control.auth.sessions import COOKIE_NAME
from control.db.engine import create_engine
from control.settings import Settings
from tests.control.conftest import run_in_thread
from tests.control.helpers import API, PASSWORD, check, unique

ENROLL = f"{API}/enrollment"


@dataclass
class Owner:
    """An organisation's owner, calling the API with a personal token."""

    client: httpx.Client
    org_id: str

    @property
    def base(self) -> str:
        return f"{API}/orgs/{self.org_id}"

    def node(self, tunnel_address: str = "127.0.0.1:7844", **extra: Any) -> dict[str, Any]:
        body = {
            "name": unique("node-"),
            "public_address": "127.0.0.1:443",
            "tunnel_address": tunnel_address,
        }
        return dict(check(self.client.post(f"{self.base}/nodes", json=body | extra), 201))

    def agent(self, **extra: Any) -> dict[str, Any]:
        body = {"name": unique("agent-")} | extra
        return dict(check(self.client.post(f"{self.base}/agents", json=body), 201))

    def token(self, kind: str, subject_id: str, **body: Any) -> dict[str, Any]:
        path = f"{self.base}/{'nodes' if kind == 'ingress' else 'agents'}/{subject_id}"
        reply = self.client.post(f"{path}/enrollment-tokens", json=body or None)
        return dict(check(reply, 201))

    def audit(self, action: str) -> list[dict[str, Any]]:
        page = check(self.client.get(f"{self.base}/audit", params={"action": action}), 200)
        return list(page["items"])


def owner(
    base_url: str, email: str | None = None, *, verify: ssl.SSLContext | bool = True
) -> Owner:
    """Sign up (first user, or open sign-up) and switch to a personal API token."""
    client = httpx.Client(base_url=base_url, timeout=30, verify=verify)
    body = {"email": email or unique("owner") + "@example.com", "password": PASSWORD}
    login = check(client.post(f"{API}/auth/signup", json=body), 201)
    cookie = f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}"
    headers = {"X-CSRF-Token": login["csrf_token"], "Cookie": cookie}
    token = check(client.post(f"{API}/me/tokens", json={"name": "t"}, headers=headers), 201)
    client.cookies.clear()
    client.headers["Authorization"] = f"Bearer {token['token']}"
    org_id = str(check(client.get(f"{API}/orgs"), 200)[0]["id"])
    return Owner(client, org_id)


def enroll_body(
    token: str, kind: str, key: ec.EllipticCurvePrivateKey | None = None
) -> dict[str, str]:
    return {"token": token, "kind": kind, "csr": make_csr(key or new_key())}


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def renewal_body(
    client: httpx.Client,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    new: ec.EllipticCurvePrivateKey | None = None,
) -> dict[str, str]:
    """A renewal request for `cert`, signed by `key`, for a new key."""
    nonce = check(client.post(f"{ENROLL}/challenges"), 201)["nonce"]
    csr = make_csr(new or new_key())
    signature = sign_renewal(key, nonce, cert.serial_number, csr)
    return {"certificate": pem(cert), "csr": csr, "nonce": nonce, "signature": signature}


def query(settings: Settings, sql: str, **params: Any) -> list[Any]:
    """Run `sql` on the test's database with an engine of its own (the server has another)."""

    async def run() -> list[Any]:
        engine = create_engine(settings.effective_database_url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(sql), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return run_in_thread(run())
