"""Lesson 04's noise-scale runs: the slider run function equals the one-phase schedule, feeds a
watcher while it trains, and the tables compare curves as documented."""

import pickle

import numpy as np
import pandas as pd
import pytest

from edutools.engine.experiments import large_batch
from edutools.engine.training import Phase

WIDTHS = (20, 8, 4)


def test_run_sgd_equals_the_one_phase_schedule():
    run = large_batch.run_sgd(batch_size=250, momentum=0.5, lr=0.05, seed=3, num_epochs=2,
                              widths=WIDTHS)
    schedule = large_batch.run_schedule([Phase(0.05, 250, 2)], momentum=0.5, seed=3,
                                        widths=WIDTHS)
    assert run.num_steps == schedule.num_steps == 8
    pd.testing.assert_frame_equal(run.record[schedule.record.columns], schedule.record)
    np.testing.assert_array_equal(run.step_losses, schedule.step_losses)
    assert list(run.record["epoch"]) == [0.0, 1.0, 2.0]


def test_run_sgd_calls_watch_with_partial_results_and_pickles():
    seen = []
    run = large_batch.run_sgd(batch_size=500, momentum=0.0, lr=0.05, seed=0, num_epochs=3,
                              widths=WIDTHS, watch=seen.append)
    assert [len(partial.record) for partial in seen] == [1, 2, 3, 4]
    assert all(isinstance(partial, large_batch.SgdRun) for partial in seen)
    pd.testing.assert_frame_equal(seen[-1].record, run.record)
    restored = pickle.loads(pickle.dumps(run))
    pd.testing.assert_frame_equal(restored.record, run.record)


def test_slider_grid_holds_the_equal_noise_diagonal():
    grid = large_batch.SLIDER_GRID
    assert set(grid) == {"batch_size", "momentum"}
    for batch_size, momentum in ((16, 0.0), (32, 0.5), (64, 0.75)):
        assert batch_size in grid["batch_size"] and momentum in grid["momentum"]


def test_run_sgd_rejects_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        large_batch.run_sgd(batch_size=5000, momentum=0.0, lr=0.05, num_epochs=1,
                            widths=WIDTHS)
    with pytest.raises(ValueError, match="num_epochs"):
        large_batch.run_sgd(batch_size=100, momentum=0.0, lr=0.05, num_epochs=0,
                            widths=WIDTHS)


def test_noise_scale_and_schedule_tables():
    settings = {"ref": (0.05, 250, 0.0), "same g": (0.05, 500, 0.5), "more g": (0.05, 250, 0.5)}
    runs = {(name, 0): large_batch.run_sgd(batch_size=b, momentum=m, lr=lr, seed=0,
                                           num_epochs=2, widths=WIDTHS)
            for name, (lr, b, m) in settings.items()}
    table = large_batch.noise_scale_table(runs, settings, reference="ref", reference_lr=0.05,
                                          reference_batch_size=250)
    by_name = table.set_index("setting")
    assert by_name.loc["same g", "g·250/η"] == pytest.approx(1.0)
    assert by_name.loc["more g", "g·250/η"] == pytest.approx(2.0)
    assert by_name.loc["ref", "gap to B=250 (train loss)"] == 0.0
    assert by_name.loc["same g", "steps"] == 4 and by_name.loc["ref", "steps"] == 8

    schedules = {("decay", 0): large_batch.run_schedule([Phase(0.05, 250, 1), Phase(0.01, 250, 1)],
                                                        widths=WIDTHS),
                 ("grow", 0): large_batch.run_schedule([Phase(0.05, 250, 1), Phase(0.05, 500, 1)],
                                                       widths=WIDTHS),
                 ("constant", 0): large_batch.run_schedule([Phase(0.05, 250, 2)], widths=WIDTHS)}
    table = large_batch.schedule_table(schedules, decay="decay", grow="grow", constant="constant")
    assert table.loc[0, "steps decay"] == 8 and table.loc[0, "steps grow"] == 6
    assert table.loc[0, "gap decay vs grow"] >= 0
