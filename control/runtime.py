"""What one control-plane application holds for its lifetime, built by the composition root.

No module-level singletons: `create_app(settings)` builds one `Runtime`, keeps it on
`app.state.runtime`, and the API reaches it through a dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from control.auth.ip_throttle import IpThrottle
from control.auth.oidc import RelyingParty
from control.auth.passwords import PasswordHasher, PasswordPolicy, load_common_passwords
from control.auth.throttle import LoginThrottle
from control.ca import ControlCA
from control.db.base import utcnow
from control.db.engine import create_engine, create_sessionmaker
from control.settings import Settings, resolve_secret


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    hasher: PasswordHasher
    policy: PasswordPolicy
    throttle: LoginThrottle
    secret: bytes
    clock: Callable[[], datetime]
    ca: ControlCA
    enroll_throttle: IpThrottle
    oidc: RelyingParty
    oidc_throttle: IpThrottle

    def now(self) -> datetime:
        return self.clock()


def build_runtime(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Runtime:
    """Engine, hasher, policy and throttle for `settings` (connects to nothing yet)."""
    engine = create_engine(settings.effective_database_url)
    sessionmaker = create_sessionmaker(engine)
    secret = resolve_secret(settings)
    return Runtime(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        hasher=PasswordHasher(settings.password_hash),
        policy=PasswordPolicy(load_common_passwords()),
        throttle=LoginThrottle(
            settings.login_limit_account, settings.login_limit_ip, settings.rate_limit_storage
        ),
        secret=secret,
        clock=clock,
        ca=ControlCA(settings, sessionmaker, clock),
        enroll_throttle=IpThrottle("enroll", settings.enroll_limit_ip, settings.rate_limit_storage),
        oidc=RelyingParty(settings.oidc_providers, settings.public_url, secret),
        oidc_throttle=IpThrottle("oidc", settings.login_limit_ip, settings.rate_limit_storage),
    )
