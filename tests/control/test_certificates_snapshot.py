"""Public certificates in ingress snapshots: which certificate serves which routed host name
(pure), and over a real channel (uvicorn + websockets, SQLite and PostgreSQL) that a node gets
exactly its organisation's certificates for the host names it routes, with their keys, and a
new snapshot when one is uploaded, replaced or deleted."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from control import ca_rotation
from control.channel.snapshots import UnsealedKeys, certificates_for
from control.db.models import PublicCertificate
from control.runtime import build_runtime
from control.services.public_tls import KeyUnreadable, inspect, seal, serves, unseal
from control.settings import Settings
from tests.control.certificates_support import TestCA
from tests.control.conftest import run_in_thread
from tests.control.enroll_support import Owner, owner
from tests.control.helpers import check, unique
from tests.control.server import serve
from tests.control.test_channel import channel, enroll, service

PROPAGATION = 2.0  # seconds: a change reaches an open channel within this (issue 4)


@pytest.mark.parametrize(
    ("name", "host", "expected"),
    [
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "b.example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),  # TLS: one label only
        ("a.example.com", "*.example.com", True),  # routed there, and covered
        ("a.b.example.com", "*.example.com", True),  # routing's wildcard: any depth
        ("*.example.com", "*.example.com", True),
        ("*.b.example.com", "*.example.com", True),
        ("example.com", "*.example.com", False),
        ("*.com", "*.example.com", False),
        ("a.badexample.com", "*.example.com", False),
        ("*.example.com", "*.b.example.com", False),  # covers b.example.com, not below it
    ],
)
def test_which_certificate_name_serves_which_routed_host(
    name: str, host: str, expected: bool
) -> None:
    assert serves(name, host) is expected


def test_unexpired_certificates_in_the_order_a_node_prefers_them() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)

    def row(names: list[str], starts: int, ends: int) -> PublicCertificate:
        return PublicCertificate(
            id=uuid.uuid4(),
            names=names,
            not_before=now + timedelta(days=starts),
            not_after=now + timedelta(days=ends),
        )

    short = row(["a.example.com"], -10, 20)
    long = row(["a.example.com", "b.example.com"], -10, 80)
    staged = row(["a.example.com"], 5, 300)  # not yet valid: last
    wildcard = row(["*.example.com"], -10, 50)
    expired = row(["a.example.com"], -90, -1)
    unrelated = row(["a.example.org"], -10, 50)
    chosen = certificates_for(
        ["a.example.com"], [short, staged, expired, unrelated, wildcard, long], now
    )
    assert chosen == [long, wildcard, short, staged]


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


def upload(boss: Owner, *names: str, ca: TestCA | None = None) -> tuple[dict[str, str], str]:
    """(the API's view of a new certificate for `names`, its key PEM)."""
    issued = (ca or TestCA()).issue(*names)
    made = check(boss.client.post(f"{boss.base}/certificates", json=issued.body()), 201)
    return made, issued.key


@pytest.mark.parametrize("settings_overrides", [{"open_signup": True}])
async def test_a_node_gets_its_organisations_certificates_for_its_host_names(
    server: str, boss: Owner
) -> None:
    other = owner(server)
    try:
        suffix = unique("z")
        web = service(boss, hostname=f"web.{suffix}.example.com")
        service(boss, hostname=f"*.apps.{suffix}.example.com")
        service(boss, hostname=f"off.{suffix}.example.com", enabled=False)
        exact, exact_key = upload(boss, web["hostname"])
        wild, _ = upload(boss, f"*.{suffix}.example.com")
        deep, _ = upload(boss, f"x.y.apps.{suffix}.example.com")  # under the wildcard service
        upload(boss, f"off.{suffix}.example.com")  # its service is disabled
        upload(boss, f"shop.{suffix}.example.org")  # no service
        theirs, _ = upload(other, web["hostname"])  # another org's, for our host name
        node = enroll(boss, "ingress", boss.node())
        async with channel(server, node) as opened:
            config = opened.config
        by_id = {item["id"]: item for item in config["certificates"]}
        assert set(by_id) == {exact["id"], wild["id"], deep["id"]}
        assert theirs["id"] not in json.dumps(config)
        sent = by_id[exact["id"]]
        assert sent == {
            "id": exact["id"],
            "names": [web["hostname"]],
            "not_after": sent["not_after"],
            "chain": exact["chain"],
            "key": exact_key,
        }
        assert datetime.fromisoformat(sent["not_after"]) == datetime.fromisoformat(
            exact["not_after"].replace("Z", "+00:00")
        )
        # The other organisation's node gets its own, never ours.
        their_node = enroll(other, "ingress", other.node())
        async with channel(server, their_node) as opened:
            assert [item["id"] for item in opened.config["certificates"]] == []  # no service
    finally:
        other.client.close()


async def test_upload_replace_and_delete_reach_an_open_channel(server: str, boss: Owner) -> None:
    web = service(boss)
    node = enroll(boss, "ingress", boss.node())
    async with channel(server, node) as opened:
        assert opened.config["certificates"] == []
        ca = TestCA()
        made, key = upload(boss, web["hostname"], ca=ca)
        snapshot = await opened.next_snapshot(within=PROPAGATION)
        assert [(c["id"], c["key"]) for c in snapshot["config"]["certificates"]] == [
            (made["id"], key)
        ]
        renewed = ca.issue(web["hostname"], f"www.{web['hostname']}")
        url = f"{boss.base}/certificates/{made['id']}"
        check(boss.client.put(url, json=renewed.body()), 200)
        snapshot = await opened.next_snapshot(within=PROPAGATION)
        (sent,) = snapshot["config"]["certificates"]
        assert (sent["chain"], sent["key"]) == (renewed.chain, renewed.key)
        # Renaming the service away from the certificate's names drops it, and back.
        check(
            boss.client.patch(
                f"{boss.base}/services/{web['id']}", json={"hostname": unique("h") + ".example.net"}
            ),
            200,
        )
        snapshot = await opened.next_snapshot(within=PROPAGATION)
        assert snapshot["config"]["certificates"] == []
        body = {"hostname": web["hostname"]}
        check(boss.client.patch(f"{boss.base}/services/{web['id']}", json=body), 200)
        snapshot = await opened.next_snapshot(within=PROPAGATION)
        assert len(snapshot["config"]["certificates"]) == 1
        check(boss.client.delete(url), 204)
        snapshot = await opened.next_snapshot(within=PROPAGATION)
        assert snapshot["config"]["certificates"] == []


async def _rekey(settings: Settings, new: bytes) -> tuple[int, int]:
    """`kokoa control ca rekey` to passphrase `new`, from another runtime (the command line)."""
    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db:
            return await ca_rotation.rekey(db, runtime.ca.passphrase(), new)
    finally:
        await runtime.engine.dispose()


async def test_a_rekey_does_not_take_the_certificates_from_running_replicas(
    settings: Settings, server: str, boss: Owner
) -> None:
    # docs/pki.md: rekey, then restart the replicas with the new passphrase. Until then a
    # running replica (the old passphrase) still serves the keys it decrypted: the certificates
    # did not change, only how their keys are kept.
    web = service(boss)
    made, key = upload(boss, web["hostname"])
    node = enroll(boss, "ingress", boss.node())
    async with channel(server, node) as opened:
        assert [(c["id"], c["key"]) for c in opened.config["certificates"]] == [(made["id"], key)]
        assert run_in_thread(_rekey(settings, b"a-new-passphrase-for-the-ca-key-0123456789")) == (
            1,
            1,
        )
        service(boss)  # any change wakes the channel, which rebuilds its snapshot
        snapshot = await opened.next_snapshot(within=PROPAGATION)
        assert len(snapshot["config"]["services"]) == 2
        sent = [(c["id"], c["key"]) for c in snapshot["config"]["certificates"]]
        assert sent == [(made["id"], key)]


async def test_a_key_asked_for_by_many_channels_at_once_is_decrypted_once() -> None:
    # After a restart every node's channel builds its first snapshot at about the same time,
    # each in a transaction that holds a database connection while its keys are decrypted
    # (~80 ms of PBKDF2 each): the first asks for a key, the others wait for the same answer.
    issued = TestCA().issue("www.example.com")
    passphrase = b"the-passphrase-of-the-ca-key-0123456789"
    checked = inspect(issued.chain, issued.key, datetime.now(UTC))
    sealed = seal(checked.key, passphrase)
    asked: list[bytes] = []

    def counted() -> bytes:
        asked.append(passphrase)
        return passphrase

    keys = UnsealedKeys(counted)
    row = (str(uuid.uuid4()), checked.fingerprint)
    opened = await asyncio.gather(*(keys.unseal(sealed, row) for _ in range(8)))
    assert opened == [unseal(sealed, passphrase)] * 8
    assert len(asked) == 1
    assert await keys.unseal(sealed, row) == opened[0] and len(asked) == 1  # kept

    # A channel that goes away while it waits does not cancel the others' decryption.
    again = seal(checked.key, passphrase)  # another sealed form: decrypted again, once
    async with asyncio.TaskGroup() as group:
        gone = group.create_task(keys.unseal(again, row))
        staying = group.create_task(keys.unseal(again, row))
        await asyncio.sleep(0)
        gone.cancel()
    assert gone.cancelled() and staying.result() == opened[0]
    assert len(asked) == 2
    wrong = UnsealedKeys(lambda: b"not-the-passphrase-0123456789")
    failed = await asyncio.gather(
        *(wrong.unseal(sealed, row) for _ in range(3)), return_exceptions=True
    )
    assert [type(exc) for exc in failed] == [KeyUnreadable] * 3
