"""What a snapshot tells an ingress node or an edge agent, and its version.

`IngressConfig` and `AgentConfig` are the shapes of the `config` of a snapshot
(docs/protocol.md, "Snapshots"). They check the shape only; what the values mean (host names,
origins, addresses) is checked where they are turned into the process's settings, which is
also where a snapshot is refused as a whole (`SnapshotRejected` → nack, the old one stays).
Unknown fields are ignored: a newer control plane may add some.

`version` is the SHA-256 of the canonical JSON of `config`; `decode` checks it, so a snapshot
mangled on the way or on disk is refused rather than half applied.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.channel.messages import SnapshotMessage


class SnapshotRejected(Exception):
    """A snapshot cannot be used: the reason goes to the control plane in a nack."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Subject(_Config):
    id: uuid.UUID
    name: str
    org_id: uuid.UUID


# ---- an ingress node ----------------------------------------------------------------------


class IngressService(_Config):
    id: uuid.UUID
    name: str
    hosts: tuple[str, ...]
    path_prefix: str = "/"
    strip_prefix: bool = False
    agents: tuple[str, ...] = ()  # "<org id>/<agent id>"


class Revoked(_Config):
    serials: tuple[str, ...] = Field(default=(), description="lowercase hex")
    identities: tuple[str, ...] = Field(default=(), description="<org id>/<agent id>")

    def serial_numbers(self) -> frozenset[int]:
        """The serials as integers.

        Raises:
            SnapshotRejected: one is not hexadecimal.
        """
        try:
            return frozenset(int(serial, 16) for serial in self.serials)
        except ValueError:
            raise SnapshotRejected("revoked.serials: not all hexadecimal") from None


MAX_PEM = 65_536  # characters of one chain or key: more is not a certificate of ours


class PublicCertificate(_Config):
    """An HTTPS certificate the node serves for the names in it (chosen by SNI). `key` is
    the private key in clear PEM: it travels only inside the authenticated channel, and is
    kept only in the 0600 `snapshot.json` (docs/protocol.md, "Snapshots")."""

    id: uuid.UUID
    names: tuple[str, ...] = ()  # as the control plane read them; the node reads its own
    not_after: datetime | None = None
    chain: str = Field(min_length=1, max_length=MAX_PEM)
    key: str = Field(min_length=1, max_length=MAX_PEM, repr=False)


class IngressConfig(_Config):
    node: Subject
    services: tuple[IngressService, ...] = ()
    revoked: Revoked = Revoked()
    certificates: tuple[PublicCertificate, ...] = ()


# ---- an edge agent ------------------------------------------------------------------------


class IngressAddress(_Config):
    id: uuid.UUID
    name: str
    address: str  # host:port of the node's QUIC tunnel
    server_name: str | None = None


class AgentService(_Config):
    id: uuid.UUID
    name: str
    origin: str
    host_header: str | None = None
    tls_verify: bool = True
    connect_timeout: float = 5.0
    read_timeout: float = 60.0


class AgentConfig(_Config):
    agent: Subject
    ingress: tuple[IngressAddress, ...] = ()
    services: tuple[AgentService, ...] = ()


C = TypeVar("C", IngressConfig, AgentConfig)


# ---- one snapshot -------------------------------------------------------------------------


def canonical(config: dict[str, Any]) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def version_of(config: dict[str, Any]) -> str:
    """The version of a snapshot whose config is `config`: SHA-256 (hex) of its canonical JSON."""
    return hashlib.sha256(canonical(config)).hexdigest()


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[C]):
    """A snapshot as received: its version, when it was issued, and its validated config."""

    version: str
    issued_at: datetime
    config: C
    raw: dict[str, Any]  # the config as sent: what is stored, and what the version covers

    @property
    def document(self) -> dict[str, Any]:
        """What `snapshot.json` holds."""
        return {
            "version": self.version,
            "issued_at": self.issued_at.isoformat(),
            "config": self.raw,
        }


def decode(message: SnapshotMessage, model: type[C]) -> Snapshot[C]:
    """The snapshot in `message`, its config validated as `model`.

    Raises:
        SnapshotRejected: the version is not that of the config, or the config has not the
            shape of `model` (the first problem is named).
    """
    if version_of(message.config) != message.version:
        raise SnapshotRejected("the version is not the SHA-256 of the config")
    try:
        config = model.model_validate(message.config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise SnapshotRejected(f"config.{where}: {first['msg']}") from None
    return Snapshot(message.version, message.issued_at, config, message.config)


def from_document(document: object, model: type[C]) -> Snapshot[C]:
    """A snapshot read back from `snapshot.json`.

    Raises:
        SnapshotRejected: not a snapshot document, or see `decode`.
    """
    if not isinstance(document, dict):
        raise SnapshotRejected("not a stored snapshot: not a JSON object")
    try:
        message = SnapshotMessage.model_validate({**document, "type": "snapshot"})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise SnapshotRejected(f"not a stored snapshot: {where}: {first['msg']}") from None
    return decode(message, model)
