"""The exact linear-regression stability experiment: SGD simulation, bisection for η*."""

import numpy as np
import pytest

from edutools.engine.experiments.critical_lr import (
    CriticalLRResult,
    batch_sharpness_linear,
    critical_lr,
    critical_lr_sweep,
    edge_products,
    simulate_sgd,
)
from edutools.ground.data import linear_regression_task, teacher_task


@pytest.fixture(scope="module")
def task():
    return linear_regression_task(num_train=256, num_val=16, dim=32, seed=0, device="cpu")


def arrays(task):
    X = task.X_train.double().numpy()
    return X, task.y_train.double().numpy()[:, 0]


def test_full_batch_gd_diverges_at_two_over_lambda_max(task):
    result = critical_lr(task, batch_size=task.num_train, num_steps=1000)
    assert isinstance(result, CriticalLRResult)
    assert result.lr_star == pytest.approx(2 / result.lambda_max, rel=0.02)
    assert result.lr_stable < result.lr_star < result.lr_diverged
    assert result.lr_diverged / result.lr_stable - 1 < 0.01


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_full_batch_heavy_ball_edge_is_two_one_plus_beta(task, momentum):
    result = critical_lr(task, batch_size=task.num_train, momentum=momentum, num_steps=1000)
    assert result.lr_lambda_max == pytest.approx(2 * (1 + momentum), rel=0.02)


def test_batch_size_one_is_set_by_the_trace_not_lambda_max(task):
    result = critical_lr(task, batch_size=1, num_steps=1000)
    # B = 1: g_Bᵀ H_B g_B/‖g_B‖² = ‖x‖² for every w, so batch sharpness ≈ mean ‖x‖² = tr(H).
    assert result.batch_sharpness == pytest.approx(result.trace, rel=0.15)
    assert 1.5 < result.lr_trace_over_batch < 2.4
    assert 1.5 < result.lr_batch_sharpness < 2.4
    assert result.lr_lambda_max < 0.8


def test_smaller_batches_need_smaller_steps(task):
    table = critical_lr_sweep(task, [1, 4, task.num_train], num_steps=600, tol=0.03)
    assert list(table["batch_size"]) == [1, 4, task.num_train]
    assert np.all(np.diff(table["lr_star"]) > 0)
    row = edge_products(critical_lr(task, batch_size=4, num_steps=600, tol=0.03))
    assert row["lr_lambda_max"] == pytest.approx(row["lr_star"] * table["lambda_max"][0])


def test_bracket_is_widened_when_it_misses(task):
    lam = critical_lr(task, batch_size=task.num_train, num_steps=500).lambda_max
    low = critical_lr(task, batch_size=task.num_train, num_steps=500, lr_low=0.1 / lam,
                      lr_high=0.5 / lam)  # both stable: the bracket must move up
    high = critical_lr(task, batch_size=task.num_train, num_steps=500, lr_low=5 / lam,
                       lr_high=9 / lam)  # both diverge: the bracket must move down
    for result in (low, high):
        assert result.lr_star * lam == pytest.approx(2, rel=0.02)


def test_simulation_matches_heavy_ball_by_hand(task):
    X, y = arrays(task)
    lrs = np.array([0.01, 0.05])
    beta, batch_size, steps = 0.7, 16, 20
    trials = simulate_sgd(X, y, lrs, batch_size=batch_size, momentum=beta, num_steps=steps,
                          seed=3, num_snapshots=4)
    per_epoch = len(X) // batch_size
    for k, lr in enumerate(lrs):
        w, v = np.zeros(X.shape[1]), np.zeros(X.shape[1])
        rng = np.random.default_rng(3)
        for step in range(steps):
            if step % per_epoch == 0:
                order = rng.permutation(len(X))
            idx = order[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size]
            g = X[idx].T @ (X[idx] @ w - y[idx]) / batch_size
            v = beta * v + g
            w = w - lr * v
        np.testing.assert_allclose(trials.final_w[:, k], w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(trials.snapshots[-1, :, k], w, rtol=1e-10, atol=1e-12)
    assert not trials.diverged.any()


def test_diverged_runs_are_flagged_and_frozen(task):
    X, y = arrays(task)
    lam = np.linalg.eigvalsh(X.T @ X / len(X))[-1]
    trials = simulate_sgd(X, y, np.array([1.0 / lam, 3.0 / lam]), batch_size=len(X),
                          num_steps=300)
    assert trials.diverged.tolist() == [False, True]
    assert np.all(trials.final_w[:, 1] == 0) and np.any(trials.blowup_w[:, 1] != 0)


def test_batch_sharpness_formula(task):
    X, y = arrays(task)
    rng = np.random.default_rng(1)
    w = rng.standard_normal(X.shape[1])
    # Full batch: the Rayleigh quotient of H along the full gradient.
    H = X.T @ X / len(X)
    g = H @ w - X.T @ y / len(X)
    full = batch_sharpness_linear(X, y, w, batch_size=len(X))
    assert full == pytest.approx(g @ H @ g / (g @ g), rel=1e-10)
    # B = 1: ‖x‖² of the sampled point, whatever w is; averaged it approaches tr(H).
    one = batch_sharpness_linear(X, y, w, batch_size=1, num_batches=4000)
    assert one == pytest.approx(np.trace(H), rel=0.05)
    assert H.trace() >= full


@pytest.mark.parametrize("kwargs, word", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=10_000), "batch_size"),
    (dict(batch_size=4, momentum=1.0), "momentum"),
    (dict(batch_size=4, tol=0.0), "tol"),
    (dict(batch_size=4, num_steps=0), "num_steps"),
    (dict(batch_size=4, lr_low=1.0, lr_high=0.5), "lr_low"),
    (dict(batch_size=4, lr_high=-1.0), "lr_high"),
    (dict(batch_size=4, sharpness_at="end"), "sharpness_at"),
    (dict(batch_size=4, divergence_factor=1.0), "divergence_factor"),
])
def test_bad_arguments_are_named(task, kwargs, word):
    with pytest.raises(ValueError, match=word):
        critical_lr(task, **kwargs)


def test_simulate_sgd_checks_its_step_sizes(task):
    X, y = arrays(task)
    with pytest.raises(ValueError, match="lrs"):
        simulate_sgd(X, y, np.array([0.1, -0.1]), batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        simulate_sgd(X, y, np.array([0.1]), batch_size=0)


def test_classification_task_is_rejected():
    data = teacher_task(num_train=20, num_val=5, device="cpu")
    with pytest.raises(ValueError, match="regression"):
        critical_lr(data, batch_size=4)
    with pytest.raises(ValueError, match="CriticalLRResult"):
        edge_products({"lr_star": 1.0})
