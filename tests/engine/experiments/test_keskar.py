"""Lesson 04's engine: noise scale and its rules, training with phases, curve gaps, line
asymmetry."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from edutools.engine.experiments.keskar import curve_gap, line_asymmetry
from edutools.engine.landscape import SliceResult, interpolate
from edutools.engine.training import Phase, train
from edutools.ground.models import cross_entropy, mlp
from edutools.ground.theory.noise_scale import (
    linear_scaling_lr,
    momentum_for_noise_scale,
    noise_scale,
)


def test_noise_scale_formula_and_the_rules_that_keep_it():
    assert noise_scale(0.1, 32, 0.5) == pytest.approx(0.1 / (32 * 0.5))
    assert noise_scale(0.05, 16) == pytest.approx(0.05 / 16)
    # Linear scaling (Goyal et al.): k× the batch, k× the step size, same noise scale.
    assert noise_scale(linear_scaling_lr(0.05, 16, 64), 64) == pytest.approx(noise_scale(0.05, 16))
    # Doubling B and halving 1 − β keeps it too.
    assert noise_scale(0.05, 32, 0.5) == pytest.approx(noise_scale(0.05, 16, 0.0))
    beta = momentum_for_noise_scale(0.05, 64, noise_scale(0.05, 16))
    assert beta == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no momentum"):
        momentum_for_noise_scale(0.05, 4, noise_scale(0.05, 16))  # would need β < 0
    for bad in (dict(lr=0.0, batch_size=8), dict(lr=0.1, batch_size=0),
                dict(lr=0.1, batch_size=8, momentum=1.0)):
        with pytest.raises(ValueError):
            noise_scale(**bad)


def test_train_with_phases_carries_the_velocity_across_phases(teacher):
    # Two one-step full-batch phases with momentum = two steps of GD with momentum, only if the
    # optimizer (and its velocity) is shared between the phases.
    n = teacher.num_train
    phased = mlp([teacher.input_dim, 8, teacher.num_classes], seed=1)
    result = train(phased, teacher, phases=[Phase(0.5, n, 1), Phase(0.5, n, 1)], momentum=0.9)
    reference = mlp([teacher.input_dim, 8, teacher.num_classes], seed=1)
    train(reference, teacher, lr=0.5, momentum=0.9, num_steps=2, measure_every=1)
    for a, b in zip(phased.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert result.num_steps == 2 and not result.diverged
    assert result.record["step"].tolist() == [0, 1, 2]


def test_train_with_phases_record_counts_epochs_across_batch_sizes(teacher):
    model = mlp([teacher.input_dim, 8, teacher.num_classes], seed=0)
    phases = [Phase(0.1, 16, 2), Phase(0.02, 64, 3)]
    result = train(model, teacher, phases=phases, seed=3)
    record = result.record
    # 200 samples: 12 steps per epoch at B=16, 3 at B=64; one row per epoch plus the start.
    assert record["epoch"].tolist() == [0, 1, 2, 3, 4, 5]
    assert record["step"].tolist() == [0, 12, 24, 27, 30, 33]
    assert result.num_steps == 33
    assert record["phase"].tolist() == [0, 0, 0, 1, 1, 1]
    assert record["batch_size"].tolist() == [16, 16, 16, 64, 64, 64]
    assert record["train_loss"].iloc[-1] < record["train_loss"].iloc[0]
    with pytest.raises(ValueError):
        train(model, teacher, phases=[])
    with pytest.raises(ValueError):
        train(model, teacher, phases=[Phase(0.1, 10_000, 1)])
    with pytest.raises(ValueError, match="either phases or lr"):
        train(model, teacher, phases=phases, lr=0.1)


def test_curve_gap_is_the_largest_log_ratio_after_the_start():
    a = pd.DataFrame({"epoch": [0, 1, 2, 3], "train_loss": [1.0, 0.5, 0.25, 0.2]})
    b = a.assign(train_loss=a["train_loss"] * [5.0, 1.0, 1.1, 0.95])
    assert curve_gap(a, a) == 0.0
    assert curve_gap(a, b) == pytest.approx(math.log(1.1))  # epoch 0 (×5) is left out
    assert curve_gap(a, b) == pytest.approx(curve_gap(b, a))
    shifted = a.assign(epoch=a["epoch"] + 0.5)
    with pytest.raises(ValueError, match="share"):
        curve_gap(a, shifted)
    with pytest.raises(ValueError, match="positive"):
        curve_gap(a, a.assign(train_loss=[1.0, 0.0, 1.0, 1.0]))


def test_line_asymmetry_reads_the_rise_beyond_each_end():
    alphas = np.linspace(-1, 2, 31)
    curve = np.where(alphas < 0.5, alphas**2, 4 * (alphas - 1) ** 2)  # b is 4× sharper
    line = SliceResult(alphas=alphas, losses=curve, metrics=None)
    near = line_asymmetry(line, 0.2)
    assert near.rise_a == pytest.approx(0.04) and near.rise_b == pytest.approx(0.16)
    assert near.b_steeper
    mirrored = line_asymmetry(line, 0.25, values=curve[::-1])  # interpolated between grid points
    assert not mirrored.b_steeper
    assert mirrored.rise_a == pytest.approx(4 * 0.25**2, abs=0.02)
    with pytest.raises(ValueError, match="cover"):
        line_asymmetry(line, 1.5)
    with pytest.raises(ValueError):
        line_asymmetry(line, 0.0)


def test_line_asymmetry_on_a_real_interpolation(teacher):
    model_a = mlp([teacher.input_dim, 8, teacher.num_classes], seed=0)
    model_b = mlp([teacher.input_dim, 8, teacher.num_classes], seed=1)
    X, y = teacher.X_train, teacher.y_train
    line = interpolate(model_a, model_b, cross_entropy, X, y, alphas=np.linspace(-1, 2, 31))
    result = line_asymmetry(line, 0.5)

    def loss_at(alpha):
        theta = [alpha * pb + (1 - alpha) * pa
                 for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True)]
        probe = mlp([teacher.input_dim, 8, teacher.num_classes], seed=0)
        with torch.no_grad():
            for p, value in zip(probe.parameters(), theta, strict=True):
                p.copy_(value)
            return float(cross_entropy(probe(X), y))

    assert result.rise_a == pytest.approx(loss_at(-0.5) - loss_at(0.0), rel=1e-4)
    assert result.rise_b == pytest.approx(loss_at(1.5) - loss_at(1.0), rel=1e-4)
