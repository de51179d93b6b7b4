"""Two control-plane replicas on one PostgreSQL: a certificate uploaded, replaced or deleted
through one reaches an ingress node's channel open on the other (NOTIFY kokoa_config)."""

from __future__ import annotations

from typing import Any

import pytest

from control.settings import Settings
from tests.control.certificates_support import TestCA
from tests.control.enroll_support import owner
from tests.control.helpers import check
from tests.control.test_certificates_snapshot import PROPAGATION
from tests.control.test_channel import channel, enroll, service
from tests.control.test_channel_replicas import listening, replicas


@pytest.fixture
def template(pg_template: tuple[str, str]) -> tuple[str, Any]:
    return "postgresql", pg_template


async def test_a_certificate_changed_through_replica_a_reaches_a_node_on_replica_b(
    settings: Settings,
) -> None:
    with replicas(settings) as (_, a, second, b):
        boss = owner(a)
        try:
            web = service(boss)
            node = enroll(boss, "ingress", boss.node())
            await listening(second)
            async with channel(b, node) as at_b:
                ca = TestCA()
                first = ca.issue(web["hostname"])
                made = check(boss.client.post(f"{boss.base}/certificates", json=first.body()), 201)
                seen = await at_b.next_snapshot(within=PROPAGATION)
                assert [c["key"] for c in seen["config"]["certificates"]] == [first.key]
                renewed = ca.issue(web["hostname"])
                url = f"{boss.base}/certificates/{made['id']}"
                check(boss.client.put(url, json=renewed.body()), 200)
                seen = await at_b.next_snapshot(within=PROPAGATION)
                assert [c["chain"] for c in seen["config"]["certificates"]] == [renewed.chain]
                check(boss.client.delete(url), 204)
                seen = await at_b.next_snapshot(within=PROPAGATION)
                assert seen["config"]["certificates"] == []
        finally:
            boss.client.close()
