"""What can go wrong, typed, each with its exit code; cli.py prints and exits in one place.

0  success
1  the API refused the request or failed (HTTP 4xx/5xx; the problem's title and detail)
2  usage: bad options, not logged in, no organisation chosen
3  the control plane could not be reached (connection, TLS, timeout)
"""

from __future__ import annotations

from typing import Any

EXIT_API = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class AdminError(Exception):
    """A failure to report as `kokoa admin: <message>` and exit with `exit_code`."""

    exit_code = EXIT_USAGE

    def lines(self) -> list[str]:
        return [str(self)]


class UsageError(AdminError):
    exit_code = EXIT_USAGE


class Unreachable(AdminError):
    exit_code = EXIT_UNREACHABLE


class ApiError(AdminError):
    """An HTTP error answer, read from its RFC 9457 problem details when it has them."""

    exit_code = EXIT_API

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        problem_type: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status
        self.title = title
        self.detail = detail
        self.problem_type = problem_type
        self.errors = errors or []

    def lines(self) -> list[str]:
        lines = [str(self)]
        if len(self.errors) > 1:  # the detail already names the first one
            for error in self.errors:
                lines.append(f"  {field_name(error.get('loc', []))}: {error.get('msg', '')}")
        if self.status == 401:
            lines.append("  (log in again with `kokoa admin login`, or check KOKOA_TOKEN)")
        return lines


def field_name(loc: list[Any]) -> str:
    """`["body", "hostname"]` → `hostname`; `["query", "limit"]` → `limit`."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "(request)"
