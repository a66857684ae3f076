"""edutools.engine.monitor.EdgeMonitor in learners' own loops: GD and Adam reach their edges,
the preconditioned operator is exact, the training is bit-identical with the monitor, bad
settings are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine.monitor import (
    EdgeMonitor,
    MonitorDivergedError,
    PreconditionedHessianOperator,
    adam_preconditioner,
)
from edutools.engine.sharpness import HessianOperator, exact_hessian, top_eigenvalues
from edutools.ground.data import teacher_task
from edutools.ground.models import half_mse, mlp
from edutools.ground.theory.edges import small_batch_momentum_edge


@pytest.fixture(scope="module")
def teacher():
    data = teacher_task(num_train=200, num_val=10, seed=0, device="cpu")
    return data.X_train, data.y_train


def full_batch_loop(model, optimizer, X, y, num_steps, monitor=None):
    for _ in range(num_steps):
        optimizer.zero_grad()
        half_mse(model(X), y).backward()
        optimizer.step()
        if monitor is not None:
            monitor.step()


# --- the edges are reached -------------------------------------------------------------------


def test_gd_sharpens_progressively_up_to_two_over_lr(teacher):
    X, y = teacher
    model = mlp([20, 32, 32, 4], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          every=20)
    full_batch_loop(model, optimizer, X, y, 600, monitor)
    record = monitor.record
    assert len(record) == 30 and record["step"].iloc[-1] == 600
    assert np.allclose(record["edge"], 2 / 0.3) and record["mode"].eq("eval").all()
    assert record["ratio"].iloc[0] < 0.7  # starts well below the edge: sharpening, then EoS
    late = record.loc[record["step"] >= 400, "ratio"]
    assert late.between(0.9, 1.1).all(), late.tolist()
    # The warm-started, loose solve agrees with a cold, tight one.
    check = top_eigenvalues(model, half_mse, X, y, tol=1e-6, max_hvps=300)
    assert record["lambda_max"].iloc[-1] == pytest.approx(check.lambda_max, rel=5e-3)
    verdict = monitor.verdict()
    assert verdict.startswith("λ_max at ") and "of 2/η = 6.667" in verdict
    assert f"{record['ratio'].iloc[-1]:.2f}" in verdict and "(SGD, lr=0.3)" in verdict


def test_full_batch_adam_reaches_its_preconditioned_edge(teacher):
    # Cohen et al. 2022 at laptop scale: measured ratio 0.22 at step 25, ~1 from step ~225
    # (0.90–1.05 afterwards) on this model at η = 0.02.
    X, y = teacher
    model = mlp([20, 32, 32, 4], seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          every=25)
    full_batch_loop(model, optimizer, X, y, 400, monitor)
    record = monitor.record
    edge = (2 + 2 * 0.9) / ((1 - 0.9) * 0.02)
    assert np.allclose(record["edge"], edge)
    assert record["curvature"].eq("preconditioned_sharpness").all()
    assert record["lambda_max"].isna().all()
    assert record["ratio"].iloc[0] < 0.5
    late = record.loc[record["step"] >= 250, "ratio"]
    assert late.between(0.85, 1.12).all(), late.tolist()
    assert monitor.verdict().startswith("preconditioned sharpness λ_max(P⁻¹H) at ")


# --- the preconditioned operator -------------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_preconditioned_operator_matches_the_dense_matrix(weight_decay):
    torch.manual_seed(0)
    X, y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    model = mlp([3, 4, 2], seed=1, dtype=torch.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=weight_decay)
    full_batch_loop(model, optimizer, X, y, 4)
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    full_batch_loop(model, optimizer, X, y, 1)
    moved = torch.cat([p.detach().reshape(-1) for p in model.parameters()]) - before
    momentum = torch.cat([optimizer.state[p]["exp_avg"].reshape(-1) for p in model.parameters()])
    P = adam_preconditioner(optimizer, model)
    # Independent of the formula: Adam's last step was Δθ = −η P⁻¹ m_t.
    assert torch.allclose(moved, -0.05 * momentum / P, rtol=1e-9, atol=1e-14)
    H = exact_hessian(model, half_mse, X, y) + weight_decay * torch.eye(len(P), dtype=P.dtype)
    operator = PreconditionedHessianOperator(HessianOperator(model, half_mse, X, y),
                                             preconditioner=P, shift=weight_decay)
    dense = H / torch.sqrt(P)[:, None] / torch.sqrt(P)[None, :]
    v = torch.randn(len(P), dtype=torch.float64)
    assert torch.allclose(operator.matvec(v), dense @ v, rtol=1e-9, atol=1e-12)
    top = np.max(np.linalg.eigvals((H / P[:, None]).numpy()).real)  # P⁻¹H itself
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          tol=1e-8, max_hvps=len(P) - 1)
    assert monitor.measure()["preconditioned_sharpness"] == pytest.approx(top, rel=1e-6)


# --- the training is untouched ---------------------------------------------------------------


def bn_dropout_run(num_steps, *, monitor_kind=None):
    """SGD momentum on an MLP with BatchNorm and dropout, shuffled mini-batches (seeded)."""
    torch.manual_seed(0)
    data = teacher_task(num_train=128, num_val=8, seed=1, device="cpu")
    dataset = torch.utils.data.TensorDataset(data.X_train, data.y_train)
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(3))
    model = nn.Sequential(nn.Linear(20, 24), nn.BatchNorm1d(24), nn.Tanh(), nn.Dropout(0.3),
                          nn.Linear(24, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    monitor = None
    if monitor_kind == "loader":
        monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=loader,
                              every=5, num_batches=8, probe_size=64).attach()
    elif monitor_kind == "batch":
        monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer,
                              probe=(data.X_train, data.y_train), every=5, batch_size=16)
    step = 0
    while step < num_steps:
        for X, y in loader:
            optimizer.zero_grad()
            half_mse(model(X), y).backward()
            if monitor is not None and step % 7 == 3:  # between backward and step: .grad kept
                grads = [p.grad.clone() for p in model.parameters()]
                monitor.measure()
                now = [p.grad for p in model.parameters()]
                assert all(torch.equal(g, h) for g, h in zip(grads, now, strict=True))
            optimizer.step()
            if monitor_kind == "batch":
                monitor.step()
            step += 1
            if step == num_steps:
                break
    return model, monitor, torch.get_rng_state()


def test_training_is_bit_identical_with_and_without_the_monitor():
    plain, _, rng = bn_dropout_run(60)
    for kind in ("loader", "batch"):
        watched, monitor, watched_rng = bn_dropout_run(60, monitor_kind=kind)
        for (name, a), (_, b) in zip(plain.state_dict().items(), watched.state_dict().items(),
                                         strict=True):
            assert torch.equal(a, b), f"{kind}: {name} differs"  # parameters and BN buffers
        assert torch.equal(rng, watched_rng) and plain.training and watched.training
        record = monitor.record
        assert record["batch_sharpness"].notna().all() and (record["batch_sharpness_se"] > 0).all()
        assert record["curvature"].eq("batch_sharpness").all()
        assert record["edge"].to_numpy() == pytest.approx(small_batch_momentum_edge(0.05, 0.9))
        assert record["lambda_max"].notna().all() and (record["hvps"] > 8).all()
    assert len(monitor.record) == 12 + 9  # every 5th of 60 steps, plus the measure() calls
    verdict = monitor.verdict()
    assert verdict.startswith("batch sharpness at ") and " ± " in verdict
    assert "of 2(1−β)/η = 4 " in verdict and "momentum=0.9" in verdict


def test_measuring_leaves_no_grad_and_detach_stops_the_hook(teacher):
    X, y = teacher
    model = mlp([20, 8, 4], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = EdgeMonitor(model=model, loss_fn="half_mse", optimizer=optimizer, probe=(X, y),
                          every=2)
    assert monitor.verdict() == "no measurement yet: 0 optimizer steps seen, measuring every 2"
    monitor.measure()
    assert all(p.grad is None for p in model.parameters())
    seen = []
    monitor.watch = seen.append
    monitor.attach()
    monitor.attach()  # a second attach adds no second hook
    full_batch_loop(model, optimizer, X, y, 4)
    monitor.detach()
    full_batch_loop(model, optimizer, X, y, 4)
    assert monitor.steps == 4 and len(monitor.record) == 3 and len(seen) == 2
    assert seen[-1]["step"].tolist() == [0, 2, 4]


def test_unknown_optimizer_is_measured_without_an_edge(teacher):
    X, y = teacher
    model = mlp([20, 8, 4], seed=0)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          every=3)
    full_batch_loop(model, optimizer, X, y, 3, monitor)
    row = monitor.record.iloc[-1]
    assert row["lambda_max"] > 0 and np.isnan(row["edge"]) and np.isnan(row["ratio"])
    assert monitor.verdict().endswith("; no edge formula for RMSprop")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_monitor_runs_on_cuda_and_keeps_its_random_state(teacher):
    X, y = (t.cuda() for t in teacher)
    model = mlp([20, 16, 4], seed=0, dropout=0.2).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          every=2, batch_size=32)
    full_batch_loop(model, optimizer, X, y, 2)
    cuda_rng, cpu_rng = torch.cuda.get_rng_state(), torch.get_rng_state()
    row = monitor.measure()
    assert torch.equal(cuda_rng, torch.cuda.get_rng_state())
    assert torch.equal(cpu_rng, torch.get_rng_state())
    assert np.isfinite(row["preconditioned_sharpness"]) and np.isfinite(row["batch_sharpness"])


# --- bad settings ----------------------------------------------------------------------------


def test_bad_settings_are_refused_naming_the_value(teacher):
    X, y = teacher
    model = mlp([20, 8, 4], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def make(**changes):
        settings = dict(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y))
        return EdgeMonitor(**{**settings, **changes})

    with pytest.raises(ValueError, match="probe is required"):
        make(probe=None)
    for probe in (X, "digits", (X.numpy(), y.numpy()), 3):
        with pytest.raises(ValueError, match="probe must be a pair"):
            make(probe=probe)
    with pytest.raises(ValueError, match="one-shot iterator"):
        make(probe=iter([(X, y)]))
    with pytest.raises(ValueError, match="batch 0 is a tuple of 3"):
        make(probe=[(X, y, y)])
    with pytest.raises(ValueError, match="same number of samples"):
        make(probe=(X, y[:5]))
    for every in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"every must be a whole number ≥ 1, got {every!r}"):
            make(every=every)
    frozen = mlp([20, 4], seed=0).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        make(model=frozen)
    other = torch.optim.SGD(mlp([20, 8, 4], seed=1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="not the model's trainable parameters"):
        make(optimizer=other)
    partial = torch.optim.SGD(model[1].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"\['3.weight', '3.bias'\] are not in the optimizer"):
        make(optimizer=partial)


def test_divergence_names_the_step_and_the_lr(teacher):
    X, y = teacher
    model = mlp([20, 32, 4], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          every=5)
    with pytest.raises(MonitorDivergedError, match=r"diverged by step \d+ \(lr=50\)"):
        full_batch_loop(model, optimizer, X, y, 200, monitor)
