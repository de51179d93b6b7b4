"""Talking to the control plane's enrollment API over HTTPS (httpx).

The control plane's certificate is verified against the system trust store, or only against
`ca_file` when given (`--control-ca`). Plain http:// is accepted for a loopback address only
(a control plane on the same host, development, tests): the enrollment token would otherwise
cross the network in clear.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ValidationError

from common.enroll.messages import Challenge, Credentials, EnrollRequest, Kind, RenewRequest
from common.enroll.proof import sign_renewal

API = "/api/v1/enrollment"
M = TypeVar("M", bound=BaseModel)
TRANSIENT_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class EnrollError(Exception):
    """Enrollment or renewal failed. `permanent`: the control plane refused it (retrying the
    same request will not help); otherwise a network error, a timeout or a server error."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.status = status
        self.permanent = permanent


def check_control_url(url: str) -> str:
    """`url` without a trailing slash if it is https://, or http:// to a loopback address.

    Raises:
        ValueError: another scheme, no host, or plain http to a non-loopback host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{url!r} is not an https:// URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: no query or fragment, please")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(f"{url!r}: plain http is accepted only for a loopback address; use https")
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification against `ca_file` only, or else the system trust store."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise EnrollError(f"cannot load the control plane CA {ca_file}: {exc}") from None


class ControlClient:
    """The enrollment endpoints of one control plane."""

    def __init__(self, url: str, *, ca_file: Path | None = None, timeout: float = 15.0):
        self.url = check_control_url(url)
        self._verify = tls_context(ca_file)
        self._timeout = timeout

    def enroll(self, token: str, kind: Kind, csr_pem: str) -> Credentials:
        """Redeem `token` (blocking: used once, before the process starts serving)."""
        body = EnrollRequest(token=token, kind=kind, csr=csr_pem)
        with httpx.Client(verify=self._verify, timeout=self._timeout) as client:
            response = _send(client.post, f"{self.url}{API}", body)
        return _parse(response, Credentials)

    async def renew(
        self,
        certificate_pem: str,
        key: ec.EllipticCurvePrivateKey,
        csr_pem: str,
    ) -> Credentials:
        """A new certificate for `csr_pem`'s key, proven by `key` (the current one)."""
        serial = x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number
        async with httpx.AsyncClient(verify=self._verify, timeout=self._timeout) as client:
            reply = await _send_async(client.post, f"{self.url}{API}/challenges", None)
            nonce = _parse(reply, Challenge).nonce
            body = RenewRequest(
                certificate=certificate_pem,
                csr=csr_pem,
                nonce=nonce,
                signature=sign_renewal(key, nonce, serial, csr_pem),
            )
            reply = await _send_async(client.post, f"{self.url}{API}/renewals", body)
        return _parse(reply, Credentials)


def _send(post: Any, url: str, body: BaseModel | None) -> httpx.Response:
    try:
        response: httpx.Response = post(url, json=body.model_dump() if body else None)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach the control plane at {url}: {exc!r}") from None
    return response


async def _send_async(post: Any, url: str, body: BaseModel | None) -> httpx.Response:
    try:
        response: httpx.Response = await post(url, json=body.model_dump() if body else None)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach the control plane at {url}: {exc!r}") from None
    return response


def _parse(response: httpx.Response, model: type[M]) -> M:
    if response.status_code >= 400:
        raise EnrollError(
            f"the control plane refused ({response.status_code}): {_detail(response)}",
            status=response.status_code,
            permanent=response.status_code not in TRANSIENT_STATUSES,
        )
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise EnrollError(f"unexpected answer from the control plane: {exc}") from None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text[:200]))
    except (ValueError, AttributeError):
        return response.text[:200]
