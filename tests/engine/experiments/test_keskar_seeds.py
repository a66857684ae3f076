"""The seed ensemble of lesson 04 (keskar_seeds): each member is the one-by-one run of
keskar.train_to_loss up to round-off, members stop on their own, and the gap statistics."""

import math

import numpy as np
import pytest
import torch

from edutools.engine.experiments import keskar, keskar_seeds
from edutools.ground.data import teacher_task

WIDTHS = [20, 16, 4]
RUN = dict(lr=3e-3, target_loss=0.3, max_steps=3000)


def small_task(seed: int):
    return teacher_task(num_train=128, num_val=64, teacher_width=16, seed=seed)


@pytest.mark.parametrize("batch_size", [16, None])
def test_members_match_one_by_one_runs(batch_size):
    seeds = [3, 4, 5]
    runs = keskar_seeds.train_seeds_to_loss(small_task, WIDTHS, seeds=seeds,
                                            batch_size=batch_size, **RUN)
    for i, seed in enumerate(seeds):
        data = small_task(seed)
        alone = keskar.train_to_loss(data, WIDTHS, batch_size=batch_size or data.num_train,
                                     seed=seed, **RUN)
        final = alone.final
        assert runs.steps[i] == final["step"], (seed, runs.steps[i], final["step"])
        assert runs.reached[i] and final["train_loss"] <= RUN["target_loss"]
        assert runs.train_loss[i] == pytest.approx(final["train_loss"], rel=1e-3)
        assert runs.val_acc[i] == pytest.approx(final["val_acc"], abs=1 / 64 + 1e-9)
        assert runs.peak_val_acc[i] == pytest.approx(alone.record["val_acc"].max(),
                                                     abs=1 / 64 + 1e-9)


def test_members_stop_on_their_own_and_the_budget_is_respected():
    runs = keskar_seeds.train_seeds_to_loss(small_task, WIDTHS, seeds=[0, 1, 2, 3],
                                            batch_size=16, lr=3e-3, target_loss=0.3,
                                            max_steps=3000)
    assert len(set(runs.steps.tolist())) > 1, runs.steps  # not all at the same check
    short = keskar_seeds.train_seeds_to_loss(small_task, WIDTHS, seeds=[0, 1], batch_size=16,
                                             lr=3e-3, target_loss=1e-6, max_steps=40)
    assert (short.steps == 40).all() and not short.reached.any()
    assert list(short.table().index) == [0, 1]


def test_seed_gaps_table_is_sb_minus_lb_and_keeps_each_solution():
    gaps = keskar_seeds.seed_gaps(small_task, WIDTHS, seeds=[0, 1], small_batch_size=16,
                                  large_batch_size=None, **RUN)
    table = gaps.table
    assert np.allclose(table["gap"], table["SB val_acc"] - table["LB val_acc"])
    assert (table["SB steps"] > table["LB steps"]).all()
    for seed in (0, 1):
        data = small_task(seed)
        for model, name in zip(gaps.models(seed), ("SB", "LB"), strict=True):
            with torch.no_grad():
                accuracy = (model(data.X_val).argmax(1) == data.y_val).float().mean()
            assert float(accuracy) == pytest.approx(table.loc[seed, f"{name} val_acc"])


def test_gap_statistics_mean_se_and_sign_test():
    stats = keskar_seeds.gap_statistics([0.01, 0.02, 0.03, -0.01, 0.02, 0.01])
    assert stats.n == 6 and stats.positive == 5
    assert stats.sign_p == pytest.approx(7 / 64)  # P(≥ 5 heads of 6)
    values = np.array([0.01, 0.02, 0.03, -0.01, 0.02, 0.01])
    assert stats.standard_error == pytest.approx(values.std(ddof=1) / math.sqrt(6))
    assert stats.z == pytest.approx(values.mean() / stats.standard_error)


@pytest.mark.parametrize("bad", [[0.1], [0.1, float("nan")]])
def test_gap_statistics_rejects_too_few_or_non_finite(bad):
    with pytest.raises(ValueError, match="at least two finite gaps"):
        keskar_seeds.gap_statistics(bad)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="at least one seed"):
        keskar_seeds.train_seeds_to_loss(small_task, WIDTHS, seeds=[], batch_size=16, **RUN)
    with pytest.raises(ValueError, match="lr"):
        keskar_seeds.train_seeds_to_loss(small_task, WIDTHS, seeds=[0], batch_size=16,
                                         lr=-1.0, target_loss=0.1, max_steps=10)
