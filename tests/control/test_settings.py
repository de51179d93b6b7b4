"""Settings: secure defaults, production refuses weak secrets, YAML file and env precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from control.settings import Settings, resolve_secret

GOOD_SECRET = "k" * 40


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KOKOA_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("secret", [None, "", "changeme", "CHANGEME", "secret", "short-secret"])
def test_production_refuses_missing_default_or_short_secrets(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(secret_key=secret)


def test_production_needs_https_public_url() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(secret_key=GOOD_SECRET, public_url="http://kokoa.example.com")


def test_secure_defaults() -> None:
    settings = Settings(secret_key=GOOD_SECRET)
    assert settings.mode == "production"
    assert settings.open_signup is False
    assert settings.listen_host == "127.0.0.1"
    assert settings.password_hash.memory_cost >= 65536
    assert settings.session_idle_timeout.total_seconds() <= 1800
    assert settings.session_absolute_timeout.total_seconds() <= 12 * 3600
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert resolve_secret(settings) == GOOD_SECRET.encode()


def test_development_makes_up_a_secret_per_process() -> None:
    settings = Settings(mode="development")
    assert resolve_secret(settings) != resolve_secret(settings)
    assert len(resolve_secret(settings)) == 32


def test_yaml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "control.yaml"
    config.write_text(
        f"secret_key: {GOOD_SECRET}\n"
        "public_url: https://kokoa.example.com/\n"
        "open_signup: true\n"
        "listen_port: 9000\n"
        "password_hash: {time_cost: 4}\n"
    )
    monkeypatch.setenv("KOKOA_LISTEN_PORT", "9100")
    settings = Settings(config_file=config)
    assert settings.public_url == "https://kokoa.example.com"
    assert settings.open_signup is True
    assert settings.listen_port == 9100  # env beats the file
    assert settings.password_hash.time_cost == 4
    assert Settings(config_file=config, listen_port=9200).listen_port == 9200  # arguments win


def test_yaml_errors_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "control.yaml"
    config.write_text(f"secret_key: {GOOD_SECRET}\nlisten_prot: 9000\n")
    with pytest.raises(ValidationError, match="listen_prot"):
        Settings(config_file=config)
    config.write_text(f"secret_key: {GOOD_SECRET}\npublic_url: kokoa.example.com\n")
    with pytest.raises(ValidationError, match="public_url"):
        Settings(config_file=config)


def test_idle_timeout_cannot_exceed_the_absolute_one() -> None:
    with pytest.raises(ValidationError, match="idle"):
        Settings(secret_key=GOOD_SECRET, session_idle_timeout=7200, session_absolute_timeout=3600)
