"""common.collector.tune: what start-up built is frozen, young collections are rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from common import collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tune_freezes_start_up_and_raises_the_young_threshold() -> None:
    built_at_start = [[i] for i in range(10)]  # lists: objects the collector tracks
    collector.tune()
    assert gc.get_threshold() == (collector.YOUNG, collector.MIDDLE, collector.OLD)
    assert collector.YOUNG > 700  # CPython's default, which the change is about
    assert gc.get_freeze_count() > len(built_at_start)  # in the permanent generation
