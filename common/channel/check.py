"""What `kokoa ingress check-config` and `kokoa edge check-config` report about a file for
control mode and the state directory of its process: its enrollment, its certificate and the
snapshot it would start from (docs/enrollment.md, "Checking a configuration").

- `inspect_state(state, kind, model)` reads without changing anything (a renewal a crash
  interrupted is left for the process to finish) and returns what it found, line by line, and
  the problems that would stop the process or make it start without its stored configuration.
- `check_controlled(checker, file, control, root)`: the whole check — the file loaded as
  `run --control` loads it, the state directory, and whether the stored snapshot applies to
  the file; each kind of process says how (`Checker`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Generic, NoReturn, TypeVar

from cryptography import x509
from pydantic import ValidationError

from common import pki
from common.channel.snapshot import C, IngressConfig, Snapshot, SnapshotRejected, from_document
from common.config import ConfigError
from common.enroll.client import check_control_url
from common.enroll.lifetime import renew_after, urgent_after
from common.enroll.messages import Kind, Subject
from common.enroll.state import ENROLLMENT_FILE, Enrollment, StateDir

WHAT = {"ingress": "an ingress node", "agent": "an edge agent"}
S = TypeVar("S")  # a process's settings


@dataclass
class StateReport(Generic[C]):
    """What `inspect_state` found: `lines` to show, `problems` that make the check fail."""

    root: Path
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    enrollment: Enrollment | None = None
    snapshot: Snapshot[C] | None = None


def inspect_state(
    state: StateDir, kind: Kind, model: type[C], *, now: datetime | None = None
) -> StateReport[C]:
    """Read the enrollment, the certificate and the stored snapshot in `state`."""
    report: StateReport[C] = StateReport(state.root)
    now = now or datetime.now(UTC)
    enrollment_file = state.root / ENROLLMENT_FILE
    if not enrollment_file.exists():
        report.lines.append(f"not enrolled yet: the first start needs --token ({state.root})")
        return report
    try:
        enrollment = _read_enrollment(state)
        cert = state.certificate()
        key = state.key()
    except (OSError, ValueError, KeyError, TypeError, ValidationError, pki.PkiError) as exc:
        report.problems.append(f"the enrollment in {state.root} cannot be used: {exc}")
        return report
    subject = enrollment.subject
    if subject.kind != kind:
        report.problems.append(f"{state.root} holds the enrollment of {WHAT[subject.kind]}")
        return report
    report.enrollment = enrollment
    report.lines.append(
        f"enrolled as {kind} {subject.name!r} (id {subject.id}, org {subject.org_id}) "
        f"with {enrollment.control_url}"
    )
    _check_certificate(report, state, subject, cert, key.public_key() == cert.public_key(), now)
    _check_snapshot(report, state, subject, model)
    return report


def _read_enrollment(state: StateDir) -> Enrollment:
    data = json.loads((state.root / ENROLLMENT_FILE).read_text(encoding="utf-8"))
    digest = data.get("token_sha256")
    return Enrollment(data["control_url"], Subject.model_validate(data["subject"]), digest)


def _check_certificate(
    report: StateReport[C],
    state: StateDir,
    subject: Subject,
    cert: x509.Certificate,
    matches_key: bool,
    now: datetime,
) -> None:
    problems = report.problems
    if not matches_key:
        problems.append(f"{state.tls.cert} does not belong to the key {state.tls.key}")
    try:
        identity = pki.identity_from_certificate(cert)
        if (identity.role, identity.name) != (subject.kind, str(subject.id)):
            problems.append(
                f"{state.tls.cert} is for {identity.role} {identity.name}, not this enrollment"
            )
        pki.load_certificates(state.tls.ca)
    except pki.PkiError as exc:
        problems.append(str(exc))
    expires = cert.not_valid_after_utc
    serial = f"{cert.serial_number:x}"
    if now >= expires:
        problems.append(
            f"the certificate (serial {serial}) expired at {expires.isoformat()}: "
            "start with a new --token to enroll again"
        )
        return
    left = _duration(expires - now)
    due = "due now" if now >= renew_after(cert) else f"from {renew_after(cert).isoformat()}"
    report.lines.append(
        f"certificate: serial {serial}, expires {expires.isoformat()} (in {left}), renewal {due}"
    )
    if now >= urgent_after(cert):
        report.lines.append(
            "warning: the certificate is in the last sixth of its life: renewal has been failing"
        )


def _check_snapshot(
    report: StateReport[C], state: StateDir, subject: Subject, model: type[C]
) -> None:
    try:
        document = state.load_snapshot()
    except (OSError, ValueError) as exc:
        report.problems.append(f"{state.snapshot_path} cannot be read: {exc}")
        return
    if document is None:
        does = "serves no service" if subject.kind == "ingress" else "dials no node"
        report.lines.append(
            f"snapshot: none stored yet (it {does} until the control plane sends one)"
        )
        return
    try:
        snapshot = from_document(document, model)
    except SnapshotRejected as exc:
        report.problems.append(f"the stored snapshot {state.snapshot_path} is not valid: {exc}")
        return
    config = snapshot.config
    owner = config.node.id if isinstance(config, IngressConfig) else config.agent.id
    if owner != subject.id:
        report.problems.append(
            f"the stored snapshot is for another {subject.kind} ({owner}), not {subject.id}"
        )
        return
    report.snapshot = snapshot
    report.lines.append(
        f"snapshot: version {snapshot.version[:16]}…, issued {snapshot.issued_at.isoformat()}"
    )


def _duration(left: timedelta) -> str:
    seconds = left.total_seconds()
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def file_keys(path: Path) -> set[str]:
    """The top-level keys of the YAML mapping at `path` (none if it cannot be read: loading
    the file reports why)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return set()
    return {str(key) for key in data} if isinstance(data, dict) else set()


def outcome(file: Path, lines: list[str], problems: list[str]) -> tuple[str, str, int]:
    """What a control-mode check prints on stdout and stderr, and its exit code."""
    out = [f"{file}: {'NOT OK' if problems else 'OK'} (control mode)", *(f"  {x}" for x in lines)]
    err = [f"  problem: {problem}" for problem in problems]
    return "\n".join(out), "\n".join(err), 1 if problems else 0


@dataclass(frozen=True, slots=True)
class Checker(Generic[C, S]):
    """How one kind of process is checked in control mode.

    `identity`/`tls`: the fields the enrollment decides (their values from `identity_of`);
    `load(file, overlay)` reads the file in control mode (ConfigError); `file_problems(
    settings, enrolled)` checks the files it names; `describe(settings)` is the file's line;
    `apply(settings, config)` applies a stored snapshot as the process would (lines to show;
    SnapshotRejected).
    """

    kind: Kind
    model: type[C]
    identity: str
    tls: str
    identity_of: Callable[[Enrollment], str]
    load: Callable[[Path, dict[str, object]], S]
    file_problems: Callable[[S, bool], Sequence[tuple[str, str]]]
    describe: Callable[[S], str]
    apply: Callable[[S, C], list[str]]


def check_controlled(
    checker: Checker[C, S], file: Path, control: str | None, root: Path
) -> tuple[str, str, int]:
    """The check of `file` and of the state directory `root`: stdout, stderr, exit code."""
    state = StateDir(root)
    found: StateReport[C] = inspect_state(state, checker.kind, checker.model)
    lines, problems = [f"state directory: {root}", *found.lines], list(found.problems)
    enrollment = found.enrollment
    if control is not None:
        try:
            url = check_control_url(control)
        except ValueError as exc:
            problems.append(f"--control: {exc}")
        else:
            if enrollment is not None and enrollment.control_url != url:
                lines.append(f"note: enrolled with {enrollment.control_url}, --control is {url}")
    tls = state.tls
    files = {"cert": str(tls.cert), "key": str(tls.key), "ca": str(tls.ca)}
    overlay: dict[str, object] = {checker.tls: files}
    if enrollment is not None:
        overlay[checker.identity] = checker.identity_of(enrollment)
    elif checker.identity not in file_keys(file):
        overlay[checker.identity] = "not-enrolled-yet"  # only to validate the rest of the file
    try:
        settings = checker.load(file, overlay)
    except ConfigError as exc:
        problems.append(str(exc))
        return outcome(file, lines, problems)
    in_files = checker.file_problems(settings, enrollment is not None)
    problems += [f"{where}: {reason}" for where, reason in in_files]
    lines.insert(0, checker.describe(settings))
    if found.snapshot is not None:
        try:
            lines += [f"  {line}" for line in checker.apply(settings, found.snapshot.config)]
        except SnapshotRejected as exc:
            problems.append(f"the stored snapshot does not apply: {exc}")
    return outcome(file, lines, problems)


def controlled_root(file: Path, control: str | None, state_dir: Path | None) -> Path | None:
    """The state directory to check if `file` is to be checked for control mode: with
    `--control` or `--state-dir`, or when its default state directory holds an enrollment."""
    from common.enroll.start import default_state_dir

    root = state_dir or default_state_dir(file)
    if control is not None or state_dir is not None or (root / ENROLLMENT_FILE).exists():
        return root
    return None


def echo_and_exit(result: tuple[str, str, int]) -> NoReturn:
    """Print what `check_controlled` found and exit with its status (a typer command)."""
    import typer

    out, err, code = result
    typer.echo(out)
    if err:
        typer.echo(err, err=True)
    raise typer.Exit(code)
