"""The REST API over HTTPS: bearer token, TLS verification, problem+json errors, pagination.

Every failure leaves here typed (control.admin.errors): an HTTP error answer becomes ApiError
with the problem's title, detail and field errors; a network or TLS failure becomes a
one-line Unreachable. Nothing from httpx escapes.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx

from control.admin.config import Credentials
from control.admin.errors import ApiError, Unreachable, UsageError

API_PREFIX = "/api/v1"
PAGE_SIZE = 200  # the API's largest page
MAX_PAGES = 5_001  # the API refuses offsets over 1,000,000: 5,000 full pages
TIMEOUT = 30.0
Params = Mapping[str, str | int | bool | list[str] | None]


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify against `ca_file` only when given, else the system trust store (as enrollment
    does, so that one certificate setup serves both)."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the CA file {ca_file}: {exc}") from None


def _user_agent() -> str:
    try:
        return f"kokoa-admin/{version('kokoa')}"
    except PackageNotFoundError:
        return "kokoa-admin"


class ApiClient:
    """One control plane, as one bearer token sees it. Close it (or use `with`)."""

    def __init__(self, credentials: Credentials, *, timeout: float = TIMEOUT) -> None:
        self.url = credentials.url
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=credentials.url + API_PREFIX,
            headers={
                "Authorization": f"Bearer {credentials.token}",
                "Accept": "application/json",
                "User-Agent": _user_agent(),
            },
            # Plain http (loopback only, config.check_url) has no TLS to verify; building the
            # context would only cost its CA bundle load.
            verify=tls_context(credentials.ca_file) if self.url.startswith("https:") else False,
            timeout=timeout,
            follow_redirects=False,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, body=body)

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for 204).

        Raises:
            ApiError: an HTTP error status, or an answer that is not JSON.
            Unreachable: no answer (connection refused, TLS failure, timeout).
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=body)
        except httpx.TimeoutException:
            raise Unreachable(f"{self.url}: no answer within {self._timeout:g} s") from None
        except httpx.TransportError as exc:
            raise Unreachable(_describe(self.url, exc)) from None
        if response.status_code >= 400:
            raise problem_of(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise _unexpected(response, "the answer is not JSON") from None

    def list_all(self, path: str, params: Params | None = None, limit: int | None = None) -> Any:
        """Every item of a paginated list (`Page` envelopes), or the first `limit`."""
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(items))
            page = self.get(path, {**(params or {}), "limit": size, "offset": len(items)})
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ApiError(200, "Unexpected answer", f"GET {path} did not return a page")
            items.extend(page["items"])
            full = limit is not None and len(items) >= limit
            if full or not page["items"] or len(items) >= int(page.get("total", 0)):
                return items
        return items


def problem_of(response: httpx.Response) -> ApiError:
    """The ApiError of an error answer: its problem details, or its status and text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("title"), str):
        errors = body.get("errors")
        return ApiError(
            response.status_code,
            body["title"],
            str(body.get("detail") or ""),
            problem_type=str(body.get("type") or "") or None,
            errors=errors if isinstance(errors, list) else None,
        )
    return _unexpected(response, " ".join(response.text.split())[:200])


def _unexpected(response: httpx.Response, detail: str) -> ApiError:
    title = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return ApiError(response.status_code, title, detail)


def _describe(url: str, exc: httpx.TransportError) -> str:
    """One line that says what failed, without a traceback."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            f"{url}: the TLS certificate is not trusted ({text}); "
            "give the control plane's CA with --ca-file or KOKOA_CA_FILE"
        )
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {url}: {text}"
    return f"{url}: {text}"
