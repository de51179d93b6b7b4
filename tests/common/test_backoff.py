"""Backoff with full jitter (common/backoff.py): bounds, cap, the distribution of delays, resets
— for the agent's tunnels and, through `RetryPolicy`, for the control channel."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.backoff import Backoff, BackoffPolicy
from common.channel import RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def top(policy: BackoffPolicy, clock: Clock | None = None) -> Backoff:
    """A backoff whose random source always gives (almost) 1: each delay is its ceiling."""
    return Backoff(policy, clock=clock or Clock(), rand=lambda: 1.0)


@pytest.mark.parametrize(
    ("policy", "ceilings"),
    [
        (BackoffPolicy(0.5, 15, 2), [0.5, 1, 2, 4, 8, 15, 15, 15]),
        (BackoffPolicy(0.1, 1, 2), [0.1, 0.2, 0.4, 0.8, 1, 1]),
        (BackoffPolicy(1, 100, 3), [1, 3, 9, 27, 81, 100, 100]),
        (BackoffPolicy(2, 2, 2), [2, 2, 2]),
        (BackoffPolicy(0.5, 10, 1), [0.5, 0.5, 0.5]),
    ],
)
def test_ceilings_grow_by_the_multiplier_up_to_the_cap(
    policy: BackoffPolicy, ceilings: list[float]
) -> None:
    backoff = top(policy)
    assert [backoff.failed() for _ in ceilings] == pytest.approx(ceilings)
    assert backoff.attempt == len(ceilings)


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    policy = BackoffPolicy(0.5, 15, 2)
    assert policy.ceiling(10**9) == 15
    assert BackoffPolicy(0.5, 15, 1.000001).ceiling(10**9) == 15


@given(
    initial=st.floats(0.001, 10),
    ratio=st.floats(1, 1000),
    multiplier=st.floats(1, 10),
    failures=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_every_delay_is_within_zero_and_its_ceiling(
    initial: float, ratio: float, multiplier: float, failures: int, seed: int
) -> None:
    policy = BackoffPolicy(initial, initial * ratio, multiplier)
    backoff = Backoff(policy, clock=Clock(), rand=random.Random(seed).random)
    for attempt in range(failures):
        delay = backoff.failed()
        assert 0 <= delay <= policy.ceiling(attempt) <= policy.cap


def test_full_jitter_is_uniform_over_zero_to_the_ceiling() -> None:
    rng = random.Random(7)
    policy = BackoffPolicy(1.0, 8.0, 2.0)
    samples = []
    for _ in range(4000):
        backoff = Backoff(policy, clock=Clock(), rand=rng.random)
        for _ in range(3):
            delay = backoff.failed()  # the third failure: ceiling 4
        samples.append(delay)
    assert min(samples) < 0.05 and 3.95 < max(samples) <= 4.0
    assert statistics.fmean(samples) == pytest.approx(2.0, abs=0.1)  # uniform: mean c/2
    quarters = [sum(q * 1.0 <= s < (q + 1) * 1.0 for s in samples) for q in range(4)]
    assert all(900 < count < 1100 for count in quarters), quarters


def test_two_agents_with_different_random_sources_spread_out() -> None:
    policy = BackoffPolicy(1.0, 30.0, 2.0)
    a = Backoff(policy, clock=Clock(), rand=random.Random(1).random)
    b = Backoff(policy, clock=Clock(), rand=random.Random(2).random)
    delays = [(a.failed(), b.failed()) for _ in range(6)]
    assert all(x != y for x, y in delays)


def test_a_connection_healthy_for_reset_after_starts_the_sequence_again() -> None:
    clock = Clock()
    backoff = top(BackoffPolicy(1, 60, 2, reset_after=10), clock)
    for _ in range(4):
        backoff.failed()
    backoff.connected()
    clock.now += 10
    assert backoff.failed() == 1.0  # back to the initial ceiling
    assert backoff.attempt == 1


def test_a_connection_that_drops_quickly_keeps_backing_off() -> None:
    clock = Clock()
    backoff = top(BackoffPolicy(1, 60, 2, reset_after=10), clock)
    for _ in range(3):
        backoff.failed()  # 1, 2, 4
    backoff.connected()
    clock.now += 9.9
    assert backoff.failed() == 8.0
    clock.now += 100  # time spent *not* connected does not count
    assert backoff.failed() == 16.0


def test_to_cap_jumps_to_the_cap_and_counts_as_an_attempt() -> None:
    backoff = top(BackoffPolicy(0.5, 15, 2))
    assert backoff.failed(to_cap=True) == 15
    assert backoff.attempt == 1
    assert backoff.failed() == 1.0


def test_reset_and_a_new_policy() -> None:
    backoff = top(BackoffPolicy(1, 60, 2))
    for _ in range(5):
        backoff.failed()
    backoff.reset()
    assert backoff.attempt == 0
    backoff.policy = BackoffPolicy(3, 5, 2)
    assert [backoff.failed() for _ in range(3)] == [3, 5, 5]


@pytest.mark.parametrize(
    "args",
    [(0, 1, 2), (2, 1, 2), (1, 2, 0.5), (1, 2, 2, -1), (-1, 2, 2)],
)
def test_invalid_policies_are_refused(args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(*args)


def test_a_lower_cap_for_one_failure_applies_to_that_delay_only() -> None:
    backoff = top(BackoffPolicy(1, 60, 2))
    assert [backoff.failed(cap=3) for _ in range(4)] == [1, 2, 3, 3]
    assert backoff.failed() == 16  # the sequence went on counting


@given(
    initial=st.floats(0.001, 10),
    cap=st.floats(0.001, 1000),
    attempt=st.integers(0, 10**6),
)
def test_a_ceiling_never_exceeds_the_cap_given(initial: float, cap: float, attempt: int) -> None:
    policy = BackoffPolicy(initial, max(initial, 15.0), 2.0)
    assert 0 < policy.ceiling(attempt, cap) <= cap


# ---- the control channel's policy --------------------------------------------------------


def channel(policy: RetryPolicy, clock: Clock | None = None) -> Backoff:
    return Backoff(policy.backoff, clock=clock or Clock(), rand=lambda: 0.999999)


def test_channel_delays_grow_to_the_cap_with_full_jitter() -> None:
    highest = channel(RetryPolicy())
    ceilings = [round(highest.failed(), 3) for _ in range(9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    lowest = Backoff(RetryPolicy().backoff, clock=Clock(), rand=lambda: 0.0)
    assert lowest.failed() == 0.0  # full jitter: anywhere from 0


def test_a_refused_channel_grows_to_five_minutes() -> None:
    policy = RetryPolicy()
    retry = channel(policy)
    delays = [retry.failed(cap=policy.forbidden_cap) for _ in range(12)]
    assert delays[:3] == pytest.approx([0.5, 1.0, 2.0], rel=1e-3)  # still exponential
    assert max(delays) == pytest.approx(300, rel=1e-3)
    assert delays[-1] == pytest.approx(300, rel=1e-3)


def test_a_channel_up_for_reset_after_starts_again() -> None:
    clock = Clock()
    retry = channel(RetryPolicy(reset_after=30), clock)
    for _ in range(5):
        retry.failed()
    retry.connected()
    clock.now += 29
    assert retry.failed() == pytest.approx(16, rel=1e-3)  # not up long enough: keeps growing
    retry.connected()
    clock.now += 30
    assert retry.failed() == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"initial": 5, "cap": 1}, {"cap": 400, "forbidden_cap": 300}]
)
def test_invalid_channel_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
