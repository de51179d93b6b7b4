"""The pure parts of status: the verdict table, the event budget and counter deltas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control.services.status_rules import EventBudget, Evidence, judge
from control.services.traffic import Baseline, bucket_of, counts_from, delta, deltas

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=15)


@pytest.mark.parametrize(
    ("evidence", "status", "detail"),
    [
        (Evidence(heartbeat=True, ever_reported=True), "online", ""),
        (Evidence(heartbeat=True, ever_reported=True, problems=("cert",)), "degraded", "cert"),
        (Evidence(heartbeat=True, ever_reported=True, health=True), "online", ""),
        (
            Evidence(heartbeat=True, ever_reported=True, health=False, health_detail="HTTP 503"),
            "degraded",
            "readiness check failed: HTTP 503",
        ),
        (
            Evidence(heartbeat=False, ever_reported=True, health=True, silence="quiet"),
            "degraded",
            "quiet; readiness check passes",
        ),
        (
            Evidence(
                heartbeat=False, ever_reported=True, health=False, health_detail="x", silence="q"
            ),
            "offline",
            "q; readiness check failed: x",
        ),
        (Evidence(heartbeat=False, ever_reported=True, silence="q"), "offline", "q"),
        (Evidence(heartbeat=False, ever_reported=False), "unknown", ""),
        (
            Evidence(heartbeat=False, ever_reported=False, health=False, health_detail="refused"),
            "offline",
            "readiness check failed: refused",
        ),
        (
            Evidence(heartbeat=False, ever_reported=False, health=True),
            "degraded",
            "no control channel; readiness check passes",
        ),
        # Problems of a report that is no longer fresh do not count.
        (Evidence(heartbeat=False, ever_reported=True, problems=("old",)), "offline", ""),
    ],
)
def test_judge(evidence: Evidence, status: str, detail: str) -> None:
    assert judge(evidence) == (status, detail)


def test_judge_bounds_the_detail() -> None:
    _, detail = judge(Evidence(heartbeat=True, ever_reported=True, problems=("x" * 200,) * 20))
    assert len(detail) == 500


def test_event_budget_counts_what_it_suppresses_and_refills_each_hour() -> None:
    budget = EventBudget(None, 0, 0)
    assert [budget.spend(T0 + timedelta(minutes=i), 2) for i in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    assert budget.suppressed == 2
    assert budget.spend(T0 + timedelta(minutes=59), 2) is False
    assert budget.spend(T0 + timedelta(minutes=60), 2) is True  # a new window
    assert budget.in_window == 1 and budget.suppressed == 3  # the caller reports and resets


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (None, (5, 1, 100, 200), (5, 1, 100, 200)),
        ((5, 1, 100, 200), (8, 1, 150, 260), (3, 0, 50, 60)),
        ((50, 3, 1000, 2000), (4, 0, 10, 20), (4, 0, 10, 20)),  # every counter dropped
        ((50, 3, 1000, 2000), (60, 0, 1100, 20), (10, 0, 100, 20)),  # some did
    ],
)
def test_delta(
    before: tuple[int, int, int, int] | None,
    now: tuple[int, int, int, int],
    expected: tuple[int, int, int, int],
) -> None:
    assert delta(before, now) == expected


def test_counts_from() -> None:
    started = T0 - timedelta(hours=1)
    same = Baseline(T0 - timedelta(seconds=5), started, {})
    assert counts_from(same, started, T0, STALE) == "previous"
    silent = Baseline(T0 - timedelta(seconds=16), started, {})
    assert counts_from(silent, started, T0, STALE) is None  # after a silence: baseline only
    restarted = T0 - timedelta(seconds=4)
    assert counts_from(same, restarted, T0, STALE) == "zero"  # a new process: all of it
    assert counts_from(Baseline(None, None, {}), restarted, T0, STALE) == "zero"
    assert counts_from(Baseline(None, None, {}), started, T0, STALE) is None  # long running


def test_deltas_per_service() -> None:
    started = T0 - timedelta(hours=1)
    baseline = Baseline(T0 - timedelta(seconds=5), started, {"a": [10, 1, 100, 1000], "b": "junk"})
    reported = {"a": (15, 1, 150, 1500), "b": (3, 0, 30, 300), "c": (1, 0, 10, 100)}
    assert deltas(baseline, reported, started, T0, STALE) == {
        "a": (5, 0, 50, 500),
        "b": (3, 0, 30, 300),  # an unreadable baseline counts as none
        "c": (1, 0, 10, 100),  # a service new to this process: all of it
    }
    assert deltas(baseline, reported, started, T0 + timedelta(minutes=1), STALE) == {}


def test_bucket_of() -> None:
    moment = datetime(2026, 12, 1, 12, 0, 17, 900_000, tzinfo=UTC)
    assert bucket_of(moment, 10) == int(datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC).timestamp())
    assert bucket_of(moment, 60) == int(datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp())
