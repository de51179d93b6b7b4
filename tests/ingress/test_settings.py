"""The ingress configuration file: what loads, and errors that name the field and the reason."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import ConfigError, parse
from ingress.settings import IngressSettings, load_settings, parse_address

FULL: dict[str, Any] = {
    "node": "ingress-1",
    "tunnel": {
        "listen": "127.0.0.1:7844",
        "cert": "pki/ingress-1.crt",
        "key": "pki/ingress-1.key",
        "ca": "pki/ca.crt",
    },
    "http": {"listen": "127.0.0.1:8080"},
    "https": {
        "listen": "127.0.0.1:8443",
        "certificates": [{"cert": "tls/web.crt", "key": "/etc/kokoa/web.key"}],
    },
    "admin": {"listen": "127.0.0.1:9901"},
    "services": [
        {
            "name": "web",
            "hosts": ["web.localhost", "*.web.localhost"],
            "path_prefix": "/",
            "strip_prefix": False,
            "agents": ["agent-1"],
        }
    ],
    "limits": {
        "max_header_bytes": 65536,
        "header_timeout": 10,
        "keepalive_timeout": 75,
        "max_streams_per_agent": 512,
        "hello_timeout": 5,
        "heartbeat_interval": 2,
    },
    "log": {"level": "info", "format": "json"},
}

MINIMAL: dict[str, Any] = {
    "node": "n1",
    "tunnel": {"listen": "0.0.0.0:7844", "cert": "a.crt", "key": "a.key", "ca": "ca.crt"},
    "http": {"listen": "[::]:80"},
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "ingress.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_full_example_loads_and_resolves_relative_paths(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL))
    base = tmp_path.resolve()
    assert settings.tunnel.tls.cert == base / "pki/ingress-1.crt"
    assert settings.tunnel.tls.ca == base / "pki/ca.crt"
    assert settings.https is not None
    assert settings.https.certificates[0].cert == base / "tls/web.crt"
    assert settings.https.certificates[0].key == Path("/etc/kokoa/web.key")
    assert (settings.tunnel.host, settings.tunnel.port) == ("127.0.0.1", 7844)
    assert settings.services[0].hosts == ("web.localhost", "*.web.localhost")
    assert settings.services[0].allows("agent-1", None)
    assert not settings.services[0].allows("agent-2", None)
    assert not settings.services[0].allows("agent-1", "acme")


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.admin is not None and settings.admin.listen == "127.0.0.1:9901"
    assert settings.https is None and settings.services == ()
    assert settings.limits.hello_timeout == 5.0 and settings.limits.heartbeat_interval == 2.0
    assert settings.limits.max_streams_per_agent == 512
    assert (settings.log.level, settings.log.format) == ("info", "json")
    assert settings.http is not None and (settings.http.host, settings.http.port) == ("::", 80)


def test_admin_can_be_switched_off() -> None:
    assert parse(MINIMAL | {"admin": None}, IngressSettings).admin is None


def test_settings_are_frozen() -> None:
    settings = parse(FULL, IngressSettings)
    with pytest.raises(ValueError, match="frozen"):
        settings.node = "other"  # type: ignore[misc]


def test_org_qualified_agents() -> None:
    data = copy.deepcopy(FULL)
    data["services"][0]["agents"] = ["acme/agent-1"]
    service = parse(data, IngressSettings).services[0]
    assert service.allows("agent-1", "acme")
    assert not service.allows("agent-1", None)
    assert not service.allows("agent-1", "other")


def test_path_prefix_is_normalised() -> None:
    data = copy.deepcopy(FULL)
    data["services"][0] |= {"path_prefix": "/api/", "strip_prefix": True}
    assert parse(data, IngressSettings).services[0].path_prefix == "/api"


def mutate(path: str, value: Any) -> dict[str, Any]:
    """FULL with the dotted `path` set to `value` (or removed, for `...`)."""
    data = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


BAD = [
    ("tunnel.listen", "127.0.0.1", "tunnel.listen", "must be host:port"),
    ("tunnel.listen", "::1:7844", "tunnel.listen", "IPv6 host must be in brackets"),
    ("tunnel.listen", "[zz::1]:7844", "tunnel.listen", "not an IPv6 address"),
    ("tunnel.listen", "[10.0.0.1]:7844", "tunnel.listen", "not an IPv6 address"),
    ("http.listen", "127.0.0.1:70000", "http.listen", "out of range"),
    ("http.listen", "bad_host:80", "http.listen", "neither an IP address nor a host name"),
    ("admin.listen", ":9901", "admin.listen", "must be host:port"),
    ("services.0.hosts.0", "Web.localhost", "services.0.hosts.0", "lowercase"),
    ("services.0.hosts.0", "web..localhost", "services.0.hosts.0", "not a host name"),
    ("services.0.hosts.0", "-web.localhost", "services.0.hosts.0", "not a host name"),
    ("services.0.hosts.0", "web.*.localhost", "services.0.hosts.0", "leading label"),
    ("services.0.hosts.0", "*", "services.0.hosts.0", "leading label"),
    ("services.0.hosts.0", "web.localhost.", "services.0.hosts.0", "trailing dot"),
    ("services.0.hosts.0", "a" * 64 + ".test", "services.0.hosts.0", "not a host name"),
    ("services.0.hosts", [], "services.0.hosts", "at least one host"),
    ("services.0.hosts", ["a.test", "a.test"], "services.0.hosts", "listed twice"),
    ("services.0.name", "web service", "services.0.name", "letters, digits"),
    ("services.0.agents", ["agent 1"], "services.0.agents.0", "letters, digits"),
    ("services.0.agents", ["a/b/c"], "services.0.agents.0", "letters, digits"),
    ("services.0.path_prefix", "api", "services.0.path_prefix", "must start with '/'"),
    ("services.0.path_prefix", "/a?b", "services.0.path_prefix", "no query"),
    ("services.0.path_prefix", "/a/../b", "services.0.path_prefix", "'..' segments"),
    ("services.0.path_prefix", "/a//b", "services.0.path_prefix", "empty segment"),
    ("services.0.strip_prefix", True, "services.0", "strip_prefix needs a path_prefix"),
    ("services.0.colour", "red", "services.0.colour", "Extra inputs are not permitted"),
    ("limits.heartbeat_interval", 0, "limits.heartbeat_interval", "greater than 0"),
    ("limits.hello_timeout", -1, "limits.hello_timeout", "greater than 0"),
    ("limits.max_streams_per_agent", 0, "limits.max_streams_per_agent", "greater than or equal"),
    ("log.level", "loud", "log.level", "'debug', 'info'"),
    ("log.format", "xml", "log.format", "'json' or 'text'"),
    ("node", "ingress 1", "node", "letters, digits"),
    ("tunnel.cert", ..., "tunnel.cert", "Field required"),
    ("https.certificates", [], "https.certificates", "at least one {cert, key} pair"),
    ("nodes", "typo", "nodes", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("path", "value", "field", "reason"), BAD)
def test_errors_name_the_field_and_the_reason(
    tmp_path: Path, path: str, value: Any, field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, mutate(path, value)))
    assert [p for p in info.value.problems if p[0] == field and reason in p[1]], info.value.problems
    assert str(tmp_path / "ingress.yaml") in str(info.value)


def test_duplicate_service_names_and_routes_are_refused() -> None:
    data = copy.deepcopy(FULL)
    data["services"].append(data["services"][0] | {"hosts": ["other.test"]})
    with pytest.raises(ConfigError) as info:
        parse(data, IngressSettings)
    assert info.value.problems == [
        ("services", "Value error, duplicate service name 'web' (entries 0 and 1)")
    ]
    data["services"][1] |= {"name": "web2", "hosts": ["web.localhost"]}
    with pytest.raises(ConfigError, match=r"duplicate route 'web.localhost/' \(entries 0 and 1\)"):
        parse(data, IngressSettings)


def test_a_node_needs_a_public_listener() -> None:
    data = copy.deepcopy(MINIMAL)
    del data["http"]
    with pytest.raises(ConfigError, match="configure http, https or both"):
        parse(data, IngressSettings)


def test_two_tcp_listeners_on_one_address_are_refused() -> None:
    data = MINIMAL | {"admin": {"listen": "[::]:80"}}
    with pytest.raises(ConfigError, match=r"http.listen and admin.listen are both \[::\]:80"):
        parse(data, IngressSettings)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_settings(tmp_path / "nope.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text("node: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:0", ("::1", 0)),
        ("[fe80::1%eth0]:443", ("fe80::1%eth0", 443)),
        ("localhost:65535", ("localhost", 65535)),
        ("Node-1.example.com:1", ("Node-1.example.com", 1)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "80", "host:", "host:x", "[::1]", "::1:80", "h:-1", "h:٣"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_port_zero_listeners_never_clash() -> None:
    data = MINIMAL | {"http": {"listen": "127.0.0.1:0"}, "admin": {"listen": "127.0.0.1:0"}}
    settings = parse(data, IngressSettings)
    assert settings.http is not None and settings.http.port == 0
