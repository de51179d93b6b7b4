"""The agent's configuration file: what loads, relative paths, and errors that name the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import ConfigError, parse
from edge.settings import EdgeSettings, check_files, load_settings, parse_address
from tests.common.quic_support import Authority

FULL: dict[str, Any] = {
    "agent": "agent-1",
    "tls": {"cert": "pki/agent-1.crt", "key": "pki/agent-1.key", "ca": "pki/ca.crt"},
    "ingress": [
        {"name": "ingress-1", "address": "127.0.0.1:7844", "server_name": "127.0.0.1"},
        {"name": "ingress-2", "address": "tunnel.example.com:7844"},
        {"name": "ingress-3", "address": "[::1]:7844"},
    ],
    "services": [
        {"name": "web", "origin": "http://127.0.0.1:8000"},
        {"name": "api", "origin": "https://api.internal:8443", "ca": "certs/api-ca.pem"},
    ],
    "max_streams": 512,
    "heartbeat_interval": 2.0,
    "backoff": {"initial": 0.5, "max": 15.0, "multiplier": 2.0},
    "drain_grace": 30,
    "log": {"level": "info", "format": "json"},
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse(data, EdgeSettings)
    return info.value.problems


def changed(path: str, value: object) -> dict[str, Any]:
    """FULL with the value at a dotted path replaced (or removed, for ...)."""
    data = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return data


def test_full_example_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL))
    base = tmp_path.resolve()
    assert settings.tls.cert == base / "pki/agent-1.crt"
    assert settings.tls.files.ca == base / "pki/ca.crt"
    assert settings.services[1].ca == base / "certs/api-ca.pem"
    assert settings.services[1].address.ca == base / "certs/api-ca.pem"
    assert settings.service_names == ("web", "api")
    assert settings.service_map["web"].origin == "http://127.0.0.1:8000"
    first, second, third = settings.ingress
    assert (first.host, first.port, first.verify_name) == ("127.0.0.1", 7844, "127.0.0.1")
    assert second.verify_name == "tunnel.example.com"  # default: the host dialled
    assert (third.host, third.port) == ("::1", 7844)


def test_absolute_paths_stay(tmp_path: Path) -> None:
    data = changed("tls.cert", "/etc/kokoa/agent.crt")
    assert load_settings(write(tmp_path, data)).tls.cert == Path("/etc/kokoa/agent.crt")


def test_defaults() -> None:
    minimal = {
        "agent": "a",
        "tls": {"cert": "c", "key": "k", "ca": "ca"},
        "ingress": [{"name": "n", "address": "127.0.0.1:7844"}],
        "services": [{"name": "web", "origin": "http://127.0.0.1:8000"}],
    }
    settings = parse(minimal, EdgeSettings)
    assert settings.max_streams == 512
    assert settings.heartbeat_interval == 2.0
    assert settings.hello_timeout == 5.0
    assert (settings.backoff.initial, settings.backoff.max) == (0.5, 15.0)
    assert (settings.backoff.multiplier, settings.backoff.reset_after) == (2.0, 10.0)
    assert settings.drain_grace == 30.0
    assert (settings.log.level, settings.log.format) == ("info", "json")


def test_settings_are_frozen() -> None:
    settings = parse(FULL, EdgeSettings)
    with pytest.raises(ValueError):
        settings.max_streams = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("agent", "bad id!", "agent", "letters, digits"),
        ("agent", ..., "agent", "Field required"),
        ("tls.key", ..., "tls.key", "Field required"),
        ("tls.extra", 1, "tls.extra", "Extra inputs"),
        ("ingress", [], "ingress", "at least one ingress node"),
        ("ingress.0.address", "127.0.0.1", "ingress.0.address", "host:port"),
        ("ingress.0.address", "::1:7844", "ingress.0.address", "brackets"),
        ("ingress.0.address", "127.0.0.1:0", "ingress.0.address", "out of range"),
        ("ingress.0.address", "127.0.0.1:70000", "ingress.0.address", "out of range"),
        ("ingress.0.address", "bad_host:1", "ingress.0.address", "neither an IP"),
        ("ingress.0.server_name", "not a name", "ingress.0.server_name", "neither an IP"),
        ("ingress.0.identity", "ingress-1", "ingress.0.identity", "not a kokoa identity URI"),
        ("ingress.0.identity", "urn:kokoa:agent:a1", "ingress.0.identity", "names an agent"),
        ("ingress.1.name", "ingress-1", "ingress", "duplicate node name 'ingress-1'"),
        ("ingress.1.address", "127.0.0.1:7844", "ingress", "duplicate node address"),
        ("services", [], "services", "at least one service"),
        ("services.1.name", "web", "services", "duplicate service name 'web'"),
        ("services.0.origin", "ftp://x", "services.0.origin", "scheme must be"),
        ("services.0.origin", "http://x/path", "services.0.origin", "no path"),
        ("max_streams", 0, "max_streams", "greater than or equal to 1"),
        ("heartbeat_interval", 0, "heartbeat_interval", "greater than 0"),
        ("heartbeat_interval", 7200, "heartbeat_interval", "less than or equal to 3600"),
        ("backoff.initial", -1, "backoff.initial", "greater than 0"),
        ("backoff.multiplier", 0.5, "backoff.multiplier", "greater than or equal to 1"),
        ("backoff.max", 0.1, "backoff", "max (0.1) must be at least initial (0.5)"),
        ("drain_grace", "soon", "drain_grace", "valid number"),
        ("log.level", "loud", "log.level", "Input should be"),
        ("log.format", "xml", "log.format", "Input should be"),
    ],
)
def test_errors_name_the_field_and_the_reason(
    path: str, value: object, field: str, reason: str
) -> None:
    found = problems(changed(path, value))
    assert any(f == field and reason in r for f, r in found), found


def test_error_message_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, changed("max_streams", -1))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value) and "max_streams" in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:7844", ("127.0.0.1", 7844)),
        ("[::1]:1", ("::1", 1)),
        ("node-1.example.com:65535", ("node-1.example.com", 65535)),
    ],
)
def test_parse_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_address(value) == expected


# ---- check_files --------------------------------------------------------------------------


def with_pki(tmp_path: Path, agent: str = "agent-1") -> EdgeSettings:
    ca = Authority(tmp_path / "pki")
    files = ca.issue("agent", agent)
    data = changed("tls", {"cert": str(files.cert), "key": str(files.key), "ca": str(files.ca)})
    data["services"] = [{"name": "web", "origin": "http://127.0.0.1:8000"}]
    return load_settings(write(tmp_path, data))


def test_check_files_accepts_a_matching_certificate(tmp_path: Path) -> None:
    assert check_files(with_pki(tmp_path)) == []


def test_check_files_names_each_unusable_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL))  # none of the files exist
    fields = [field for field, _ in check_files(settings)]
    assert fields == ["tls.cert", "tls.key", "tls.ca", "services.1.ca"]


def test_check_files_refuses_a_certificate_issued_to_another_agent(tmp_path: Path) -> None:
    settings = with_pki(tmp_path, agent="agent-2")
    [(field, reason)] = check_files(settings)
    assert field == "tls.cert"
    assert "'agent-2'" in reason and "'agent-1'" in reason
