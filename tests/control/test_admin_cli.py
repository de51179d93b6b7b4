"""`kokoa admin …` against a real control plane (uvicorn on 127.0.0.1, a fresh SQLite file).

Most commands run in-process through typer's CliRunner (fast); one test runs the installed
`kokoa` script as a subprocess to prove the entry point. Each test signs up its own owner in
its own organisation (open sign-up), so the tests share the server but nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from control.admin.cli import app
from control.auth.sessions import COOKIE_NAME
from control.main import create_app
from tests.control import helpers
from tests.control.certificates_support import Issued, TestCA
from tests.control.databases import sqlite_url
from tests.control.helpers import API, BASE_URL, PASSWORD, check, unique
from tests.control.server import serve

KOKOA = str(Path(sys.executable).with_name("kokoa"))
CLEAN = dict.fromkeys(
    ("KOKOA_URL", "KOKOA_TOKEN", "KOKOA_ORG", "KOKOA_CA_FILE", "KOKOA_OUTPUT", "XDG_CONFIG_HOME")
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("admin-cli")
    shutil.copyfile(sqlite_template, directory / "control.db")
    settings = helpers.test_settings(
        sqlite_url(directory / "control.db"), directory, open_signup=True
    )
    with serve(create_app(settings)) as url:
        yield url


@dataclass
class Owner:
    """A signed-up owner of a new organisation, with a personal API token."""

    url: str
    email: str
    token: str
    org_id: str
    session: dict[str, str]  # headers of its browser session (cookie, CSRF, Origin)

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url + API, headers=headers, timeout=10)

    @property
    def env(self) -> dict[str, str | None]:
        return CLEAN | {"KOKOA_URL": self.url, "KOKOA_TOKEN": self.token}


def sign_up(
    url: str, *, invitation: str | None = None, verify: ssl.SSLContext | bool = True
) -> Owner:
    """A new account (owner of a new organisation, or joining by `invitation`) and a personal
    token made in its browser session (the cookie is `Secure`, so it is sent by hand here)."""
    email = f"{unique('user')}@example.com"
    body: dict[str, Any] = {"email": email, "password": PASSWORD}
    body |= {"invitation_token": invitation} if invitation else {"organisation_name": email}
    origin = {"Origin": BASE_URL}
    with httpx.Client(base_url=url + API, headers=origin, verify=verify, timeout=10) as http:
        response = http.post("/auth/signup", json=body)
        csrf = check(response, 201)["csrf_token"]
        cookie = next(
            c.split(";")[0] for c in response.headers.get_list("set-cookie") if COOKIE_NAME in c
        )
        session = {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": BASE_URL}
        made = check(http.post("/me/tokens", json={"name": "cli"}, headers=session), 201)
        org_id = check(http.get("/orgs", headers=session), 200)[0]["id"]
    return Owner(url, email, made["token"], org_id, session)


@pytest.fixture
def owner(base_url: str) -> Owner:
    return sign_up(base_url)


def admin(env: dict[str, str | None], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ok_json(env: dict[str, str | None], *args: str) -> Any:
    return json.loads(ok(admin(env, "-o", "json", *args)))


def fails(result: Result, code: int) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("kokoa admin: ") or code == 2
    return result.stderr


def test_login_saves_a_0600_file_and_refuses_a_bad_token(owner: Owner, tmp_path: Path) -> None:
    env = CLEAN | {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    path = tmp_path / "config" / "kokoa" / "admin.json"
    login = ("login", "--url", owner.url, "--token-stdin")
    err = fails(admin(env, *login, stdin="kokoa_pat_not-a-real-token\n"), 1)
    assert "unknown or revoked API token" in err
    assert not path.exists()

    out = ok(admin(env, *login, stdin=owner.token + "\n"))
    assert owner.org_id in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": owner.url, "token": owner.token, "ca_file": None}
    assert owner.org_id in ok(admin(env, "orgs", "list"))  # from the file alone

    path.chmod(0o644)
    assert "readable by others" in fails(admin(env, "orgs", "list"), 2)
    path.chmod(0o600)
    ok(admin(env, "logout"))
    assert not path.exists()
    assert "not logged in" in fails(admin(env, "orgs", "list"), 2)


def test_the_token_prompt_hides_input(owner: Owner, tmp_path: Path) -> None:
    env = CLEAN | {"XDG_CONFIG_HOME": str(tmp_path)}
    result = admin(env, "login", "--url", owner.url, stdin=owner.token + "\n")
    ok(result)
    assert owner.token not in result.output  # not echoed


def test_environment_overrides_the_saved_login(base_url: str, tmp_path: Path) -> None:
    first, second = sign_up(base_url), sign_up(base_url)
    env = CLEAN | {"XDG_CONFIG_HOME": str(tmp_path)}
    ok(admin(env, "login", "--url", first.url, "--token-stdin", stdin=first.token))
    assert [o["id"] for o in ok_json(env, "orgs", "list")] == [first.org_id]
    override = env | {"KOKOA_URL": second.url, "KOKOA_TOKEN": second.token}
    assert [o["id"] for o in ok_json(override, "orgs", "list")] == [second.org_id]
    # The saved token is never sent to another control plane.
    elsewhere = env | {"KOKOA_URL": "https://elsewhere.example"}
    assert "set KOKOA_TOKEN too" in fails(admin(elsewhere, "orgs", "list"), 2)


def test_services_create_list_show_update_disable_enable_delete(owner: Owner) -> None:
    env = owner.env
    agent = ok_json(env, "agents", "create", "--name", "edge-1")
    hostname = f"{unique('app')}.example.com"
    created = ok_json(
        env, "services", "create", "--hostname", hostname, "--origin", "http://127.0.0.1:8000",
        "--description", "the app", "--agent", "edge-1", "--read-timeout", "30",
    )  # fmt: skip
    assert created["name"] == hostname  # the default name
    assert created["agent_ids"] == [agent["id"]]
    assert created["read_timeout"] == 30

    table = ok(admin(env, "services", "list"))
    assert "HOSTNAME" in table and hostname in table and created["id"] in table
    assert ok_json(env, "services", "show", hostname)["id"] == created["id"]  # by hostname
    changed = ok_json(env, "services", "update", created["id"], "--origin", "https://10.0.0.5")
    assert changed["origin"] == "https://10.0.0.5:443"
    assert changed["description"] == "the app"  # untouched
    assert ok_json(env, "services", "update", hostname, "--no-agents")["agent_ids"] == []
    assert ok_json(env, "services", "disable", hostname)["enabled"] is False
    assert ok_json(env, "services", "list", "--disabled")[0]["id"] == created["id"]
    assert ok_json(env, "services", "list", "--enabled") == []
    assert ok_json(env, "services", "enable", hostname)["enabled"] is True
    result = admin(env, "services", "delete", hostname, "--yes")
    assert "deleted service" in ok(result) + result.stderr
    assert ok_json(env, "services", "list") == []
    assert "no service named" in fails(admin(env, "services", "show", hostname), 2)


def test_certificates_upload_list_show_replace_delete(owner: Owner, tmp_path: Path) -> None:
    env = owner.env
    ca = TestCA()
    host = f"{unique('shop')}.example.com"

    def files(issued: Issued, name: str) -> tuple[str, str]:
        chain, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        chain.write_text(issued.chain)
        key.write_text(issued.key)
        return str(chain), str(key)

    first = ca.issue(host)
    chain, key = files(first, "first")
    made = ok_json(env, "certificates", "upload", "--chain", chain, "--key", key)
    assert made["names"] == [host] and made["serial"] == first.serial
    table = ok(admin(env, "certificates", "list"))
    assert "NAMES" in table and host in table and made["id"] in table
    shown = ok(admin(env, "certificates", "show", host))  # by a name it carries
    assert made["fingerprint"] in shown and "PRIVATE KEY" not in shown
    renewed = ca.issue(host, f"www.{host}")
    chain, key = files(renewed, "renewed")
    replaced = ok_json(env, "certificates", "replace", host, "--chain", chain, "--key", key)
    assert (replaced["id"], replaced["serial"]) == (made["id"], renewed.serial)
    _, wrong = files(ca.issue(host), "wrong")
    err = fails(
        admin(env, "certificates", "replace", made["id"], "--chain", chain, "--key", wrong), 1
    )
    assert "private_key: does not match the server's certificate" in err
    missing = admin(
        env, "certificates", "upload", "--chain", str(tmp_path / "none.pem"), "--key", key
    )
    assert "does not exist" in fails(missing, 2)
    result = admin(env, "certificates", "delete", f"www.{host}", "--yes")
    assert "deleted certificate" in ok(result) + result.stderr
    assert ok_json(env, "certificates", "list") == []
    assert "no certificate carries" in fails(admin(env, "certificates", "show", host), 2)


def test_nodes_create_list_update_toggle_enroll_delete(owner: Owner) -> None:
    env = owner.env
    node = ok_json(
        env, "nodes", "create", "--name", "tokyo-1", "--public-address", "203.0.113.7:443",
        "--tunnel-address", "203.0.113.7:7844", "--region", "ap", "--label", "tier=edge",
    )  # fmt: skip
    assert node["labels"] == {"tier": "edge"}
    ok_json(env, "nodes", "create", "--name", "osaka-1", "--public-address", "203.0.113.8:443",
            "--tunnel-address", "203.0.113.8:7844")  # fmt: skip
    assert [n["name"] for n in ok_json(env, "nodes", "list")] == ["osaka-1", "tokyo-1"]
    assert [n["name"] for n in ok_json(env, "nodes", "list", "--label", "tier=edge")] == ["tokyo-1"]
    assert [n["name"] for n in ok_json(env, "nodes", "list", "--region", "ap")] == ["tokyo-1"]
    updated = ok_json(env, "nodes", "update", "tokyo-1", "--weight", "7", "--no-labels")
    assert (updated["weight"], updated["labels"], updated["region"]) == (7, {}, "ap")
    assert ok_json(env, "nodes", "disable", "tokyo-1")["enabled"] is False
    assert ok_json(env, "nodes", "enable", "tokyo-1")["enabled"] is True
    enrollment = ok_json(env, "nodes", "enroll", "tokyo-1", "--expires-in-minutes", "5")
    assert enrollment["node_id"] == node["id"]
    assert enrollment["token"] in enrollment["command"]
    ok(admin(env, "nodes", "delete", node["id"], "-y"))
    assert [n["name"] for n in ok_json(env, "nodes", "list")] == ["osaka-1"]


def test_agents_create_list_update_toggle_delete(owner: Owner) -> None:
    env = owner.env
    agent = ok_json(env, "agents", "create", "--name", "edge-a", "--label", "site=lab",
                    "--ingress-label", "tier=edge")  # fmt: skip
    assert (agent["ingress_mode"], agent["ingress_labels"]) == ("labels", {"tier": "edge"})
    assert "edge-a" in ok(admin(env, "agents", "list", "--label", "site=lab"))
    assert ok_json(env, "agents", "list", "--label", "site=other") == []
    updated = ok_json(env, "agents", "update", "edge-a", "--name", "edge-b", "--ingress-mode",
                      "all", "--no-ingress-labels")  # fmt: skip
    assert (updated["name"], updated["ingress_mode"], updated["ingress_labels"]) == (
        "edge-b", "all", {}
    )  # fmt: skip
    assert ok_json(env, "agents", "disable", "edge-b")["enabled"] is False
    assert ok_json(env, "agents", "enable", agent["id"])["enabled"] is True
    assert ok_json(env, "agents", "enroll", "edge-b")["agent_id"] == agent["id"]
    # Without --yes, the question is asked; "n" keeps it.
    assert admin(env, "agents", "delete", "edge-b", stdin="n\n").exit_code == 1
    assert len(ok_json(env, "agents", "list")) == 1
    ok(admin(env, "agents", "delete", "edge-b", stdin="y\n"))
    assert ok_json(env, "agents", "list") == []


def test_lists_follow_pagination_to_the_end_or_the_limit(owner: Owner) -> None:
    with owner.api() as api:
        for number in range(201):  # the API's pages hold at most 200
            check(api.post(f"/orgs/{owner.org_id}/agents", json={"name": f"a{number:03}"}), 201)
    names = [a["name"] for a in ok_json(owner.env, "agents", "list")]
    assert names == [f"a{n:03}" for n in range(201)]
    assert len(ok_json(owner.env, "agents", "list", "--limit", "200")) == 200
    assert len(ok_json(owner.env, "agents", "list", "--limit", "3")) == 3


def test_json_output_is_the_apis_json(owner: Owner) -> None:
    env = owner.env
    ok_json(env, "agents", "create", "--name", "edge-j")
    service = ok_json(env, "services", "create", "--hostname", f"{unique('j')}.example.com",
                      "--origin", "http://127.0.0.1:9000", "--agent", "edge-j")  # fmt: skip
    base = f"/orgs/{owner.org_id}"
    with owner.api() as api:
        assert ok_json(env, "services", "show", service["id"]) == check(
            api.get(f"{base}/services/{service['id']}"), 200
        )
        assert ok_json(env, "services", "list") == check(api.get(f"{base}/services"), 200)["items"]
        assert ok_json(env, "agents", "list") == check(api.get(f"{base}/agents"), 200)["items"]
        assert ok_json(env, "orgs", "list") == check(api.get("/orgs"), 200)
        members = check(api.get(f"{base}/members"), 200)["items"]
        assert ok_json(env, "members", "list") == members


def test_tokens_create_list_revoke_then_the_token_fails(owner: Owner) -> None:
    env = owner.env
    result = admin(env, "tokens", "create", "--name", "ci", "--role", "operator")
    out = ok(result)
    assert "shown only this once" in result.stderr
    secret = next(line.split()[1] for line in out.splitlines() if line.startswith("token "))
    assert secret.startswith("kokoa_sat_")
    listed = ok_json(env, "tokens", "list")
    assert [(t["name"], t["role"], t["revoked_at"]) for t in listed] == [("ci", "operator", None)]
    assert "kokoa_sat_" not in json.dumps(listed).replace(listed[0]["prefix"], "")

    ci = CLEAN | {"KOKOA_URL": owner.url, "KOKOA_TOKEN": secret}
    assert [o["id"] for o in ok_json(ci, "orgs", "list")] == [owner.org_id]
    ok(admin(env, "tokens", "revoke", "ci"))
    assert ok_json(env, "tokens", "list")[0]["revoked_at"] is not None
    err = fails(admin(ci, "orgs", "list"), 1)
    assert "kokoa admin: Authentication required: unknown or revoked API token" in err
    assert "kokoa admin login" in err

    err = fails(admin(env, "tokens", "create", "--personal", "--name", "laptop"), 1)
    assert "personal tokens are made from a signed-in session" in err
    assert [t["name"] for t in ok_json(env, "tokens", "list", "--personal")] == ["cli"]
    fails(admin(env, "tokens", "create", "--personal", "--name", "x", "--role", "admin"), 2)


def test_members_invite_set_role_remove(owner: Owner) -> None:
    env = owner.env
    invitation = ok_json(env, "members", "invite", "--role", "operator")
    assert invitation["token"] in invitation["link"]
    invited = sign_up(owner.url, invitation=invitation["token"])
    members = {m["email"]: m["role"] for m in ok_json(env, "members", "list")}
    assert members == {owner.email: "owner", invited.email: "operator"}
    assert ok_json(env, "members", "set-role", invited.email, "admin")["role"] == "admin"
    assert [i["accepted_at"] is not None for i in ok_json(env, "members", "invitations")] == [True]
    ok(admin(env, "members", "remove", invited.email, "--yes"))
    assert [m["email"] for m in ok_json(env, "members", "list")] == [owner.email]
    pending = ok_json(env, "members", "invite", "--email", "later@example.com")
    ok(admin(env, "members", "revoke-invitation", pending["id"]))
    fails(admin(env, "members", "set-role", owner.email, "emperor"), 2)  # not a role


def test_a_viewer_token_gets_the_403_problem(owner: Owner) -> None:
    viewer = ok_json(owner.env, "tokens", "create", "--name", "ro", "--role", "viewer")["token"]
    env = CLEAN | {"KOKOA_URL": owner.url, "KOKOA_TOKEN": viewer}
    assert ok_json(env, "services", "list") == []  # reading is allowed
    result = admin(env, "services", "create", "--hostname", "x.example.com", "--origin",
                   "http://127.0.0.1:1")  # fmt: skip
    err = fails(result, 1)
    assert err == (
        "kokoa admin: Your role does not allow this: "
        "needs the services.write permission, which viewer lacks\n"
    )
    assert result.stdout == ""


def test_a_422_names_the_field(owner: Owner) -> None:
    result = admin(owner.env, "services", "create", "--hostname", "not a host", "--origin",
                   "ftp://x")  # fmt: skip
    err = fails(result, 1)
    assert err.startswith("kokoa admin: Invalid request: body.")
    assert "\n  hostname: expected a host name" in err
    assert "\n  origin: expected http(s)://host[:port]" in err


def test_usage_errors_exit_2(owner: Owner) -> None:
    env = owner.env
    assert "nothing to change" in fails(admin(env, "agents", "update", "x"), 2)
    assert "expected key=value" in fails(admin(env, "agents", "create", "--name", "a",
                                              "--label", "novalue"), 2)  # fmt: skip
    assert admin(env, "services", "frobnicate").exit_code == 2
    bad_id = fails(admin(env, "members", "revoke-invitation", "../tokens"), 2)
    assert "is not an invitation id" in bad_id
    assert "plain http" in fails(admin(CLEAN, "login", "--url", "http://example.com"), 2)


def test_several_organisations_need_org(owner: Owner) -> None:
    with httpx.Client(base_url=owner.url + API, headers=owner.session, timeout=10) as http:
        second = check(http.post("/orgs", json={"name": "Second"}), 201)
    err = fails(admin(owner.env, "services", "list"), 2)
    assert "choose with --org or KOKOA_ORG" in err
    assert owner.org_id in err and second["id"] in err
    ok_json(owner.env, "--org", "Second", "agents", "create", "--name", "in-second")
    names = ok_json(owner.env | {"KOKOA_ORG": second["id"]}, "agents", "list")
    assert [a["name"] for a in names] == ["in-second"]
    assert ok_json(owner.env, "--org", owner.org_id, "agents", "list") == []
    assert "no single organisation named" in fails(admin(owner.env, "--org", "nope", "agents",
                                                         "list"), 2)  # fmt: skip


def test_an_unreachable_url_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    env = CLEAN | {"KOKOA_URL": f"http://127.0.0.1:{port}", "KOKOA_TOKEN": "kokoa_pat_x"}
    err = fails(admin(env, "services", "list"), 3)
    assert err.startswith(f"kokoa admin: cannot connect to http://127.0.0.1:{port}")
    assert err.count("\n") == 1


def test_tls_is_verified_and_a_ca_file_is_trusted(sqlite_template: Path, tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    shutil.copyfile(sqlite_template, tmp_path / "control.db")
    settings = helpers.test_settings(
        sqlite_url(tmp_path / "control.db"), tmp_path, open_signup=True
    )
    with serve_tls(create_app(settings), tmp_path / "cert.pem", tmp_path / "key.pem") as url:
        trusting = ssl.create_default_context(cafile=tmp_path / "ca.pem")
        owner = sign_up(url, verify=trusting)
        env = CLEAN | {"XDG_CONFIG_HOME": str(tmp_path / "config")}
        login = ("login", "--url", url, "--token-stdin")
        err = fails(admin(env, *login, stdin=owner.token), 3)
        assert "the TLS certificate is not trusted" in err and "--ca-file" in err, err
        ok(admin(env, *login, "--ca-file", str(tmp_path / "ca.pem"), stdin=owner.token))
        assert [o["id"] for o in ok_json(env, "orgs", "list")] == [owner.org_id]  # CA saved


@contextmanager
def serve_tls(app: FastAPI, cert: Path, key: Path) -> Iterator[str]:
    """tests/control/server.py's serve, over HTTPS with `cert`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, ssl_certfile=cert, ssl_keyfile=key
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-tls")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_the_kokoa_admin_entry_point(owner: Owner, tmp_path: Path) -> None:
    """The installed `kokoa` script finds `admin` through its entry point."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    login = subprocess.run(
        [KOKOA, "admin", "-o", "json", "login", "--url", owner.url, "--token-stdin"],
        input=owner.token, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert [o["id"] for o in json.loads(login.stdout)] == [owner.org_id]
    assert "saved to" in login.stderr
    assert (tmp_path / "kokoa" / "admin.json").is_file()
