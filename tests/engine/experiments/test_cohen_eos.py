"""Lesson 01's engine: the quadratic's regimes, the GD run against its edge, and its summaries."""

import pickle

import numpy as np
import pandas as pd
import pytest

from edutools.engine.experiments import cohen_eos
from edutools.engine.experiments.cohen_eos import (
    EdgeRun,
    gd_edge_run,
    gd_edge_summary,
    gd_edge_table,
    gd_lr_sweep,
    loss_rises,
    quadratic_regimes,
)


def test_quadratic_regimes_follow_eta_lambda():
    grid = quadratic_regimes([0.05, 0.15, 0.3], curvatures=(1.0, 10.0), num_steps=20)
    assert len(grid) == 6 and set(grid.columns) >= {"lr", "curvature", "h", "grew", "regime"}
    row = grid.set_index(["lr", "curvature"])
    assert row.loc[(0.05, 10.0), "regime"] == "converges"  # ηλ = 0.5
    assert row.loc[(0.15, 10.0), "regime"] == "oscillates"  # ηλ = 1.5: flips, shrinks
    assert row.loc[(0.15, 10.0), "flips_sign"] and not row.loc[(0.15, 10.0), "grew"]
    assert row.loc[(0.3, 10.0), "regime"] == "diverges" and row.loc[(0.3, 10.0), "grew"]
    assert not row.loc[(0.3, 1.0), "flips_sign"]
    assert row["factor"].to_numpy() == pytest.approx(np.abs(1 - grid["h"].to_numpy()))


def _record(ratios, lr=0.2, every=100):
    steps = np.arange(len(ratios)) * every
    return pd.DataFrame({"step": steps, "lambda_max": np.asarray(ratios) * 2 / lr,
                         "train_loss": np.linspace(1, 0.1, len(ratios))})


def test_edge_summary_reads_start_crossing_and_late_level():
    ratios = [0.4, 0.6, 0.8, 0.96, 1.02, 0.99, 1.01, 1.0, 1.03, 0.98]
    summary = gd_edge_summary(_record(ratios), lr=0.2, num_steps=900)
    assert summary.start == pytest.approx(0.4)
    assert summary.crossing == 300 and summary.reached
    late = ratios[6:]  # steps ≥ 0.6 × 900 = 540: 600, 700, 800, 900
    assert summary.late_mean == pytest.approx(np.mean(late))
    assert summary.late_min == pytest.approx(0.98) and summary.late_max == pytest.approx(1.03)
    never = gd_edge_summary(_record([0.3, 0.5, 0.7, 0.9]), lr=0.2, num_steps=300)
    assert never.crossing is None and not never.reached
    with pytest.raises(ValueError, match="late_fraction"):
        gd_edge_summary(_record(ratios), lr=0.2, num_steps=900, late_fraction=1.5)


def _edge_run(lr, ratios):
    return EdgeRun(config={"lr": lr, "num_steps": 100 * (len(ratios) - 1)},
                   record=_record(ratios, lr=lr), step_losses=np.linspace(1, 0.1, 10))


def test_edge_table_has_one_row_per_lr_in_edge_units():
    runs = {0.4: _edge_run(0.4, [0.9, 1.0, 1.01, 1.0]), 0.1: _edge_run(0.1, [0.2, 0.3, 0.4, 0.5])}
    table = gd_edge_table(runs, num_steps=300)
    assert list(table.index) == [0.1, 0.4] and table.index.name == "η"
    assert table.loc[0.4, "edge 2/η"] == pytest.approx(5.0)
    assert bool(table.loc[0.4, "reached edge"]) and not bool(table.loc[0.1, "reached edge"])
    assert table.loc[0.1, "late max"] == pytest.approx(0.5)
    assert table.loc[0.4, "crossing step"] == 100 and pd.isna(table.loc[0.1, "crossing step"])
    assert runs[0.4].edge == pytest.approx(5.0)
    assert runs[0.4].ratio.tolist() == pytest.approx([0.9, 1.0, 1.01, 1.0])


def test_loss_rises_split_at_the_crossing():
    losses = np.array([5.0, 4.0, 3.0, 2.0, 2.5, 1.5, 1.8, 1.0])
    rises = loss_rises(losses, crossing=3)
    assert rises.rises.tolist() == [False, False, False, True, False, True, False]
    assert rises.before.sum() == 0 and rises.after.sum() == 2 and len(rises.after) == 4
    assert rises.final_over_initial == pytest.approx(0.2)
    with pytest.raises(ValueError, match="crossing"):
        loss_rises(losses, crossing=20)
    with pytest.raises(ValueError, match="step_losses"):
        loss_rises(np.array([1.0]), crossing=0)


def test_short_gd_run_is_an_edge_run_without_model(monkeypatch):
    seen = []
    run = gd_edge_run(lr=0.2, seed=1, num_steps=20, measure_every=10, watch=seen.append)
    assert isinstance(run, EdgeRun) and run.record["step"].tolist() == [0, 10, 20]
    assert len(run.step_losses) == 20 and run.diverged_at is None
    assert np.all(run.record["lambda_max"] > 0) and run.edge == pytest.approx(10.0)
    assert [len(partial.record) for partial in seen] == [1, 2, 3]
    assert all(isinstance(partial, EdgeRun) and partial.lr == 0.2 for partial in seen)
    assert pickle.loads(pickle.dumps(run)).record.equals(run.record)
    # fast caps the budget at FAST_NUM_STEPS.
    asked = {}
    monkeypatch.setattr(cohen_eos, "train_gd", lambda **kw: asked.update(kw) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        gd_edge_run(lr=0.2, num_steps=10_000, fast=True)
    assert asked["num_steps"] == cohen_eos.FAST_NUM_STEPS


def test_lr_sweep_reuses_done_runs_and_watches_all_records(monkeypatch):
    trained = []

    def fake_run(*, lr, watch=None, **_):
        trained.append(lr)
        run = _edge_run(lr, [0.5, 1.0])
        if watch is not None:
            watch(run)  # partial runs are EdgeRuns, like the final one
        return run

    monkeypatch.setattr(cohen_eos, "gd_edge_run", fake_run)
    done = {0.2: _edge_run(0.2, [0.4, 1.0])}
    seen = []
    runs = gd_lr_sweep([0.4, 0.2, 0.1], done=done, watch=seen.append)
    assert trained == [0.4, 0.1] and list(runs) == [0.1, 0.2, 0.4]
    assert runs[0.2] is done[0.2]
    assert [sorted(records) for records in seen] == [[0.2, 0.4], [0.1, 0.2, 0.4]]
