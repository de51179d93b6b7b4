"""The test OpenID provider (provider.mjs, panva's oidc-provider on Node) as a context manager,
and a client that signs in through its development forms the way a browser would.

The provider runs in a process group of its own and is stopped by that group's id, so nothing
it started outlives the test. `./dev test` runs `npm ci` here first; without node_modules the
tests fail and say so (they never skip).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

HERE = Path(__file__).resolve().parent
CLIENT_ID = "kokoa-test"
CLIENT_SECRET = "kokoa-test-secret"
START_TIMEOUT = 20.0
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


@dataclass(frozen=True)
class RunningProvider:
    issuer: str

    def setting(self, slug: str = "test", label: str = "Test IdP", **extra: Any) -> dict[str, Any]:
        """One entry of the control plane's `oidc_providers` for this provider."""
        return {
            "slug": slug,
            "label": label,
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"],
        } | extra


@contextmanager
def running_provider(
    redirect_uris: Sequence[str], *, issuer_slash: bool = False
) -> Iterator[RunningProvider]:
    """Start provider.mjs on a free loopback port; stop its process group at the end.
    `issuer_slash`: its issuer ends in "/" (as Auth0's do)."""
    node = shutil.which("node")
    assert node, "node is missing: the OIDC tests need Node.js (./dev test checks for it)"
    assert (HERE / "node_modules" / "oidc-provider").is_dir(), (
        f"run `npm ci` in {HERE} (./dev test does)"
    )
    env = os.environ | {
        "REDIRECT_URIS": " ".join(redirect_uris),
        "ISSUER_SLASH": "1" if issuer_slash else "0",
    }
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [node, "provider.mjs"],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its own process group, stopped as one below
        )
        try:
            yield RunningProvider(_issuer(process, stderr))
        finally:
            _stop(process)


def _issuer(process: subprocess.Popen[bytes], stderr: Any) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.1):
                line = process.stdout.readline()
                return str(json.loads(line)["issuer"])
    stderr.seek(0)
    raise RuntimeError(f"the OIDC provider did not start: {stderr.read().decode()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    if process.stdout is not None:
        process.stdout.close()


async def authorize(client: httpx.AsyncClient, start: httpx.Response, login: str) -> str:
    """From our login's redirect to the provider's redirect back to us: follow redirects, log
    in as `login` (any password), consent if asked. Returns the callback URL, not requested."""
    response = start
    for _ in range(20):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if urlsplit(location).path.endswith("/callback"):
                return location
            response = await client.get(location)
            continue
        assert response.status_code == 200, f"{response.url}: {response.status_code}"
        action = FORM_ACTION.search(response.text)
        assert action, f"no form at {response.url}: {response.text[:500]}"
        if 'name="login"' in response.text:
            data = {"prompt": "login", "login": login, "password": "any password"}
        else:
            data = {"prompt": "consent"}
        response = await client.post(urljoin(str(response.url), action.group(1)), data=data)
    raise AssertionError("the provider did not send the browser back")
