"""Lesson 07's capstone: the run function on a tiny configuration, the grid through the cache, the
robust score, the picks and the proxy–curvature correlations."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from edutools.engine.experiments import capstone
from edutools.engine.experiments.capstone import (
    CURVES,
    SETTINGS,
    SLIDER_GRID,
    CapstoneRun,
    CapstoneSettings,
    capstone_configurations,
    capstone_curves,
    capstone_run,
    capstone_settings,
    epochs_to_reach,
    run_capstone_grid,
)
from edutools.engine.experiments.capstone_analysis import (
    find_run,
    grid_summary,
    pick_configurations,
    proxy_edge_correlations,
    robust_score,
    robustness_table,
)
from edutools.ground.cache import ResultCache

TINY = dict(epochs=2, num_train=256, target_acc=0.0, curvature_batches=3)


@pytest.fixture(scope="module")
def tiny_run():
    return capstone_run(momentum=0.9, batch_size=128, lr=0.02, seed=1, **TINY)


def test_a_run_reports_accuracy_speed_proxies_and_curvature_against_its_edges(tiny_run):
    run = tiny_run
    assert run["upper_edge"] == pytest.approx(2 * 1.9 / 0.02)
    assert run["lower_edge"] == pytest.approx(2 * 0.1 / 0.02)
    assert run["lambda_ratio"] == pytest.approx(run["lambda_max"] / run["upper_edge"])
    assert run["bs_ratio"] == pytest.approx(run["batch_sharpness"] / run["lower_edge"])
    assert run["edge_ratio"] == max(run["lambda_ratio"], run["bs_ratio"])
    assert run["lambda_max"] > 0 and run["batch_sharpness"] > 0
    for name in CURVES:  # epoch 0 (before training) and one measurement per epoch
        assert len(run[f"{name}_curve"]) == TINY["epochs"] + 1
    assert run["final_val_acc"] == run["val_acc_curve"][-1]
    assert run["best_val_acc"] == max(run["val_acc_curve"])
    assert run["epochs_to_target"] == 0.0  # target 0: reached before the first step
    # The proxies are medians over the second half of the epochs (here: epochs 1 and 2).
    assert run["grad_norm"] == pytest.approx(float(np.median(run["grad_norm_curve"][1:])))
    late = run["loss_var_curve"][1:] / run["train_loss_curve"][1:] ** 2
    assert run["relative_loss_var"] == pytest.approx(float(np.median(late)))
    assert not run["diverged"]
    pickle.dumps(run)  # a grid worker sends it back


def test_an_unreached_target_is_nan_and_settings_share_the_initial_weights(tiny_run):
    other = capstone_run(momentum=0.0, batch_size=64, lr=0.01, seed=1,
                         **{**TINY, "target_acc": 0.999})
    assert math.isnan(other["epochs_to_target"])
    assert other["train_loss_curve"][0] == tiny_run["train_loss_curve"][0]
    assert other["train_loss_curve"][-1] != tiny_run["train_loss_curve"][-1]


def test_epochs_to_reach_interpolates_the_first_crossing():
    curve = np.array([0.1, 0.6, 0.8, 0.7, 0.95])
    assert epochs_to_reach(curve, 0.7) == pytest.approx(1.5)  # between epochs 1 and 2
    assert epochs_to_reach(curve, 0.8) == 2.0
    assert epochs_to_reach(curve, 0.05) == 0.0
    assert math.isnan(epochs_to_reach(curve, 0.99))


def test_settings_cover_the_course_grid_and_fast_is_a_subset():
    full, fast = capstone_settings(fast=False, seed=4), capstone_settings(fast=True, seed=4)
    assert full.momenta == SLIDER_GRID["momentum"] == (0.0, 0.5, 0.9, 0.95, 0.99)
    assert full.batch_sizes == SLIDER_GRID["batch_size"] == (32, 64, 128, 256)
    assert len(full.seeds) >= 3 and full.seeds[0] == 4
    assert set(fast.momenta) <= set(full.momenta) and set(fast.batch_sizes) <= set(full.batch_sizes)
    assert fast.epochs < full.epochs and fast.num_train < full.num_train
    configurations = capstone_configurations(full)
    assert len(configurations) == 3 * 5 * 4
    assert {c["lr"] for c in configurations[:20]} == {full.lr}  # η first, then the variants
    assert {c["lr"] for c in configurations[20:]} == {full.lr / 2, full.lr * 2}


def test_the_grid_is_cached_and_the_panel_looks_runs_up(tmp_path, monkeypatch):
    monkeypatch.setenv("EDUTOOLS_CACHE_DIR", str(tmp_path))
    tiny = CapstoneSettings(fast=True, epochs=1, num_train=256, seeds=(0, 1),
                            sensitivity_seeds=(0,), momenta=(0.5,), batch_sizes=(128,),
                            target_acc=0.2, curvature_batches=2)
    first = run_capstone_grid(tiny, n_jobs=1)
    assert len(first) == 2 + 2 and first.attrs == {"computed": 4, "cached": 0}
    assert sorted(first["lr"].unique()) == [0.005, 0.01, 0.02]
    again = run_capstone_grid(tiny, n_jobs=1)
    assert again.attrs == {"computed": 0, "cached": 4}

    def no_training(*args, **kwargs):
        raise AssertionError("the panel trained instead of reading the grid's cache")

    monkeypatch.setattr(capstone, "train", no_training)
    monkeypatch.setattr(capstone, "capstone_settings", lambda fast, seed=0: tiny)
    looked_up = capstone_curves(momentum=0.5, batch_size=128, lr=0.02, seed=0, fast=True)
    row = first[(first["lr"] == 0.02)].iloc[0]
    assert isinstance(looked_up, CapstoneRun) and not looked_up.partial
    assert looked_up.summary["final_val_acc"] == row["final_val_acc"]
    assert list(looked_up.record["val_acc"]) == list(row["val_acc_curve"])
    assert looked_up.config == {**{name: row[name] for name in SETTINGS}, **tiny.fixed}
    assert looked_up.edges.full_batch == pytest.approx(row["upper_edge"])
    # the panel's result cache keeps it with its class, settings and summary
    cache = ResultCache("unit/capstone-panel", version="v1", directory=tmp_path)
    cache.put({"momentum": 0.5}, looked_up)
    again = cache.get({"momentum": 0.5})
    assert type(again) is CapstoneRun and again.config == looked_up.config
    np.testing.assert_equal(again.summary, looked_up.summary)  # NaN (target never reached) too


# -- analysis on synthetic runs --------------------------------------------------------------

def synthetic_runs() -> pd.DataFrame:
    """Two configurations, 3 seeds at η = 0.01 and 2 at η/2 and 2η: A is fast but fragile to
    2η, B slower and steady."""
    rows = []
    accuracies = {  # (β, B) → lr → accuracies over seeds
        (0.9, 32): {0.01: [0.95, 0.96, 0.94], 0.005: [0.94, 0.95], 0.02: [0.50, 0.70]},
        (0.0, 64): {0.01: [0.90, 0.91, 0.92], 0.005: [0.88, 0.89], 0.02: [0.92, 0.93]},
    }
    speed = {(0.9, 32): [2.0, 3.0, 2.0], (0.0, 64): [6.0, 7.0, math.nan]}
    for (momentum, batch_size), by_lr in accuracies.items():
        for lr, values in by_lr.items():
            for seed, acc in enumerate(values):
                edge = 0.9 if momentum else 0.01
                rows.append({"momentum": momentum, "batch_size": batch_size, "lr": lr,
                             "seed": seed, "final_val_acc": acc, "best_val_acc": acc + 0.01,
                             "epochs_to_target": speed[(momentum, batch_size)][seed]
                             if lr == 0.01 else math.nan,
                             "loss_var": edge * (1 + seed), "grad_norm": 1.0 / (edge + seed),
                             "val_jitter": 0.1, "edge_ratio": edge * (1 + 0.1 * seed),
                             "diverged": False})
    return pd.DataFrame(rows)


def test_robust_score_is_the_worst_seed_mean_minus_the_seed_spread():
    at_lr, half, double = [0.90, 0.92, 0.94], [0.88, 0.89], [0.95, 0.93]
    expected = min(np.mean(half), np.mean(at_lr), np.mean(double)) - np.std(at_lr, ddof=1)
    assert robust_score(at_lr, half, double) == pytest.approx(expected)
    assert robust_score(at_lr, half, double) == pytest.approx(0.885 - 0.02)
    with pytest.raises(ValueError, match="acc_at_lr"):
        robust_score([0.9], half, double)


def test_summary_and_robustness_table_pick_the_steady_configuration():
    runs = synthetic_runs()
    summary = grid_summary(runs, lr=0.01).set_index(["momentum", "batch_size"])
    assert summary.loc[(0.9, 32), "final_val_acc"] == pytest.approx(0.95)
    assert summary.loc[(0.9, 32), "acc_std"] == pytest.approx(0.01)
    assert summary.loc[(0.9, 32), "epochs_to_target"] == pytest.approx(7 / 3)
    assert math.isnan(summary.loc[(0.0, 64), "epochs_to_target"])  # one seed never got there
    assert summary.loc[(0.0, 64), "num_seeds"] == 3

    table = robustness_table(runs, lr=0.01)
    by_config = table.set_index(["momentum", "batch_size"])
    assert by_config.loc[(0.9, 32), "acc_double"] == pytest.approx(0.60)
    assert by_config.loc[(0.9, 32), "lr_drop"] == pytest.approx(0.35)
    assert by_config.loc[(0.0, 64), "score"] == pytest.approx(0.885 - 0.01)
    assert table["score"].is_monotonic_decreasing
    picks = pick_configurations(table)
    assert (picks.robust["momentum"], picks.robust["batch_size"]) == (0.0, 64)
    assert (picks.fastest["momentum"], picks.fastest["batch_size"]) == (0.9, 32)
    assert not picks.same
    # A learner's score plugs in: the plain mean at η would pick the fragile one.
    plain = robustness_table(runs, lr=0.01, score=lambda a, h, d: float(np.mean(a)))
    assert (plain.iloc[0]["momentum"], plain.iloc[0]["batch_size"]) == (0.9, 32)


def test_analysis_names_missing_learning_rates_and_columns():
    runs = synthetic_runs()
    with pytest.raises(ValueError, match="lr=0.03"):
        grid_summary(runs, lr=0.03)
    with pytest.raises(ValueError, match="columns"):
        grid_summary(runs.drop(columns="seed"), lr=0.01)
    assert find_run(runs, momentum=0.9, batch_size=32, lr=0.02, seed=1)["final_val_acc"] == 0.70
    with pytest.raises(ValueError, match="seed=7; found 0"):
        find_run(runs, momentum=0.9, batch_size=32, lr=0.02, seed=7)
    with pytest.raises(ValueError, match="lack"):
        proxy_edge_correlations(runs, lr=0.01, proxies=("relative_loss_var",))


def test_correlations_are_spearman_over_runs_without_diverged_ones():
    runs = synthetic_runs()
    runs.loc[0, "diverged"] = True
    table = proxy_edge_correlations(runs, lr=0.01, proxies=("loss_var", "grad_norm"))
    at_lr = runs[(runs["lr"] == 0.01) & ~runs["diverged"]]
    expected = stats.spearmanr(at_lr["loss_var"], at_lr["edge_ratio"])
    row = table.set_index("proxy").loc["loss_var"]
    assert row["rho"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert row["n"] == 5
    assert table.set_index("proxy").loc["grad_norm", "rho"] < 0  # 1/(edge + seed): falls
