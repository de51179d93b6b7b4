"""Where `kokoa admin` finds the control plane and its API token.

`kokoa admin login` saves {"url", "token", "ca_file"} to $XDG_CONFIG_HOME/kokoa/admin.json
(default ~/.config/kokoa/admin.json): mode 0600 in a 0700 directory, replaced atomically, and
refused when group or others can read it (as ssh refuses a readable key). KOKOA_URL,
KOKOA_TOKEN and KOKOA_CA_FILE override the file, for CI. A saved token is never sent to
another control plane: when KOKOA_URL names a different one, KOKOA_TOKEN must be set too.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from control.admin.errors import UsageError

FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class Credentials:
    url: str  # normalised by check_url
    token: str
    ca_file: Path | None = None


def config_path(env: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME/kokoa/admin.json; a relative XDG_CONFIG_HOME is ignored (XDG spec)."""
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "kokoa" / "admin.json"


def check_url(url: str) -> str:
    """`url` without a trailing slash: https://, or http:// to a loopback address only (the
    token would otherwise cross the network in clear). The same rule as enrollment's
    (common/enroll/client.py), kept here so that `kokoa admin` does not import that package.

    Raises:
        UsageError: another scheme, no host, a path, query or fragment, or remote http.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"{url!r} is not an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{url!r}: no user or password in the URL; the token authenticates")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise UsageError(f"{url!r}: give the control plane's base URL (no path or query)")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise UsageError(f"{url!r}: plain http is accepted only for a loopback address; use https")
    return f"{parts.scheme}://{parts.netloc}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def save(path: Path, credentials: Credentials) -> None:
    """Write `credentials` to `path` (0600, directory 0700), replacing any previous login."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path.parent, DIR_MODE)
    body = {
        "url": credentials.url,
        "token": credentials.token,
        "ca_file": str(credentials.ca_file) if credentials.ca_file else None,
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(body, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load(path: Path) -> Credentials | None:
    """The saved login, or None when there is none."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise UsageError(f"{path} is readable by others; run `chmod 600 {path}` or log in again")
    try:
        body = json.loads(path.read_text())
        ca_file = body.get("ca_file")
        return Credentials(
            url=check_url(str(body["url"])),
            token=str(body["token"]),
            ca_file=Path(ca_file) if ca_file else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UsageError) as exc:
        raise UsageError(f"cannot read {path} ({exc}); run `kokoa admin login` again") from None


def remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def resolve(env: Mapping[str, str], path: Path) -> Credentials:
    """The credentials to use: KOKOA_URL/KOKOA_TOKEN/KOKOA_CA_FILE over the saved login.

    Raises:
        UsageError: nothing to use, or KOKOA_URL pointing elsewhere than the saved token.
    """
    url_env, token_env = env.get("KOKOA_URL") or None, env.get("KOKOA_TOKEN") or None
    ca_env = Path(env["KOKOA_CA_FILE"]) if env.get("KOKOA_CA_FILE") else None
    saved = load(path)
    url = check_url(url_env) if url_env else saved.url if saved else None
    if token_env:
        if url is None:
            raise UsageError("KOKOA_TOKEN is set but KOKOA_URL is not (and no login is saved)")
        saved_ca = saved.ca_file if saved is not None and saved.url == url else None
        return Credentials(url, token_env, ca_env or saved_ca)
    if saved is None:
        raise UsageError(
            "not logged in: run `kokoa admin login --url URL`, or set KOKOA_URL and KOKOA_TOKEN"
        )
    if url != saved.url:
        raise UsageError(
            f"KOKOA_URL is {url} but the saved token is for {saved.url}; set KOKOA_TOKEN too"
        )
    return Credentials(saved.url, saved.token, ca_env or saved.ca_file)
