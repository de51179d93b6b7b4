"""Start-up of an enrolled process: use the state directory, or enroll with the token first.

`start(options, kind)` is what `kokoa ingress run` and `kokoa edge run` call with
`--control URL [--token T] [--control-ca FILE] [--state-dir DIR]`, before they read their YAML
file: the enrollment gives the identity and the certificate paths, the file the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common.enroll.client import ControlClient, EnrollError
from common.enroll.messages import Kind
from common.enroll.proof import make_csr, new_key
from common.enroll.renewal import Renewer
from common.enroll.state import Enrollment, StateDir, expired

log = logging.getLogger(__name__)

WHAT = {"ingress": "an ingress node", "agent": "an edge agent"}


@dataclass(frozen=True, slots=True)
class ControlOptions:
    """What the command line says about the control plane (`--control`, `--token`, …)."""

    url: str
    state_dir: Path
    token: str | None = None
    ca_file: Path | None = None


def default_state_dir(config: Path) -> Path:
    """`<config dir>/<config name>.state`: one per configuration file."""
    return config.resolve().parent / f"{config.stem}.state"


@dataclass(frozen=True, slots=True)
class Started:
    """An enrolled process: who it is, where its files are, how to reach the control plane
    (`client.url`, trusting `ca_file` or the system store: the control channel does the same)."""

    enrollment: Enrollment
    state: StateDir
    client: ControlClient
    ca_file: Path | None = None

    def renewer(self) -> Renewer:
        return Renewer(self.state, self.client)


def start(options: ControlOptions, kind: Kind) -> Started:
    """Enroll (or find the enrollment in the state directory) as `kind`.

    Raises:
        EnrollError: the URL is unusable, or see `ensure_enrolled`.
    """
    try:
        client = ControlClient(options.url, ca_file=options.ca_file)
    except ValueError as exc:
        raise EnrollError(f"--control: {exc}") from None
    state = StateDir(options.state_dir)
    enrollment = ensure_enrolled(state, client, kind, options.token)
    return Started(enrollment, state, client, options.ca_file)


def ensure_enrolled(
    state: StateDir,
    client: ControlClient,
    kind: Kind,
    token: str | None,
    *,
    now: datetime | None = None,
) -> Enrollment:
    """The enrollment in `state`, or a new one with `token`.

    - No token: the stored enrollment if its certificate is unexpired.
    - The token this directory last used (its SHA-256 is in `enrollment.json`): ignored, so a
      token left in a service file does not break restarts.
    - Another token: enroll again with it (after a disable and enable, a revocation, a CA
      rotation); the new key and certificate replace the old ones only once issued. If that
      fails while the stored certificate is unexpired, the process starts with the stored
      enrollment and says so (an error); a token refused for good (401) is remembered, so the
      next restart does not present it again.

    Raises:
        EnrollError: not enrolled (or expired) and no usable token; the token was refused and
            nothing valid is stored; the state directory belongs to the other kind of process.
    """
    current = state.load()
    if current is not None and current.subject.kind != kind:
        raise EnrollError(f"{state.root} holds the enrollment of {WHAT[current.subject.kind]}")
    valid = current is not None and not expired(state.certificate(), now or datetime.now(UTC))
    if current is not None and valid and (not token or current.used(token)):
        if token:
            log.info(
                "already enrolled with this token; --token is not used",
                extra={"state": str(state.root)},
            )
        return current
    if not token:
        if current is None:
            raise EnrollError(f"not enrolled yet ({state.root} is empty): pass --token")
        raise EnrollError(
            f"the certificate in {state.root} has expired and cannot be renewed: "
            "enroll again with a new --token"
        )
    try:
        return _enroll(state, client, kind, token, current)
    except EnrollError as exc:
        if current is None or not valid:
            raise
        if exc.status == 401:  # used, expired, revoked or unknown: it never becomes usable
            try:
                current = state.remember_token(current, token)
            except OSError as write_error:  # then the next start tries it again: no harm
                log.warning("cannot remember the refused token", extra={"error": str(write_error)})
        log.error(
            "enrolling again with the new token failed; starting with the stored enrollment "
            "(a token that enrolled this directory before it remembered tokens is refused too)",
            extra={"error": str(exc), "state": str(state.root), "id": str(current.subject.id)},
        )
        return current


def _enroll(
    state: StateDir, client: ControlClient, kind: Kind, token: str, current: Enrollment | None
) -> Enrollment:
    key = new_key()
    credentials = client.enroll(token, kind, make_csr(key))
    if credentials.subject.kind != kind:
        raise EnrollError(f"the control plane enrolled {WHAT[credentials.subject.kind]}")
    old_serial = None if current is None else f"{state.certificate().serial_number:x}"
    enrollment = state.save(client.url, key, credentials, token=token)
    fields = {"kind": kind, "id": str(credentials.subject.id), "state": str(state.root)}
    if current is None:
        log.info("enrolled", extra=fields)
        return enrollment
    if current.subject.id != credentials.subject.id:  # another node or agent now
        state.snapshot_path.unlink(missing_ok=True)
        fields["previous_id"] = str(current.subject.id)
    serial = f"{state.certificate().serial_number:x}"
    log.info("enrolled again", extra=fields | {"old_serial": old_serial, "serial": serial})
    return enrollment
