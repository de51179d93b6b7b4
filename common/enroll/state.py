"""The state directory of an enrolled node or agent: its key, certificate, CA bundle and who it
is, written so that a crash at any moment leaves a usable pair.

    DIR/            mode 0700
      tunnel.key    the private key, 0600 (made here; it never leaves this machine)
      tunnel.crt    the certificate from the control plane
      ca.crt        the CA certificates the tunnel trusts
      enrollment.json   control-plane URL, the identity (kind, id, org, name) and the SHA-256
                        of the last enrollment token used here (never the token)
      snapshot.json     the last snapshot applied from the control channel, 0600

An enrollment or a renewal writes `enrollment.json.next`, `tunnel.key.next` and
`tunnel.crt.next`, then renames the key, the certificate, then `enrollment.json`. `load()`
finishes or discards what a crash interrupted: a `.next` certificate that matches the key in
place (or the `.next` key) is moved in, then a `.next` enrollment.json that names the
certificate in place; anything else pending is dropped, which leaves the previous state. An
enrollment.json that does not name the certificate's subject (left so by a crash of a version
without `enrollment.json.next`, or by hand) is refused as an incomplete enrollment.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from common import pki
from common.enroll.client import EnrollError
from common.enroll.messages import Credentials, Subject
from common.pki import TlsFiles

ENROLLMENT_FILE = "enrollment.json"
SNAPSHOT_FILE = "snapshot.json"
NEXT = ".next"


@dataclass(frozen=True, slots=True)
class Enrollment:
    control_url: str
    subject: Subject
    token_sha256: str | None = None  # the last token used here: redeemed, or refused for good

    def used(self, token: str) -> bool:
        """Whether `token` is the last one this state directory redeemed (or was refused)."""
        return self.token_sha256 == token_digest(token)


def token_digest(token: str) -> str:
    """What the state directory keeps of an enrollment token: its SHA-256, hex (as the control
    plane does; a 256-bit random secret needs no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(
            cert=self.root / "tunnel.crt", key=self.root / "tunnel.key", ca=self.root / "ca.crt"
        )

    def load(self) -> Enrollment | None:
        """Who we are, or None if never enrolled here.

        Raises:
            EnrollError: the directory holds an enrollment that cannot be read.
        """
        path = self.root / ENROLLMENT_FILE
        if not path.exists() and not _next(path).exists():
            return None
        self._recover()
        if not path.exists():  # a first enrollment that a crash stopped before its certificate
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            digest = data.get("token_sha256")
            if digest is not None and not isinstance(digest, str):
                raise ValueError("token_sha256 is not a string")
            enrollment = Enrollment(
                data["control_url"], Subject.model_validate(data["subject"]), digest
            )
            cert = self.certificate()
            self._check_pair(cert, self.key())
            named = pki.identity_from_certificate(cert).name
            if named != str(enrollment.subject.id):
                raise EnrollError(
                    f"the enrollment in {self.root} is incomplete: {ENROLLMENT_FILE} names "
                    f"{enrollment.subject.id} but the certificate is for {named}; "
                    "move the directory away and enroll again with a new --token"
                )
        except (OSError, ValueError, KeyError, TypeError, ValidationError, pki.PkiError) as exc:
            raise EnrollError(f"the enrollment in {self.root} cannot be used: {exc}") from None
        return enrollment

    def certificate(self) -> x509.Certificate:
        return pki.load_certificates(self.tls.cert)[0]

    def key(self) -> ec.EllipticCurvePrivateKey:
        return pki.load_private_key(self.tls.key)

    def save(
        self,
        control_url: str,
        key: ec.EllipticCurvePrivateKey,
        credentials: Credentials,
        *,
        token: str | None = None,
    ) -> Enrollment:
        """Store a new key with its certificate (and the CA bundle, and who we are).

        `token`: the enrollment token just redeemed (its digest is kept); a renewal passes
        none and the digest stored before is kept.

        Raises:
            EnrollError: the certificate or the CA bundle cannot be read, or the certificate is
                not for `key` or not for the subject named (nothing is written then).
            common.pki.PkiError: a file cannot be written.
        """
        try:
            cert = x509.load_pem_x509_certificate(credentials.certificate.encode())
            roots = x509.load_pem_x509_certificates(credentials.ca_certificates.encode())
            named = pki.identity_from_certificate(cert).name
        except (ValueError, pki.PkiError) as exc:
            raise EnrollError(
                f"the control plane sent a certificate or CA bundle that cannot be read: {exc}"
            ) from None
        self._check_pair(cert, key)
        if named != str(credentials.subject.id):
            raise EnrollError("the certificate is not for the subject the control plane named")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tls = self.tls
        digest = token_digest(token) if token is not None else self._stored_digest()
        enrollment = Enrollment(control_url, credentials.subject, digest)
        path = self.root / ENROLLMENT_FILE
        pki.write_certificate(tls.ca, *roots)
        _write_json(_next(path), _document(enrollment))  # first: see _recover
        pki.write_key(_next(tls.key), key)
        pki.write_certificate(_next(tls.cert), cert)
        os.replace(_next(tls.key), tls.key)
        os.replace(_next(tls.cert), tls.cert)
        os.replace(_next(path), path)
        return enrollment

    def remember_token(self, enrollment: Enrollment, token: str) -> Enrollment:
        """Keep `token`'s digest with `enrollment` (a token refused for good: a restart with
        the same environment must not try it again)."""
        remembered = Enrollment(enrollment.control_url, enrollment.subject, token_digest(token))
        _write_json(self.root / ENROLLMENT_FILE, _document(remembered))
        return remembered

    def _stored_digest(self) -> str | None:
        try:
            data = json.loads((self.root / ENROLLMENT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        digest = data.get("token_sha256") if isinstance(data, dict) else None
        return digest if isinstance(digest, str) else None

    @property
    def snapshot_path(self) -> Path:
        return self.root / SNAPSHOT_FILE

    def save_snapshot(self, document: dict[str, Any]) -> None:
        """Replace `snapshot.json` atomically (temporary file 0600, fsync, rename).

        Raises:
            OSError: it cannot be written (the previous one, if any, stays).
        """
        _write_json(self.snapshot_path, document)

    def load_snapshot(self) -> Any:
        """The JSON document in `snapshot.json`, or None if there is none.

        Raises:
            OSError: it cannot be read.
            ValueError: it is not JSON.
        """
        try:
            text = self.snapshot_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text)

    def _recover(self) -> None:
        tls = self.tls
        cert_next, key_next = _next(tls.cert), _next(tls.key)
        if cert_next.exists():
            key_path = key_next if key_next.exists() else tls.key
            if _matches(cert_next, key_path):
                if key_path == key_next:
                    os.replace(key_next, tls.key)
                os.replace(cert_next, tls.cert)
        cert_next.unlink(missing_ok=True)
        key_next.unlink(missing_ok=True)
        path = self.root / ENROLLMENT_FILE
        if _names(_next(path), tls.cert):
            os.replace(_next(path), path)
        _next(path).unlink(missing_ok=True)

    @staticmethod
    def _check_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        if cert.public_key() != key.public_key():
            raise EnrollError("the certificate does not belong to the key")


def _next(path: Path) -> Path:
    return path.with_name(path.name + NEXT)


def _matches(cert_path: Path, key_path: Path) -> bool:
    try:
        cert = pki.load_certificates(cert_path)[0]
        return cert.public_key() == pki.load_private_key(key_path).public_key()
    except pki.PkiError:
        return False


def _names(enrollment_path: Path, cert_path: Path) -> bool:
    """Whether the enrollment.json at `enrollment_path` is for the certificate's subject."""
    try:
        subject = json.loads(enrollment_path.read_text(encoding="utf-8"))["subject"]["id"]
        cert = pki.load_certificates(cert_path)[0]
        return bool(pki.identity_from_certificate(cert).name == subject)
    except (OSError, ValueError, KeyError, TypeError, pki.PkiError):
        return False


def _document(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "control_url": enrollment.control_url,
        "subject": enrollment.subject.model_dump(mode="json"),
        "token_sha256": enrollment.token_sha256,
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    data = json.dumps(document, indent=2).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def expired(cert: x509.Certificate, now: datetime) -> bool:
    return now >= cert.not_valid_after_utc
