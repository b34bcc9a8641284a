"""serve and worker freeze the start-up heap and collect less often (docs/performance.md)."""

from __future__ import annotations

import gc

from hookd import cli


def test_the_collector_is_quieted_after_start_up() -> None:
    thresholds = gc.get_threshold()
    try:
        cli._quiet_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == cli.GC_THRESHOLDS
        assert cli.GC_THRESHOLDS[0] > thresholds[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
