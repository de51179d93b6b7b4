"""OpenID provider settings: what a good entry becomes, and that a bad one names its field."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from control.auth.oidc_settings import OidcProvider
from control.settings import Settings
from tests.control import helpers

GOOD: dict[str, Any] = {
    "slug": "corp",
    "label": "Corp SSO",
    "issuer": "https://id.example.com/",
    "client_id": "kokoa",
    "client_secret": "s3cret-value",
}


def settings(tmp_path: Path, *providers: dict[str, Any]) -> Settings:
    return helpers.test_settings(
        f"sqlite+aiosqlite:///{tmp_path}/unused.db", tmp_path, oidc_providers=list(providers)
    )


def test_defaults(tmp_path: Path) -> None:
    assert (
        helpers.test_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path).oidc_providers == ()
    )
    provider = settings(tmp_path, GOOD).oidc_providers[0]
    assert provider.issuer == "https://id.example.com"  # no trailing slash
    assert provider.names_issuer("https://id.example.com/")  # as Auth0's discovery says it
    assert provider.names_issuer("https://id.example.com")
    assert not provider.names_issuer("https://id.example.com/other")
    assert not provider.names_issuer("https://id.example.co")
    assert not provider.names_issuer(None)
    assert provider.discovery_url == "https://id.example.com/.well-known/openid-configuration"
    assert provider.scopes == ("openid", "email", "profile")
    assert not provider.provision and not provider.trust_email
    assert "s3cret" not in repr(provider)


def test_from_the_environment_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    org = str(uuid.uuid4())
    entry = GOOD | {"role_mappings": [{"value": "ops", "org_id": org, "role": "operator"}]}
    monkeypatch.setenv("KOKOA_OIDC_PROVIDERS", json.dumps([entry]))
    provider = helpers.test_settings(
        f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path
    ).oidc_providers[0]
    mapping = provider.role_mappings[0]
    assert (mapping.claim, mapping.value, str(mapping.org_id), mapping.role) == (
        "groups",
        "ops",
        org,
        "operator",
    )


def test_from_the_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "control.yaml"
    path.write_text(
        "oidc_providers:\n"
        "  - slug: corp\n    label: Corp\n    issuer: https://id.example.com\n"
        "    client_id: kokoa\n    client_secret: from-yaml\n"
        "    allowed_domains: [Example.COM]\n"
    )
    provider = Settings(config_file=path, mode="development", data_dir=tmp_path).oidc_providers[0]
    assert provider.client_secret.get_secret_value() == "from-yaml"
    assert provider.allowed_domains == ("example.com",)
    assert provider.email_allowed("ann@EXAMPLE.com") and not provider.email_allowed("x@evil.com")


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"slug": "Has Space"}, "oidc_providers.0.slug", "should match pattern"),
        ({"issuer": "http://id.example.com"}, "oidc_providers.0.issuer", "must be https://"),
        ({"issuer": "ftp://id"}, "oidc_providers.0.issuer", "not an http(s) URL"),
        ({"issuer": "https://id.example.com?x=1"}, "oidc_providers.0.issuer", "no query"),
        ({"client_secret": ""}, "oidc_providers.0.client_secret", "must not be empty"),
        ({"scopes": ["email"]}, "oidc_providers.0.scopes", "must include 'openid'"),
        ({"label": ""}, "oidc_providers.0.label", "at least 1 character"),
        ({"client_id": None}, "oidc_providers.0.client_id", "valid string"),
        ({"role_mappings": [{"value": "x", "org_id": "nope"}]}, "role_mappings.0.org_id", "UUID"),
        (
            {"role_mappings": [{"value": "x", "org_id": str(uuid.uuid4()), "role": "boss"}]},
            "role_mappings.0.role",
            "'viewer', 'operator', 'admin' or 'owner'",
        ),
        ({"secret": "typo"}, "oidc_providers.0.secret", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_entry_names_its_field_and_reason(
    tmp_path: Path, change: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, GOOD | change)
    message = str(caught.value)
    assert field in message and reason in message, message


def test_loopback_issuer_may_be_plain_http() -> None:
    for host in ("127.0.0.1:9400", "localhost", "[::1]:80"):
        assert OidcProvider(**GOOD | {"issuer": f"http://{host}"}).issuer == f"http://{host}"


def test_two_providers_with_one_slug_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="two providers have the slug 'corp'"):
        settings(tmp_path, GOOD, GOOD | {"label": "Other"})
