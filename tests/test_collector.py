"""A serving process freezes what startup built and collects cycles less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aislehub.collector import THRESHOLDS, tune_for_serving


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_tuning_freezes_the_started_process_and_raises_the_thresholds() -> None:
    built_at_startup = [object() for _ in range(10)]
    gc.unfreeze()
    tune_for_serving()
    assert gc.get_freeze_count() > len(built_at_startup)
    assert gc.get_threshold() == THRESHOLDS
    # Cycles made afterwards are still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
