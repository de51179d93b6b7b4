"""The channel's handshake: a hello proven by the tunnel certificate's key, checked the way a
renewal is (control/services/renewal.py), with the same stateless nonce and throttle.

Checks, in order: the client address is not throttled; the nonce is ours and fresh; the
certificate is unexpired, chains to one of our CAs and names a node or agent of an
organisation; it is of the kind the hello claims; the signature over (context, nonce, serial)
verifies with its key; we issued that serial to that subject; the subject exists and is
enabled ("disabled" otherwise); the serial is not revoked ("revoked"). Every failure counts
against the client address like a failed renewal.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from common.enroll.messages import Kind
from common.enroll.proof import verify_channel
from common.transport import PeerIdentity
from control.channel.messages import ChannelClosing, Hello
from control.runtime import Runtime
from control.services import certificates, renewal
from control.services.errors import IdentityDisabled, RenewalRefused

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end of a channel, and with which certificate."""

    kind: Kind
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    serial: str  # lowercase hex
    not_after: datetime


async def authenticate(rt: Runtime, nonce: str, hello: Hello, ip: str | None) -> Peer:
    """The peer `hello` proves to be, or ChannelClosing with the error to send.

    Raises:
        ChannelClosing: "refused" (4401: throttled, bad nonce, certificate or signature, a
            certificate we did not issue, the wrong kind), "disabled" or "revoked" (4403).
    """
    wait = await rt.enroll_throttle.retry_after(ip)
    if wait is not None:
        raise ChannelClosing.refusal("refused", f"too many failed attempts; retry in {wait} s")
    try:
        return await _check(rt, nonce, hello)
    except ChannelClosing as refusal:
        await rt.enroll_throttle.failed(ip)
        log.warning("control channel from %s refused (%s): %s", ip, refusal.error, refusal.reason)
        raise


async def _check(rt: Runtime, nonce: str, hello: Hello) -> Peer:
    try:
        renewal.check_nonce(rt, nonce)
        cert, identity = renewal.verify_current(rt, await rt.ca.authority(), hello.certificate)
    except RenewalRefused as exc:
        raise ChannelClosing.refusal("refused", exc.detail) from None
    if identity.role != hello.kind:
        raise ChannelClosing.refusal(
            "refused", f"the certificate is an {identity.role}'s, not an {hello.kind}'s"
        )
    if not verify_channel(cert, nonce, hello.signature):
        raise ChannelClosing.refusal("refused", "the signature is not the certificate key's")
    return await _holder(rt, cert, identity)


async def _holder(rt: Runtime, cert: x509.Certificate, identity: PeerIdentity) -> Peer:
    serial = certificates.serial_hex(cert)
    async with rt.sessionmaker() as db, db.begin():
        try:
            record = await renewal.issued_record(db, serial)
            holder = await renewal.check_holder(db, record, identity)
        except RenewalRefused as exc:
            raise ChannelClosing.refusal("refused", exc.detail) from None
        except IdentityDisabled:
            detail = f"the {identity.role} is disabled or deleted"
            raise ChannelClosing.refusal("disabled", detail) from None
        try:
            renewal.check_unrevoked(record)
        except RenewalRefused as exc:
            raise ChannelClosing.refusal("revoked", exc.detail) from None
    return Peer(
        holder.kind, holder.id, holder.org_id, holder.name, serial, cert.not_valid_after_utc
    )
