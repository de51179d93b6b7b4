"""`kokoa local up`, the control-plane part: a control plane on SQLite in the run directory, its
first admin, and the demo's ingress nodes, agent and service registered through the REST API
and enrolled with one-time tokens — the way an operator does it (docs/operations.md).

The control plane runs in development mode on plain http on 127.0.0.1. That is enough here:
enrollment and the control channel accept http to a loopback address, and browsers treat
http://localhost as a secure context, so they keep the `Secure` `__Host-` session cookie.
`public_url` is http://localhost:PORT (the URL printed, the `Origin` a browser sends);
http://127.0.0.1:PORT is an extra origin, and the address the processes dial.

Only `kokoa control …` subprocesses and HTTP: common/ still imports no other package.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from common.localrun_layout import Layout, NodePorts
from common.localrun_procs import LOOPBACK, Processes, http_get, kokoa_command, wait_until

ADMIN_EMAIL = "admin@example.com"
ORG_NAME = "Local demo"
TOKEN_MINUTES = 10  # the processes redeem theirs within seconds


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """The control plane of a local run: its directory (settings, database) and port."""

    layout: Layout

    @property
    def directory(self) -> Path:
        return self.layout.root / "control"

    @property
    def settings_file(self) -> Path:
        return self.directory / "control.yaml"

    @property
    def url(self) -> str:
        """`public_url`: what a browser opens."""
        return f"http://localhost:{self.layout.control_port}"

    @property
    def dial(self) -> str:
        """What the processes and this module dial (no name to resolve)."""
        return f"http://{LOOPBACK}:{self.layout.control_port}"


@dataclass(frozen=True, slots=True)
class Admin:
    email: str
    password: str  # printed once, never stored


@dataclass(frozen=True, slots=True)
class Registration:
    """What the API answered: ids, and a one-time enrollment token per process."""

    org_id: str
    node_ids: dict[str, str]  # by node name
    agent_id: str
    service_id: str
    tokens: dict[str, str]  # by process name


def write_settings(cp: ControlPlane) -> None:
    """control.yaml, 0600: it holds the run's random secret key (sessions, CSRF, the CA key)."""
    root = cp.directory
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings = {
        "mode": "development",  # allows the http:// public_url
        "secret_key": secrets.token_urlsafe(48),
        "data_dir": str(root),
        "public_url": cp.url,
        "extra_origins": [f"http://{LOOPBACK}:{cp.layout.control_port}"],
        "listen_host": LOOPBACK,
        "listen_port": cp.layout.control_port,
        "log_format": "text",
    }
    fd = os.open(cp.settings_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(settings, out, sort_keys=False)


def create_admin(cp: ControlPlane) -> Admin:
    """`kokoa control create-admin` with a random password (it also migrates the database)."""
    admin = Admin(ADMIN_EMAIL, secrets.token_urlsafe(15))
    argv = kokoa_command(
        "control", "create-admin", "--config", str(cp.settings_file),
        "--email", admin.email, "--org", ORG_NAME, "--password-stdin",
    )  # fmt: skip
    done = subprocess.run(
        argv, input=admin.password + "\n", capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"kokoa control create-admin failed: {done.stderr.strip()}")
    return admin


def serve(cp: ControlPlane, procs: Processes, timeout: float) -> None:
    """`kokoa control serve`, until it answers (an anonymous session check: 401)."""
    procs.start("control", kokoa_command("control", "serve", "--config", str(cp.settings_file)))

    def answers() -> bool:
        return http_get(f"{cp.dial}/api/v1/auth/session")[0] == 401

    wait_until("the control plane to answer", answers, procs, timeout)


class ApiError(RuntimeError):
    """The control plane answered something else than expected."""


class AdminSession:
    """The REST API as the admin, logged in like the web app: the session cookie and the
    X-CSRF-Token header. httpx keeps a `Secure` cookie off plain http, so the cookie is sent
    by hand (a browser sends it to http://localhost, a secure context)."""

    def __init__(self, client: httpx.Client, headers: dict[str, str]) -> None:
        self._client = client
        self._headers = headers

    @classmethod
    @contextmanager
    def login(cls, base: str, admin: Admin) -> Iterator[AdminSession]:
        """Log in at `base`; log out when the block ends."""
        with httpx.Client(base_url=f"{base}/api/v1", timeout=30, trust_env=False) as client:
            try:
                reply = client.post("/auth/login", json=asdict(admin))
            except httpx.HTTPError as exc:
                raise ApiError(f"logging in: {exc}") from exc
            info = _expect(reply, 200)
            cookie = "; ".join(f"{name}={value}" for name, value in reply.cookies.items())
            client.cookies.clear()
            session = cls(client, {"Cookie": cookie, "X-CSRF-Token": info["csrf_token"]})
            try:
                yield session
            finally:  # best effort: on Ctrl-C the control plane may be stopping already
                with suppress(ApiError):
                    session.call("POST", "/auth/logout", 204)

    def call(self, method: str, path: str, expected: int, body: object = None) -> Any:
        try:
            reply = self._client.request(method, path, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc
        return _expect(reply, expected)


def _expect(reply: httpx.Response, status: int) -> Any:
    if reply.status_code != status:
        detail = reply.text[:300]
        raise ApiError(
            f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {detail}"
        )
    return reply.json() if reply.content else None


def register(api: AdminSession, layout: Layout) -> Registration:
    """Register the nodes, the agent and the demo service; a token per process."""
    org = api.call("GET", "/orgs", 200)[0]["id"]
    base = f"/orgs/{org}"
    node_ids = {node.name: _register_node(api, base, node) for node in layout.nodes}
    agent_id = api.call("POST", f"{base}/agents", 201, {"name": layout.agent})["id"]
    service = {
        "name": layout.service,
        "hostname": layout.host,
        "origin": layout.origin,
        "description": "the demo origin of `kokoa local up`",
        "agent_ids": [agent_id],
    }
    service_id = api.call("POST", f"{base}/services", 201, service)["id"]
    lifetime = {"expires_in_minutes": TOKEN_MINUTES}
    tokens = {
        name: api.call("POST", f"{base}/nodes/{node_id}/enrollment-tokens", 201, lifetime)["token"]
        for name, node_id in node_ids.items()
    }
    agent_token = api.call("POST", f"{base}/agents/{agent_id}/enrollment-tokens", 201, lifetime)
    tokens[layout.agent] = agent_token["token"]
    return Registration(org, node_ids, agent_id, service_id, tokens)


def _register_node(api: AdminSession, base: str, node: NodePorts) -> str:
    body = {
        "name": node.name,
        "public_address": f"{LOOPBACK}:{node.http}",
        "tunnel_address": f"{LOOPBACK}:{node.tunnel}",  # its certificate will name 127.0.0.1
    }
    node_id: str = api.call("POST", f"{base}/nodes", 201, body)["id"]
    return node_id


def set_readiness_checks(api: AdminSession, layout: Layout, reg: Registration) -> None:
    """Let the control plane check each node's /readyz (docs/control-plane.md)."""
    for node in layout.nodes:
        path = f"/orgs/{reg.org_id}/status/nodes/{reg.node_ids[node.name]}/health-check"
        api.call("PUT", path, 200, {"url": f"http://{LOOPBACK}:{node.admin}/readyz"})


def ingress_file(node: NodePorts) -> dict[str, object]:
    """What the file of an enrolled node still says: listeners and logs (docs/enrollment.md)."""
    return {
        "tunnel": {"listen": f"{LOOPBACK}:{node.tunnel}"},
        "http": {"listen": f"{LOOPBACK}:{node.http}"},
        "admin": {"listen": f"{LOOPBACK}:{node.admin}"},
        "log": {"level": "info", "format": "text"},
    }


def agent_file() -> dict[str, object]:
    """What the file of an enrolled agent still says: backoff and logs."""
    return {
        "backoff": {"initial": 0.2, "max": 2.0},
        "log": {"level": "info", "format": "text"},
    }


def start_enrolled(layout: Layout, cp: ControlPlane, reg: Registration, procs: Processes) -> None:
    """Write each process's file and start it with `--control`; its token comes in
    KOKOA_ENROLLMENT_TOKEN (the same as `--token`, but not visible in `ps`)."""
    files: list[tuple[str, str, dict[str, object]]] = [
        (node.name, "ingress", ingress_file(node)) for node in layout.nodes
    ]
    files.append((layout.agent, "edge", agent_file()))
    for name, kind, content in files:
        path = layout.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        argv = kokoa_command(kind, "run", "--config", str(path), "--control", cp.dial)
        procs.start(name, argv, env={"KOKOA_ENROLLMENT_TOKEN": reg.tokens[name]})
