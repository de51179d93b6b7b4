"""/enrollment: how ingress nodes and edge agents get and renew their tunnel certificates.

No session or API token: enrollment is authenticated by a one-time enrollment token, renewal
by a signature of the current certificate's key over a server nonce (docs/enrollment.md).
Failures count against the client address like failed logins.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from common.enroll.messages import Challenge, Credentials, EnrollRequest, RenewRequest
from control.api.deps import ClientDep, Db, RuntimeDep
from control.api.problems import error_responses
from control.services import enrollment, renewal

router = APIRouter(prefix="/enrollment", tags=["enrollment"], responses=error_responses())


@router.post("", status_code=status.HTTP_201_CREATED)
async def enroll(data: EnrollRequest, rt: RuntimeDep, db: Db, client: ClientDep) -> Credentials:
    """Redeem an enrollment token: a certificate for the CSR's key, with the identity of the
    node or agent the token was made for, and the CA certificates to trust."""
    return await enrollment.enroll(db, rt, data, client)


@router.post("/challenges", status_code=status.HTTP_201_CREATED)
async def create_renewal_challenge(rt: RuntimeDep) -> Challenge:
    """A nonce (valid five minutes) for the current certificate's key to sign when renewing."""
    return renewal.challenge(rt)


@router.post("/renewals", status_code=status.HTTP_201_CREATED)
async def renew_certificate(
    data: RenewRequest, rt: RuntimeDep, db: Db, client: ClientDep
) -> Credentials:
    """A new certificate for a new key, proven by the current (unexpired, unrevoked)
    certificate's key; refused for a disabled or deleted node or agent."""
    return await renewal.renew(db, rt, data, client)
