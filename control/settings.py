"""Control-plane settings: pydantic-settings from init arguments, `KOKOA_…` env and a YAML file.

Precedence, highest first: arguments to `Settings(...)`, environment variables
(`KOKOA_SECRET_KEY`, nested with `__`: `KOKOA_PASSWORD_HASH__MEMORY_COST`), the YAML file named
by `config_file` (the CLI's `--config`, or `KOKOA_CONFIG_FILE`), then the defaults below.

Defaults are the secure choice. Production mode (the default) refuses to start without a
real secret key; development mode makes up a random one per process (sessions then do not
survive a restart) and allows plain-http origins such as http://localhost.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from control.auth.oidc_settings import OidcProvider, unique_slugs

# Secrets that appear in our docs and examples: never acceptable in production.
KNOWN_DEFAULT_SECRETS = frozenset({"", "changeme", "change-me", "secret", "kokoa", "development"})
MIN_SECRET_LENGTH = 32


class InsecureSettingsError(ValueError):
    """Production mode with a missing, default or weak secret."""


class PasswordHashSettings(BaseModel):
    """Argon2id cost. The defaults are pwdlib's recommendation (OWASP): keep them in production."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_cost: int = Field(default=3, ge=1, le=20)
    memory_cost: int = Field(default=65536, ge=1024, le=4 * 1024 * 1024, description="KiB")
    parallelism: int = Field(default=4, ge=1, le=64)


class Settings(BaseSettings):
    """Everything the control plane reads at start; frozen, passed down, never global."""

    model_config = SettingsConfigDict(
        env_prefix="KOKOA_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    config_file: Path | None = None
    mode: Literal["production", "development"] = "production"
    secret_key: SecretStr | None = None
    data_dir: Path = Path("kokoa-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file control.db in data_dir"
    )
    public_url: str = Field(default="https://localhost:8443", description="where users reach us")
    extra_origins: tuple[str, ...] = ()
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8443, ge=0, le=65535)
    forwarded_allow_ips: str | None = None
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain: serve HTTPS directly (else put a proxy in front)",
    )
    tls_key_file: Path | None = Field(default=None, description="PEM key of tls_cert_file")
    open_signup: bool = False
    session_idle_timeout: timedelta = timedelta(minutes=30)
    session_absolute_timeout: timedelta = timedelta(hours=12)
    invitation_ttl: timedelta = timedelta(days=7)
    login_limit_account: str = "10/minute;100/hour"
    login_limit_ip: str = "30/minute;300/hour"
    rate_limit_storage: str = "memory://"
    password_hash: PasswordHashSettings = PasswordHashSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    # Enrollment and the CA (docs/enrollment.md, docs/pki.md).
    ca_key_passphrase: SecretStr | None = Field(
        default=None, description="encrypts the CA key at rest; default: derived from secret_key"
    )
    ca_lifetime: timedelta = Field(default=timedelta(days=3650), ge=timedelta(days=1))
    certificate_lifetime: timedelta = Field(
        default=timedelta(days=7), ge=timedelta(seconds=10), le=timedelta(days=30)
    )
    enrollment_token_ttl: timedelta = Field(
        default=timedelta(hours=1), ge=timedelta(minutes=1), le=timedelta(days=1)
    )
    enroll_limit_ip: str = "20/minute;200/hour"
    channel_heartbeat_interval: float = Field(
        default=5.0, ge=0.1, le=300, description="seconds between the status messages of a channel"
    )
    # Status and health (docs/control-plane.md, "Status and health").
    status_retention: timedelta = Field(
        default=timedelta(days=7),
        ge=timedelta(hours=1),
        le=timedelta(days=400),
        description="how long the traffic time series are kept",
    )
    status_bucket_seconds: int = Field(
        default=10, ge=1, le=3600, description="width of one traffic time-series bucket (s)"
    )
    status_sweep_interval: float = Field(
        default=5.0,
        ge=0.05,
        le=300,
        description="seconds between sweeps (stale → offline, pruning)",
    )
    status_events_per_hour: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="status-change events logged per node/agent per hour",
    )
    health_check_interval: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="seconds between readiness checks of a node; 0: none",
    )
    health_check_timeout: float = Field(
        default=5.0, gt=0, le=60, description="seconds one readiness check may take"
    )
    health_check_failures: int = Field(
        default=2, ge=1, le=100, description="consecutive failed checks before a node is failing"
    )
    health_check_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle trusted for https health URLs (besides the system's)",
    )
    # Sign-in with OpenID Connect (docs/control-plane.md, "Sign-in with OpenID Connect").
    oidc_providers: tuple[OidcProvider, ...] = Field(
        default=(), description="OpenID providers offered on the sign-in page"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        del dotenv_settings, file_secret_settings  # no .env magic: env or the YAML file
        path = None
        if isinstance(init_settings, InitSettingsSource):
            path = init_settings.init_kwargs.get("config_file")
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, path))

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        return _origin_of(value)

    @field_validator("oidc_providers")
    @classmethod
    def _check_providers(cls, value: tuple[OidcProvider, ...]) -> tuple[OidcProvider, ...]:
        return unique_slugs(value)

    @field_validator("extra_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_origin_of(origin) for origin in value)

    @model_validator(mode="after")
    def _check_secrets(self) -> Self:
        if self.session_idle_timeout > self.session_absolute_timeout:
            raise ValueError("session_idle_timeout is longer than session_absolute_timeout")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.mode != "production":
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if key.strip().lower() in KNOWN_DEFAULT_SECRETS:
            raise InsecureSettingsError(
                "secret_key is missing or a known default: set KOKOA_SECRET_KEY to at least "
                f"{MIN_SECRET_LENGTH} random characters (or run with mode=development)"
            )
        if len(key) < MIN_SECRET_LENGTH:
            raise InsecureSettingsError(
                f"secret_key is shorter than {MIN_SECRET_LENGTH} characters"
            )
        if self.ca_key_passphrase is not None:
            _check_strong("ca_key_passphrase", self.ca_key_passphrase.get_secret_value())
        if not self.public_url.startswith("https://"):
            raise InsecureSettingsError("public_url must be https:// in production")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'control.db').resolve()}"

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Origins a cookie-authenticated browser request may come from."""
        return frozenset((self.public_url, *self.extra_origins))


def resolve_secret(settings: Settings) -> bytes:
    """The HMAC key: the configured secret, or (development only) a random per-process one."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode()
    if settings.mode == "production":
        raise InsecureSettingsError("secret_key is required in production")
    return secrets.token_bytes(32)


def _check_strong(name: str, value: str) -> None:
    if value.strip().lower() in KNOWN_DEFAULT_SECRETS or len(value) < MIN_SECRET_LENGTH:
        raise InsecureSettingsError(
            f"{name} is a known default or shorter than {MIN_SECRET_LENGTH} characters"
        )


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{url!r} must be scheme://host[:port] only")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
