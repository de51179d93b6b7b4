"""Which service a request is for: a pure, immutable table from (Host, path) to a route.

Rules (docs/ingress.md, "Routing"):

- The Host is compared without case, without its port and without one trailing dot.
- Exact host names are tried first, then wildcards: `*.example.com` matches any name that
  ends in `.example.com` with at least one label before it (`a.example.com`,
  `a.b.example.com`), never `example.com` itself. Of several wildcards, the longest suffix
  is tried first (nginx and cloudflared match wildcards the same way).
- Within a host entry, the longest path prefix that matches on a segment boundary wins:
  `/api` matches `/api`, `/api/x` and `/api?q`, never `/apix`. `/` matches every target.
- If a host entry has no matching prefix, the next less specific host entry is tried (an
  exact name falls through to the wildcards), and no match at all is `None`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class ServiceRoutes(Protocol):
    """What the table needs of a configured service (`ingress.settings.ServiceConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def hosts(self) -> Sequence[str]: ...
    @property
    def path_prefix(self) -> str: ...
    @property
    def strip_prefix(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the service, and the prefix that matched."""

    service: str
    path_prefix: str = "/"
    strip_prefix: bool = False

    def matches(self, path: str) -> bool:
        """Whether `path` (a request target) is under this route's prefix."""
        prefix = self.path_prefix
        if prefix == "/":
            return True
        if not path.startswith(prefix):
            return False
        return len(path) == len(prefix) or path[len(prefix)] in "/?"

    def target_for(self, target: str) -> str:
        """The request target to send on: with the prefix removed if `strip_prefix`.

        `target` must match this route. `/api/x?q` under a stripped `/api` becomes `/x?q`;
        `/api` and `/api?q` become `/` and `/?q`.
        """
        if not self.strip_prefix:
            return target
        rest = target[len(self.path_prefix) :]
        return rest if rest.startswith("/") else "/" + rest


_Routes = tuple[Route, ...]  # one host entry's routes, longest prefix first


class RoutingTable:
    """Host (and path) → `Route`; built once from the configuration and never changed."""

    __slots__ = ("_exact", "_services", "_wildcards")

    def __init__(
        self, exact: dict[str, _Routes], wildcards: dict[str, _Routes], services: frozenset[str]
    ) -> None:
        self._exact = exact
        self._wildcards = wildcards  # keyed by the suffix without "*.": "example.com"
        self._services = services

    @classmethod
    def build(cls, services: Sequence[ServiceRoutes]) -> RoutingTable:
        """A table for `services`, whose hosts are lowercase names or `*.` wildcards.

        Raises:
            ValueError: two services claim the same host and path prefix.
        """
        exact: dict[str, list[Route]] = {}
        wildcards: dict[str, list[Route]] = {}
        for service in services:
            route = Route(service.name, service.path_prefix, service.strip_prefix)
            for host in service.hosts:
                table, key = (wildcards, host[2:]) if host.startswith("*.") else (exact, host)
                _add(table.setdefault(key, []), host, route)
        names = frozenset(service.name for service in services)
        return cls(_sorted(exact), _sorted(wildcards), names)

    def lookup(self, host: str, path: str) -> Route | None:
        """The route for a request with this Host header value and target, or None."""
        name = _host_name(host)
        routes = self._exact.get(name)
        if routes is not None and (route := _first_match(routes, path)) is not None:
            return route
        if not self._wildcards or ".." in name or name.startswith("."):
            return None
        dot = name.find(".")
        while dot != -1:
            routes = self._wildcards.get(name[dot + 1 :])
            if routes is not None and (route := _first_match(routes, path)) is not None:
                return route
            dot = name.find(".", dot + 1)
        return None

    def services(self) -> frozenset[str]:
        """The names of every service in the table."""
        return self._services


def _add(routes: list[Route], host: str, route: Route) -> None:
    for other in routes:
        if other.path_prefix == route.path_prefix:
            raise ValueError(
                f"services {other.service!r} and {route.service!r} both claim "
                f"{host}{route.path_prefix}"
            )
    routes.append(route)


def _sorted(table: dict[str, list[Route]]) -> dict[str, _Routes]:
    return {
        key: tuple(sorted(routes, key=lambda r: len(r.path_prefix), reverse=True))
        for key, routes in table.items()
    }


def _first_match(routes: Iterable[Route], path: str) -> Route | None:
    for route in routes:
        if route.matches(path):
            return route
    return None


def _host_name(host: str) -> str:
    """`host` lowercased, without `:port` and without one trailing dot."""
    if host.startswith("["):  # an IPv6 literal: never a configured name
        return host.lower()
    colon = host.rfind(":")
    if colon != -1:
        host = host[:colon]
    if host.endswith("."):
        host = host[:-1]
    return host.lower()
