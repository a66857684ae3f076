"""Keskar et al.'s SB-vs-LB comparison: training to a target loss, the tables built from it,
the line between the solutions and the sharpness table."""

import numpy as np
import pytest

from edutools.engine.experiments import keskar
from edutools.ground.data import teacher_task

WIDTHS = [6, 16, 3]


@pytest.fixture(scope="module")
def comparisons():
    data = teacher_task(num_train=64, num_val=64, input_dim=6, num_classes=3, seed=0)
    # A loose target, reached in a few hundred steps, so the test stays fast.
    return {0: keskar.small_vs_large_batch(data, WIDTHS, small_batch_size=8,
                                           large_batch_size=None, lr=1e-2, target_loss=0.4,
                                           max_steps=3000, seed=0)}


def test_both_runs_stop_at_the_target_from_the_same_initial_weights(comparisons):
    comparison = comparisons[0]
    assert comparison.small.config["batch_size"] == 8
    assert comparison.large.config["batch_size"] == comparison.data.num_train  # None = all
    for result in comparison.runs.values():
        assert result.final["train_loss"] <= 0.4
        assert result.num_steps < 3000  # stopped by the target, not by the budget
    first_sb = comparison.small.record.iloc[0]
    first_lb = comparison.large.record.iloc[0]
    assert first_sb["train_loss"] == pytest.approx(first_lb["train_loss"], rel=1e-6)


def test_summary_table_and_gap(comparisons):
    table = keskar.summary_table(comparisons)
    assert list(table["run"]) == ["SB", "LB"]
    assert {"steps", "epochs", "train_loss", "val_acc", "peak_val_acc"} <= set(table.columns)
    assert (table["peak_val_acc"] >= table["val_acc"]).all()
    gap = keskar.val_acc_gap(table)
    expected = (table.loc[table["run"] == "SB", "val_acc"].iloc[0]
                - table.loc[table["run"] == "LB", "val_acc"].iloc[0])
    assert gap.loc[0] == pytest.approx(expected)


def test_line_between_passes_through_both_solutions(comparisons):
    comparison = comparisons[0]
    data = comparison.data
    alphas = np.linspace(-1.0, 2.0, 7)
    line = keskar.line_between(comparison, data.X_train, data.y_train, alphas)
    ends = np.interp([0.0, 1.0], line.alphas, line.losses)
    assert ends[0] == pytest.approx(comparison.small.final["train_loss"], rel=1e-4)
    assert ends[1] == pytest.approx(comparison.large.final["train_loss"], rel=1e-4)
    table = keskar.asymmetry_table({0: line}, offsets=(0.5, 1.0))
    assert list(table.columns) == ["loss at α=−1, 2 ÷ loss at ends (min)",
                                   "rise beyond SB, d=0.5", "rise beyond LB, d=0.5",
                                   "rise beyond SB, d=1.0", "rise beyond LB, d=1.0"]
    far = np.interp([-1.0, 2.0], line.alphas, line.losses)
    assert table.iloc[0, 0] == pytest.approx(far.min() / ends.max())


def test_sharpness_table_has_one_row_per_run_and_named_eps_columns(comparisons):
    table = keskar.sharpness_table({"toy": comparisons}, eps=(1e-3, 5e-4))
    assert len(table) == 2 and set(table["run"]) == {"SB", "LB"}
    assert {"λ_max", "ε-sharpness 1e-3", "ε-sharpness 5e-4", "‖∇L‖"} <= set(table.columns)
    assert (table["λ_max"] > 0).all()
    # A larger box finds at least as large a rise (up to the approximate inner maximum).
    assert (table["ε-sharpness 1e-3"] >= table["ε-sharpness 5e-4"] * 0.99).all()
