"""Lesson 02's engine: model-free run records, the slider run functions and the summaries."""

import pickle

import numpy as np
import pandas as pd
import pytest

from edutools.engine.experiments.eoss import (
    SLIDER_GRID,
    SGDRun,
    batch_sharpness_summary,
    first_at_loss,
    late_mean,
    run_memorise,
    run_teacher,
)


def test_run_teacher_returns_a_picklable_record_and_feeds_watch():
    seen = []
    run = run_teacher(batch_size=10, num_steps=100, seed=1, watch=seen.append)
    assert isinstance(run, SGDRun) and not hasattr(run, "model")
    assert run.record["step"].tolist() == [0, 100]
    assert run.record["lambda_max"].notna().all() and run.record["lambda_max"].gt(0).all()
    assert len(run.step_losses) == 100 and run.config["batch_size"] == 10
    # One partial result per measurement, of the same type, growing.
    assert [len(partial.record) for partial in seen] == [1, 2]
    assert all(isinstance(partial, SGDRun) for partial in seen)
    copy = pickle.loads(pickle.dumps(run))
    pd.testing.assert_frame_equal(copy.record, run.record)


def test_run_teacher_is_deterministic_per_seed():
    a, b = (run_teacher(batch_size=50, num_steps=30, seed=2) for _ in range(2))
    np.testing.assert_array_equal(a.step_losses, b.step_losses)
    c = run_teacher(batch_size=50, num_steps=30, seed=3)
    assert not np.array_equal(a.step_losses, c.step_losses)


def test_run_memorise_measures_batch_sharpness_only_with_mini_batches():
    mini = run_memorise(seed=0, batch_size=8, num_steps=20, num_train=40)
    assert "batch_sharpness" in mini.record and mini.record["batch_sharpness"].iloc[0] > 0
    full = run_memorise(seed=0, batch_size=40, num_steps=20, num_train=40)
    assert "batch_sharpness" not in full.record
    assert full.record["lambda_max"].notna().all()


def test_slider_grid_holds_the_full_batch():
    assert 1000 in SLIDER_GRID["batch_size"] and list(SLIDER_GRID["batch_size"]) == sorted(
        SLIDER_GRID["batch_size"])


def test_late_mean_averages_from_the_start_step_on():
    record = pd.DataFrame({"step": [0, 10, 20, 30], "x": [100.0, 1.0, 2.0, np.nan]})
    assert late_mean(record, "x", start=10) == pytest.approx(1.5)
    assert late_mean(record, "x", start=0) == pytest.approx(103 / 3)


def test_batch_sharpness_summary_in_units_of_the_edge():
    edge = 4.0
    record = pd.DataFrame({"step": [0, 500, 1000, 1500, 2000],
                           "batch_sharpness": [1.0, 3.0, 4.0, np.nan, 4.8],
                           "lambda_max": [0.5, 2.0, 2.0, 9.0, 2.4]})
    flat = record.assign(lambda_max=[0.5, 2.0, 5.0, 9.0, 2.4])  # λ_max above BS at step 1000
    table = batch_sharpness_summary({0: SGDRun(record=record), 1: SGDRun(record=flat)}, edge,
                                    start=1000)
    # Late points with a batch sharpness: steps 1000 and 2000 (1500 has none).
    assert table.loc[0, "BS·η/2 median"] == pytest.approx((4.0 + 4.8) / 2 / edge)
    assert table.loc[0, "BS·η/2 max"] == pytest.approx(4.8 / edge)
    assert table.loc[0, "λ_max·η/2 median"] == pytest.approx((2.0 + 2.4) / 2 / edge)
    assert table.loc[0, "start BS·η/2"] == pytest.approx(1.0 / edge)
    assert bool(table.loc[0, "λ_max < BS everywhere"])
    assert not bool(table.loc[1, "λ_max < BS everywhere"])


def test_first_at_loss_finds_the_first_row_or_says_why_not():
    record = pd.DataFrame({"step": [0, 100, 200, 300], "train_loss": [1.0, 0.5, 0.2, 0.1]})
    assert first_at_loss(record, 0.3)["step"] == 200
    assert first_at_loss(record, 0.5)["step"] == 100
    with pytest.raises(ValueError, match="0.05"):
        first_at_loss(record, 0.05)


def test_memorise_model_is_the_run_memorise_network():
    from edutools.engine.experiments.eoss import memorise_model

    a, b = memorise_model(seed=4), memorise_model(seed=4)
    assert [tuple(p.shape) for p in a.parameters()][0] == (64, 32)
    assert all(bool((p == q).all()) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    first = next(memorise_model(seed=5).parameters())
    assert not bool((first == next(a.parameters())).all())


def test_equal_loss_table_compares_at_the_first_crossing_of_each_level():
    from edutools.engine.experiments.eoss import equal_loss_table

    gd = SGDRun(record=pd.DataFrame({"step": [0, 100, 200], "train_loss": [1.0, 0.3, 0.1],
                                     "lambda_max": [1.0, 8.0, 9.0]}))
    sgd = SGDRun(record=pd.DataFrame({"step": [0, 500, 1000], "train_loss": [1.0, 0.4, 0.05],
                                      "lambda_max": [1.0, 2.0, 3.0]}))
    table = equal_loss_table(gd, sgd, (0.5, 0.3, 0.1), edge=4.0)
    assert list(table.index) == [0.5, 0.3, 0.1]
    assert table.loc[0.3, "reference step"] == 100 and table.loc[0.3, "other step"] == 1000
    assert table.loc[0.3, "ratio"] == pytest.approx(3.0 / 8.0)
    assert table.loc[0.5, "ratio"] == pytest.approx(2.0 / 8.0)
    assert table.loc[0.1, "reference λ_max·η/2"] == pytest.approx(9.0 / 4.0)
    with pytest.raises(ValueError, match="0.01"):
        equal_loss_table(gd, sgd, (0.01,), edge=4.0)
