"""Lesson 06's generalization and cost engine: noisy digits, the step of each method, pass
counts, timing, the m-sharpness loop and paired gaps."""

import numpy as np
import pandas as pd
import pytest
import torch

from edutools.engine.experiments import sam_generalization as sg
from edutools.engine.experiments.sam_generalization import (
    CHEAP,
    METHODS,
    Method,
    count_passes,
    make_step,
    noisy_digits,
    paired_gaps,
    time_per_step,
    train_method,
)
from edutools.ground.data import load_digits
from edutools.ground.models import cross_entropy, mlp


def test_noisy_digits_flips_a_quarter_of_the_training_labels_only():
    noisy = noisy_digits(seed=3)
    clean = load_digits(seed=3, device="cpu")
    given = noisy.data.y_train.numpy()
    assert 0.2 < noisy.fraction < 0.3
    assert (given[noisy.flipped] != noisy.clean_labels[noisy.flipped]).all()
    assert (given[~noisy.flipped] == noisy.clean_labels[~noisy.flipped]).all()
    np.testing.assert_array_equal(noisy.clean_labels, clean.y_train.numpy())
    assert torch.equal(noisy.data.y_val, clean.y_val)  # validation labels stay clean
    assert not np.array_equal(noisy.flipped, noisy_digits(seed=4).flipped)
    with pytest.raises(ValueError, match="fraction"):
        noisy_digits(seed=0, fraction=1.5)


def tiny():
    model = mlp([64, 8, 10], activation="relu", init="torch", seed=0)
    data = noisy_digits(seed=0).data
    return model, data.X_train[:64], data.y_train[:64]


def test_a_sam_step_is_a_descent_step_with_the_gradient_at_theta_plus_eps():
    model, X, y = tiny()
    start = [p.detach().clone() for p in model.parameters()]
    # By hand: ε̂ = ρ·g/‖g‖ (one norm over all tensors), gradient there, SGD step from θ.
    grads = torch.autograd.grad(cross_entropy(model(X), y), list(model.parameters()))
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads, strict=True):
            p.add_(0.1 * g / norm)
    perturbed = torch.autograd.grad(cross_entropy(model(X), y), list(model.parameters()))
    expected = [p0 - sg.LR * g for p0, g in zip(start, perturbed, strict=True)]
    with torch.no_grad():
        for p, p0 in zip(model.parameters(), start, strict=True):
            p.copy_(p0)
    loss = make_step(Method("SAM", rho=0.1), model)(X, y)
    assert loss == pytest.approx(float(cross_entropy(torch.func.functional_call(
        model, dict(zip([n for n, _ in model.named_parameters()], start, strict=True)), (X,)),
        y)))
    for p, e in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)


def test_m_sharpness_with_m_equal_to_the_batch_is_plain_sam():
    model_a, X, y = tiny()
    model_b, _, _ = tiny()
    step_a = make_step(Method("SAM", rho=0.1), model_a)
    step_b = make_step(Method("m=64", rho=0.1, m=64), model_b)
    for _ in range(3):
        step_a(X, y)
        step_b(X, y)
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_pass_counts_are_deterministic():
    assert count_passes(METHODS[0]).passes_per_step == 1
    assert count_passes(METHODS[1]).passes_per_step == 2
    assert count_passes(METHODS[2]).passes_per_step == 2
    cheap = count_passes(CHEAP, num_steps=10)
    assert cheap.passes_per_step == pytest.approx(1.2)  # (k + 1)/k with k = 5
    m16 = count_passes(Method("m=16", rho=0.1, m=16), num_steps=2)
    assert m16.passes_per_step == 2 * 64 / 16 and m16.samples_per_step == 2 * 64
    assert count_passes(METHODS[0]).samples_per_step == 64


def test_time_per_step_is_a_table_relative_to_the_first_method():
    table = time_per_step([METHODS[0], METHODS[1]], num_steps=3, repeats=2)
    assert list(table.index) == [METHODS[0].name, METHODS[1].name]
    assert table["wall_ratio"].iloc[0] == 1.0 and (table["ms_per_step"] > 0).all()
    with pytest.raises(ValueError, match="repeats"):
        time_per_step(METHODS[:1], repeats=0)


def test_the_m_sharpness_loop_follows_train_batch_order(monkeypatch):
    # m = 64 = B is plain SAM: the loop and train() must give the same curve.
    via_train = train_method(Method("SAM", rho=0.1), seed=1, epochs=2, measure_every_epochs=1)
    via_loop = train_method(Method("SAM as m=64", rho=0.1, m=64), seed=1, epochs=2,
                            measure_every_epochs=1)
    pd.testing.assert_frame_equal(via_train.record[["epoch", "train_acc", "val_acc"]],
                                  via_loop.record[["epoch", "train_acc", "val_acc"]],
                                  atol=2e-3, rtol=0)
    end = via_train.end
    assert set(end) == {"val_acc", "best_val_acc", "train_acc", "memorized", "lambda_max",
                        "eps_sharpness", "seconds"}
    assert 0 <= end["memorized"] <= 1 and end["lambda_max"] > 0 and end["eps_sharpness"] >= 0
    assert end["best_val_acc"] >= end["val_acc"]


def test_paired_gaps_compare_each_method_with_the_baseline_seed_by_seed():
    table = pd.DataFrame({"method": ["A", "B", "A", "B", "A", "B"], "seed": [0, 0, 1, 1, 2, 2],
                          "val_acc": [0.8, 0.85, 0.7, 0.69, 0.9, 0.95]})
    gaps = paired_gaps(table, "val_acc", baseline="A")
    assert list(gaps.index) == ["B"]
    assert gaps.loc["B", "mean"] == pytest.approx((0.05 - 0.01 + 0.05) / 3)
    assert gaps.loc["B", "positive"] == 2 and gaps.loc["B", "seeds"] == 3
    assert gaps.loc["B", "se"] == pytest.approx(np.std([0.05, -0.01, 0.05], ddof=1) / np.sqrt(3))
    with pytest.raises(ValueError, match="baseline"):
        paired_gaps(table, "val_acc", baseline="C")
