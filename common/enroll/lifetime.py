"""When a certificate should be renewed, read from the certificate itself.

A leaf from our CA starts `common.pki.CLOCK_SKEW` before it was issued; its lifetime L is
counted from the issue time. Renewal starts when 2/3 of L have passed, leaving 1/3 (2.3 days
of a 7-day certificate) to get through a control-plane outage before the tunnel stops.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509

from common.pki import CLOCK_SKEW

RENEW_FRACTION = 2 / 3  # of the lifetime, then renew
URGENT_FRACTION = 5 / 6  # of the lifetime, then a failing renewal is logged as an error


def issued_at(cert: x509.Certificate) -> datetime:
    return min(cert.not_valid_before_utc + CLOCK_SKEW, cert.not_valid_after_utc)


def lifetime(cert: x509.Certificate) -> timedelta:
    return cert.not_valid_after_utc - issued_at(cert)


def renew_after(cert: x509.Certificate) -> datetime:
    """When the holder should start renewing `cert`."""
    return issued_at(cert) + lifetime(cert) * RENEW_FRACTION


def urgent_after(cert: x509.Certificate) -> datetime:
    """After this, a renewal that keeps failing is an error worth waking someone for."""
    return issued_at(cert) + lifetime(cert) * URGENT_FRACTION
