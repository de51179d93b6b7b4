"""Service entries of the agent's YAML: what is accepted, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, load, parse
from edge.origin_config import OriginService


def one(**entry: object) -> OriginService:
    return parse({"name": "web", **entry}, OriginService)


@pytest.mark.parametrize(
    "origin, normalised, authority, kind",
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", "127.0.0.1:8000", "http"),
        ("HTTP://App.Local/", "http://app.local:80", "app.local", "http"),
        ("https://api.internal", "https://api.internal:443", "api.internal", "http"),
        ("https://[::1]:8443", "https://[::1]:8443", "[::1]:8443", "http"),
        ("tcp://127.0.0.1:22", "tcp://127.0.0.1:22", "127.0.0.1:22", "tcp"),
    ],
)
def test_origins_accepted(origin: str, normalised: str, authority: str, kind: str) -> None:
    service = one(origin=origin)
    assert service.origin == normalised
    assert service.address.authority == authority
    assert service.kind == kind


@pytest.mark.parametrize(
    "entry, field, reason",
    [
        ({"origin": "ftp://x"}, "origin", "scheme must be http, https or tcp"),
        ({"origin": "127.0.0.1:80"}, "origin", "scheme must be"),
        ({"origin": "http://u:p@x"}, "origin", "credentials"),
        ({"origin": "http://x/app"}, "origin", "no path, query or fragment"),
        ({"origin": "http://x?a=1"}, "origin", "no path, query or fragment"),
        ({"origin": "http://x#f"}, "origin", "no path, query or fragment"),
        ({"origin": "http://:80"}, "origin", "no host"),
        ({"origin": "http://x:99999"}, "origin", "out of range"),
        ({"origin": "http://x:0"}, "origin", "port 0"),
        ({"origin": "tcp://x"}, "origin", "needs a port"),
        ({"origin": "http://x", "name": "a b"}, "name", "letters, digits"),
        ({"origin": "http://x", "name": "-web"}, "name", "starting with a letter or digit"),
        ({"origin": "http://x", "name": "w" * 64}, "name", "1-63 characters"),
        ({"origin": "http://x", "host_header": "a\r\nb"}, "host_header", "not a valid Host"),
        ({"origin": "http://x", "ca": "/ca.pem"}, "(top level)", "only used with an https"),
        ({"origin": "tcp://x:1", "host_header": "y"}, "(top level)", "meaningless for a tcp"),
        ({"origin": "http://x", "connect_timeout": 0}, "connect_timeout", "greater than 0"),
        ({"origin": "http://x", "read_timeout": -1}, "read_timeout", "greater than 0"),
        (
            {"origin": "http://x", "max_idle_connections": -1},
            "max_idle_connections",
            "greater than or equal to 0",
        ),
        ({"origin": "http://x", "retries": 3}, "retries", "Extra inputs are not permitted"),
        ({}, "origin", "Field required"),
    ],
)
def test_errors_name_the_field(entry: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one(**entry)
    fields = dict(caught.value.problems)
    assert field in fields, caught.value.problems
    assert reason in fields[field]


def test_loaded_from_yaml_and_frozen(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text("name: api\norigin: https://api.internal:8443\nca: ca.pem\ntls_verify: true\n")
    service = load(path, OriginService)
    assert (service.address.host, service.address.port, service.address.ca) == (
        "api.internal",
        8443,
        Path("ca.pem"),
    )
    with pytest.raises(ValueError, match="frozen"):
        service.origin = "http://elsewhere"  # type: ignore[misc]
    assert hash(service) == hash(load(path, OriginService))


@pytest.mark.parametrize("name", ["web", "web-", "api.v2_", "A" * 63])
def test_names_the_control_plane_accepts_are_accepted(name: str) -> None:
    """A snapshot carries the control plane's names: one refused here would nack it whole."""
    assert parse({"origin": "http://x", "name": name}, OriginService).name == name
