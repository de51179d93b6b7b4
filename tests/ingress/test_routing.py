"""The routing table: table-driven cases for every rule, and Hypothesis against a naive model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ingress.routing import Route, RoutingTable


@dataclass(frozen=True)
class Svc:
    name: str
    hosts: tuple[str, ...]
    path_prefix: str = "/"
    strip_prefix: bool = False


TABLE = RoutingTable.build(
    [
        Svc("web", ("web.example.com", "*.web.example.com")),
        Svc("api", ("web.example.com",), "/api"),
        Svc("api-v2", ("web.example.com",), "/api/v2", strip_prefix=True),
        Svc("wild", ("*.example.com",)),
        Svc("wild-docs", ("*.example.com",), "/docs"),
        Svc("deep", ("*.b.example.com",)),
        Svc("exact-only-path", ("only.example.com",), "/x"),
        Svc("local", ("localhost", "127.0.0.1")),
    ]
)

CASES = [
    # host normalisation
    ("web.example.com", "/", "web"),
    ("WEB.Example.COM", "/", "web"),
    ("web.example.com:8080", "/", "web"),
    ("web.example.com.", "/", "web"),
    ("web.example.com.:443", "/", "web"),
    ("localhost", "/", "local"),
    ("127.0.0.1:8080", "/", "local"),
    ("[::1]:8080", "/", None),
    ("", "/", None),
    # path prefixes on segment boundaries, longest first
    ("web.example.com", "/api", "api"),
    ("web.example.com", "/api/", "api"),
    ("web.example.com", "/api/users?id=1", "api"),
    ("web.example.com", "/api?x=1", "api"),
    ("web.example.com", "/apix", "web"),
    ("web.example.com", "/api/v2", "api-v2"),
    ("web.example.com", "/api/v2/x", "api-v2"),
    ("web.example.com", "/api/v20", "api"),
    ("web.example.com", "/API", "web"),  # paths are case-sensitive
    ("web.example.com", "*", "web"),  # OPTIONS * only reaches a "/" route
    # wildcards: any depth, longest suffix first, never the bare suffix
    ("a.web.example.com", "/", "web"),
    ("a.b.web.example.com", "/", "web"),
    ("a.example.com", "/", "wild"),
    ("a.b.c.example.com", "/", "wild"),
    ("x.b.example.com", "/", "deep"),
    ("b.example.com", "/", "wild"),
    ("example.com", "/", None),
    ("a.example.com", "/docs/intro", "wild-docs"),
    ("x.b.example.com", "/docs", "deep"),  # the longer suffix owns the host
    # an exact name without a matching prefix falls through to the wildcards
    ("only.example.com", "/x/y", "exact-only-path"),
    ("only.example.com", "/y", "wild"),
    # malformed names never match a wildcard
    (".example.com", "/", None),
    ("a..example.com", "/", None),
    ("other.test", "/", None),
]


@pytest.mark.parametrize(("host", "path", "service"), CASES)
def test_lookup(host: str, path: str, service: str | None) -> None:
    route = TABLE.lookup(host, path)
    assert (route.service if route else None) == service


def test_route_carries_prefix_and_strip_flag() -> None:
    assert TABLE.lookup("web.example.com", "/api/v2/x") == Route("api-v2", "/api/v2", True)
    assert TABLE.lookup("web.example.com", "/") == Route("web", "/", False)


@pytest.mark.parametrize(
    ("route", "target", "expected"),
    [
        (Route("s", "/api", True), "/api/x?q=1", "/x?q=1"),
        (Route("s", "/api", True), "/api", "/"),
        (Route("s", "/api", True), "/api?q", "/?q"),
        (Route("s", "/api", True), "/api/", "/"),
        (Route("s", "/api", False), "/api/x", "/api/x"),
        (Route("s", "/", False), "/x", "/x"),
    ],
)
def test_target_for(route: Route, target: str, expected: str) -> None:
    assert route.matches(target)
    assert route.target_for(target) == expected


def test_services() -> None:
    assert TABLE.services() == {
        "web",
        "api",
        "api-v2",
        "wild",
        "wild-docs",
        "deep",
        "exact-only-path",
        "local",
    }
    assert RoutingTable.build([]).services() == frozenset()
    assert RoutingTable.build([]).lookup("a.b", "/") is None


def test_two_services_on_one_host_and_prefix_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'a' and 'b' both claim x\.test/p"):
        RoutingTable.build([Svc("a", ("x.test",), "/p"), Svc("b", ("x.test",), "/p")])
    # The same prefix on another host, or another prefix on the same host, is fine.
    RoutingTable.build([Svc("a", ("x.test",), "/p"), Svc("b", ("y.test", "x.test"), "/q")])


# ---- properties against a naive model ----------------------------------------------------

LABELS = st.sampled_from(["a", "b", "c", "ex", "x1"])
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
PATTERNS = st.one_of(NAMES, NAMES.map(lambda n: "*." + n))
SEGMENTS = st.sampled_from(["api", "v1", "v2", "docs", "x"])
PREFIXES = st.lists(SEGMENTS, max_size=3).map(lambda s: "/" + "/".join(s))
PATHS = st.tuples(
    st.lists(st.sampled_from(["api", "v1", "v2", "docs", "x", "apix", ""]), max_size=4),
    st.sampled_from(["", "?q=1", "/"]),
).map(lambda t: "/" + "/".join(t[0]) + t[1])


@st.composite
def tables(draw: st.DrawFn) -> list[Svc]:
    routes = draw(st.lists(st.tuples(PATTERNS, PREFIXES), max_size=12, unique=True))
    return [Svc(f"s{i}", (host,), prefix) for i, (host, prefix) in enumerate(routes)]


def naive(services: list[Svc], host: str, path: str) -> str | None:
    """The rules written as directly as possible: rank every (host, prefix) that matches."""
    name = host.lower().rsplit(":", 1)[0].removesuffix(".")
    best: tuple[int, int] | None = None
    found = None
    for svc in services:
        for pattern in svc.hosts:
            if pattern.startswith("*."):
                labels = name.split(".")
                suffix = pattern[2:]
                ok = name.endswith("." + suffix) and all(labels[: -len(suffix.split("."))])
                host_rank = len(suffix) if ok else -1
            else:
                host_rank = 10_000 if pattern == name else -1
            if host_rank < 0 or not Route(svc.name, svc.path_prefix).matches(path):
                continue
            rank = (host_rank, len(svc.path_prefix))
            if best is None or rank > best:
                best, found = rank, svc.name
    return found


@given(services=tables(), host=NAMES, path=PATHS, case=st.booleans(), port=st.booleans())
@example(services=[Svc("s0", ("*.a",), "/api")], host="b.a", path="/api", case=False, port=False)
@example(
    services=[Svc("s0", ("a",), "/x"), Svc("s1", ("*.a",))],
    host="a",
    path="/",
    case=False,
    port=False,
)
def test_lookup_agrees_with_the_naive_model(
    services: list[Svc], host: str, path: str, case: bool, port: bool
) -> None:
    table = RoutingTable.build(services)
    asked = (host.upper() if case else host) + (".:8443" if port else "")
    route = table.lookup(asked, path)
    assert (route.service if route else None) == naive(services, host, path)


@given(services=tables(), host=NAMES, path=PATHS)
def test_a_route_found_always_matches_the_path(services: list[Svc], host: str, path: str) -> None:
    route = RoutingTable.build(services).lookup(host, path)
    if route is not None:
        assert route.matches(path)
        assert route.service in {s.name for s in services}


@given(services=tables())
def test_every_configured_exact_route_is_reachable(services: list[Svc]) -> None:
    table = RoutingTable.build(services)
    for svc in services:
        for host in svc.hosts:
            name = host.replace("*", "z")
            route = table.lookup(name, svc.path_prefix)
            assert route is not None
            if not host.startswith("*."):
                assert route.service == svc.name
