"""A state directory as an enrollment leaves it, written by the real `StateDir` with a
throwaway CA (no control plane needed), and stored snapshots: for the tests of
`check-config` in control mode (tests/edge/test_check_config.py,
tests/ingress/test_check_config.py)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from common import pki
from common.enroll import Credentials, StateDir, Subject
from common.enroll.lifetime import renew_after
from common.enroll.messages import Kind
from common.enroll.proof import new_key

CONTROL_URL = "https://control.example.com"


def enrolled_state(
    root: Path, kind: Kind, *, name: str = "one", lifetime: timedelta = timedelta(days=7)
) -> tuple[StateDir, Subject]:
    """`root` holding the enrollment of a new `kind` called `name`."""
    ca_key, ca_cert = pki.create_ca("Test CA", days=30)
    key, subject_id, org = new_key(), uuid.uuid4(), uuid.uuid4()
    address = "127.0.0.1:7844" if kind == "ingress" else None
    _, cert = pki.issue_certificate(
        ca_key, ca_cert, role=kind, name=str(subject_id), org=str(org),
        ip_addresses=["127.0.0.1"] if address else [], public_key=key.public_key(),
        valid_for=lifetime,
    )  # fmt: skip
    subject = Subject(
        kind=kind, id=subject_id, org_id=org, name=name,
        identity=pki.identity_uri(kind, str(subject_id), str(org)), tunnel_address=address,
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    credentials = Credentials(
        certificate=cert.public_bytes(pem).decode(),
        ca_certificates=ca_cert.public_bytes(pem).decode(),
        subject=subject,
        not_after=cert.not_valid_after_utc,
        renew_after=renew_after(cert),
    )
    state = StateDir(root)
    state.save(CONTROL_URL, key, credentials, token="kokoa_ent_test")
    return state, subject


def owner(subject: Subject) -> dict[str, str]:
    return {"id": str(subject.id), "name": subject.name, "org_id": str(subject.org_id)}


def store_snapshot(state: StateDir, config: dict[str, Any]) -> str:
    """Store `config` as `snapshot.json` the way the channel client does; its version."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    version = hashlib.sha256(canonical).hexdigest()
    issued = datetime.now(UTC).isoformat()
    state.save_snapshot({"version": version, "issued_at": issued, "config": config})
    return version
