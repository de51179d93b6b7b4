"""Setting the scene through the REST API (faster than clicking): a signed-in client that
keeps the session cookie and sends the CSRF token and Origin a browser would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.control.helpers import PASSWORD

API = "/api/v1"
COOKIE = "__Host-kokoa_session"


class ApiUser:
    def __init__(self, base_url: str) -> None:
        # The cookie is Secure; httpx would not send it over http://127.0.0.1, so we do.
        self.http = httpx.Client(base_url=base_url, headers={"Origin": base_url}, timeout=10)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = self.http.request(method, API + path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        if COOKIE in response.cookies:
            self.http.headers["Cookie"] = f"{COOKIE}={response.cookies[COOKIE]}"
        return response.json() if response.content else None

    def signup(self, email: str, **extra: Any) -> dict[str, Any]:
        info: dict[str, Any] = self.call(
            "POST", "/auth/signup", 201, json={"email": email, "password": PASSWORD} | extra
        )
        self.http.headers["X-CSRF-Token"] = info["csrf_token"]
        return info

    def first_org(self) -> str:
        return str(self.call("GET", "/orgs", 200)[0]["id"])


def owner_with_service(base_url: str) -> tuple[ApiUser, str, dict[str, Any]]:
    """The first account (owner of a new organisation) and one service in it."""
    owner = ApiUser(base_url)
    owner.signup("owner@example.com", organisation_name="Acme")
    org = owner.first_org()
    service = owner.call(
        "POST",
        f"/orgs/{org}/services",
        201,
        json={"name": "web", "hostname": "app.example.com", "origin": "http://127.0.0.1:3000"},
    )
    return owner, org, service


def add_member(owner: ApiUser, org: str, role: str, email: str) -> ApiUser:
    token = owner.call("POST", f"/orgs/{org}/invitations", 201, json={"role": role})["token"]
    member = ApiUser(str(owner.http.base_url))
    member.signup(email, invitation_token=token)
    return member
