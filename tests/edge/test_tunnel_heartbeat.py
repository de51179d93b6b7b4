"""The heartbeat bookkeeping (sans-IO): when to PING, when the node is dead, RTT from PONGs."""

from __future__ import annotations

import pytest

from common.wire import Ping
from edge.heartbeat import MAX_OUTSTANDING, Heartbeat


def test_first_ping_at_once_then_every_interval() -> None:
    hb = Heartbeat(2.0, now=10.0)
    assert hb.due(10.0) == Ping(1)
    assert hb.due(10.0) is None
    assert hb.due(11.9) is None
    assert hb.due(12.0) == Ping(2)
    assert hb.wake_at == 14.0


def test_silent_for_three_intervals_is_dead() -> None:
    hb = Heartbeat(2.0, now=0.0)
    assert hb.deadline == 6.0
    assert not hb.expired(5.99)
    assert hb.expired(6.0)


def test_any_frame_pushes_the_deadline() -> None:
    hb = Heartbeat(2.0, now=0.0)
    hb.heard(5.0)
    assert not hb.expired(10.9)
    assert hb.expired(11.0)
    hb.heard(4.0)  # out of order: never moves the deadline back
    assert hb.deadline == 11.0


def test_wake_at_is_the_earlier_of_ping_and_deadline() -> None:
    hb = Heartbeat(2.0, now=0.0)
    hb.due(0.0)
    assert hb.wake_at == 2.0
    hb.due(2.0)
    hb.due(4.0)
    assert hb.wake_at == 6.0  # the deadline (0 + 3 * 2) before the next PING at 6


def test_pong_measures_the_round_trip() -> None:
    hb = Heartbeat(1.0, now=0.0)
    ping = hb.due(0.0)
    assert ping is not None
    assert hb.pong(ping.seq, 0.025) == pytest.approx(0.025)
    assert hb.rtt == pytest.approx(0.025)
    assert hb.pong(ping.seq, 0.5) is None  # answered already
    assert hb.pong(999, 0.5) is None  # never sent
    assert hb.rtt == pytest.approx(0.025)


def test_old_unanswered_pings_are_forgotten() -> None:
    hb = Heartbeat(1.0, now=0.0)
    pings = [hb.due(float(t)) for t in range(MAX_OUTSTANDING + 2)]
    assert all(p is not None for p in pings)
    assert hb.pong(1, 20.0) is None
    assert hb.pong(MAX_OUTSTANDING + 2, 20.0) is not None


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Heartbeat(0, now=0.0)
