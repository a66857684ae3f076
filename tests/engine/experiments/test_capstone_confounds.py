"""Lesson 07's confound analysis and the pick's uncertainty: partial and within-β rank
correlations, the cluster bootstrap, the curvature-over-training run, and the bootstrap of the
robust pick — on synthetic grids whose answer is known."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from edutools.engine.experiments.capstone import capstone_curvature_run
from edutools.engine.experiments.capstone_analysis import (
    pick_uncertainty,
    robust_score,
    robustness_table,
    worst_run_score,
)
from edutools.engine.experiments.capstone_proxies import (
    config_means,
    partial_rank_correlation,
    proxy_confound_table,
    within_group_rank_correlation,
)

LR = 0.01
MOMENTA, BATCHES, SEEDS = (0.0, 0.5, 0.9, 0.99), (32, 64, 128, 256), (0, 1, 2)


def synthetic_runs(*, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """A grid where batch sharpness falls with B, so edge_ratio = BS·η_eff/2; ``tracks_edge``
    follows the edge ratio, ``tracks_step`` only the effective step, ``random`` nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for factor in (0.5, 1.0, 2.0):
        for m in MOMENTA:
            for b in BATCHES:
                for s in SEEDS:
                    lr = LR * factor
                    bs = 40.0 / np.sqrt(b) * (1 + noise * rng.standard_normal())
                    edge = bs * lr / (2 * (1 - m))
                    rows.append({"momentum": m, "batch_size": b, "lr": lr, "seed": s,
                                 "edge_ratio": edge, "batch_sharpness": bs,
                                 "lambda_max": 5 + m + rng.standard_normal() * 0.01,
                                 "tracks_edge": edge * (1 + noise * rng.standard_normal()),
                                 "tracks_step": 1 / (1 - m) * (1 + noise
                                                               * rng.standard_normal()),
                                 "random": rng.standard_normal(),
                                 "final_val_acc": 0.9 - 0.05 * m * factor + 0.01 * rng.random(),
                                 "epochs_to_target": 1.0 + b / 64, "diverged": False})
    return pd.DataFrame(rows)


def test_partial_rank_correlation_removes_a_shared_cause():
    rng = np.random.default_rng(0)
    cause = rng.standard_normal(200)
    x, y = cause + 0.1 * rng.standard_normal(200), cause + 0.1 * rng.standard_normal(200)
    assert stats.spearmanr(x, y)[0] > 0.9
    assert abs(partial_rank_correlation(x, y, cause)) < 0.2
    shared = rng.standard_normal(200)  # something beyond the cause that y and z both carry
    y, z = cause + shared, cause + shared + 0.1 * rng.standard_normal(200)
    assert partial_rank_correlation(y, z, cause) > 0.8


def test_within_group_correlation_averages_over_groups_and_skips_constant_ones():
    frame = pd.DataFrame({"momentum": [0, 0, 0, 1, 1, 1, 2, 2, 2],
                          "x": [1, 2, 3, 3, 2, 1, 5, 5, 5], "y": [1, 2, 3, 1, 2, 3, 1, 2, 3]})
    assert within_group_rank_correlation(frame, "x", "y") == pytest.approx(0.0)  # +1 and −1
    assert np.isnan(within_group_rank_correlation(frame.iloc[6:], "x", "y"))


def test_config_means_average_seeds_and_add_the_references():
    means = config_means(synthetic_runs(), lr=LR)
    assert len(means) == len(MOMENTA) * len(BATCHES)
    row = means[(means["momentum"] == 0.9) & (means["batch_size"] == 64)].iloc[0]
    assert row["effective_step"] == pytest.approx(0.1)
    assert row["inverse_batch"] == pytest.approx(1 / 64)


def test_confound_table_separates_a_step_follower_from_an_edge_follower():
    table = proxy_confound_table(synthetic_runs(), lr=LR,
                                 proxies=("tracks_edge", "tracks_step", "random"),
                                 num_bootstrap=60).set_index("proxy")
    # Pooled, both correlate with the edge ratio: the effective step drives both ...
    assert table.loc["tracks_edge", "rho_edge"] > 0.9 and table.loc["tracks_step", "rho_edge"] > 0.5
    # ... within β and partialled, only the edge follower still does.
    assert table.loc["tracks_edge", "within_beta"] > 0.9
    assert table.loc["tracks_edge", "partial"] > 0.8
    assert abs(table.loc["tracks_step", "within_beta"]) < 0.5
    assert abs(table.loc["tracks_step", "partial"]) < 0.5
    # The hyper-parameter references: 1/B ranks the batch sizes as the edge ratio does here.
    assert table.loc["inverse_batch", "within_beta"] == pytest.approx(1.0)
    for name in ("tracks_edge", "random"):  # intervals bracket their point values
        for statistic in ("rho_edge", "within_beta", "partial"):
            row = table.loc[name]
            assert row[f"{statistic}_lo"] <= row[statistic] + 1e-9
            assert row[statistic] <= row[f"{statistic}_hi"] + 1e-9
    assert table.loc["random", "partial_lo"] < 0 < table.loc["random", "partial_hi"]


def test_worst_run_score_is_the_worst_single_run():
    assert worst_run_score([0.9, 0.8], [0.95, 0.7], [0.85]) == pytest.approx(0.7)


def test_pick_uncertainty_counts_winners_and_brackets_the_gap():
    runs = synthetic_runs()
    table = robustness_table(runs, lr=LR)
    result = pick_uncertainty(runs, lr=LR, num_bootstrap=50)
    assert result.frequency["frequency"].sum() == pytest.approx(1.0)
    assert (result.runner_up["momentum"], result.runner_up["batch_size"]) == \
        (table.iloc[1]["momentum"], table.iloc[1]["batch_size"])
    assert result.gap == pytest.approx(table.iloc[0]["score"] - table.iloc[1]["score"])
    assert result.gap >= 0 and result.gap_lo <= result.gap_hi
    # Under a score that is the worst single run the same machinery works.
    alternative = pick_uncertainty(runs, lr=LR, score=worst_run_score, num_bootstrap=20)
    assert alternative.frequency["frequency"].iloc[0] > 0
    assert robust_score([0.9, 0.8], [0.9], [0.9]) < 0.9


def test_curvature_run_measures_every_epoch_against_the_edges():
    run = capstone_curvature_run(momentum=0.9, batch_size=128, lr=0.02, epochs=2, num_train=256,
                                 curvature_batches=3, seed=1)
    assert len(run["lambda_max_curve"]) == 3 and len(run["batch_sharpness_curve"]) == 3
    assert np.all(run["lambda_max_curve"] > 0) and np.all(run["batch_sharpness_se_curve"] >= 0)
    assert run["lower_edge"] == pytest.approx(2 * 0.1 / 0.02)
    assert run["upper_edge"] == pytest.approx(2 * 1.9 / 0.02)
    assert run["final_val_acc"] == run["val_acc_curve"][-1]
