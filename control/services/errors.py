"""Typed domain errors. The API maps each to an RFC 9457 problem with a stable `type`."""

from __future__ import annotations


class DomainError(Exception):
    """Base: `status` and `slug` (the problem type) are per class; `detail` per instance."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class Unauthenticated(DomainError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class InvalidCredentials(DomainError):
    status, slug, title = 401, "invalid-credentials", "Wrong e-mail address or password"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Your role does not allow this"


class CsrfFailed(DomainError):
    status, slug, title = 403, "csrf-failed", "Cross-site request refused"


class SignupClosed(DomainError):
    status, slug, title = 403, "signup-closed", "Sign-up is by invitation only"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflicts with the current state"


class InvalidInput(DomainError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class WeakPassword(DomainError):
    status, slug, title = 422, "weak-password", "Password not allowed"


class Throttled(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many attempts"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or f"too many attempts; try again in {retry_after} s")
        self.retry_after = retry_after


class InvitationInvalid(DomainError):
    status, slug, title = 400, "invitation-invalid", "Invitation invalid, used or expired"


class UserRequired(DomainError):
    status, slug, title = 403, "user-required", "Only a user can do this, not a service account"


class EnrollmentRefused(DomainError):
    status, slug, title = 401, "enrollment-refused", "Enrollment token invalid, used or expired"


class RenewalRefused(DomainError):
    status, slug, title = 401, "renewal-refused", "Certificate renewal refused"


class IdentityDisabled(DomainError):
    status, slug, title = 403, "identity-disabled", "The node or agent is disabled or deleted"


class ProviderUnavailable(DomainError):
    status, slug, title = 502, "provider-unavailable", "The OpenID provider cannot be reached"
