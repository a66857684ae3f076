"""edutools.engine.monitor.edges: the edge of each optimizer, read from its param groups, and
the derivations (dampening, weight decay, AdamW) checked on the linear dynamics they describe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine.monitor import EdgeMonitor, optimizer_edge
from edutools.engine.sam import SAM
from edutools.ground.models import half_mse, mlp
from edutools.ground.theory.edges import (
    gd_edge,
    momentum_edge,
    sam_edge,
    small_batch_momentum_edge,
)


def params():
    return [nn.Parameter(torch.zeros(3))]


def quadratic_grows(make_optimizer, curvature: float, num_steps: int = 3000) -> bool:
    """Run a torch optimizer on L(θ) = curvature·θ²/2 (1-D); True if |θ| ends larger."""
    theta = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    optimizer = make_optimizer([theta])
    for _ in range(num_steps):
        optimizer.zero_grad()
        (0.5 * curvature * theta.pow(2)).sum().backward()
        optimizer.step()
    return abs(float(theta.detach())) > 1.0


# --- SGD -------------------------------------------------------------------------------------


def test_plain_sgd_has_edge_two_over_lr_for_both_curvatures():
    edge = optimizer_edge(torch.optim.SGD(params(), lr=0.1))
    assert edge.full_batch == pytest.approx(gd_edge(0.1)) == edge.small_batch
    assert edge.full_batch_name == "2/η" and edge.curvature == "lambda_max"
    assert edge.description == "SGD, lr=0.1" and edge.notes == ()


def test_heavy_ball_full_and_small_batch_edges_come_from_the_theory_module():
    edge = optimizer_edge(torch.optim.SGD(params(), lr=0.05, momentum=0.9))
    assert edge.full_batch == pytest.approx(momentum_edge(0.05, 0.9))
    assert edge.small_batch == pytest.approx(small_batch_momentum_edge(0.05, 0.9))
    assert (edge.full_batch_name, edge.small_batch_name) == ("2(1+β)/η", "2(1−β)/η")
    assert edge.description == "SGD, lr=0.05, momentum=0.9"


def test_nesterov_edge_and_no_small_batch_formula():
    edge = optimizer_edge(torch.optim.SGD(params(), lr=0.1, momentum=0.5, nesterov=True))
    assert edge.full_batch == pytest.approx(momentum_edge(0.1, 0.5, nesterov=True))
    assert edge.small_batch is None and edge.nesterov
    assert any("Nesterov" in note for note in edge.notes)


@pytest.mark.parametrize("factor, grows", [(0.98, False), (1.02, True)])
def test_dampened_heavy_ball_edge_separates_stable_from_unstable(factor, grows):
    lr, beta, tau = 0.1, 0.6, 0.5
    edge = optimizer_edge(torch.optim.SGD(params(), lr=lr, momentum=beta, dampening=tau))
    assert edge.full_batch == pytest.approx(2 * (1 + beta) / (lr * (1 - tau)))
    assert edge.full_batch_name == "2(1+β)/(η(1−τ))" and edge.dampening == tau
    assert quadratic_grows(lambda p: torch.optim.SGD(p, lr=lr, momentum=beta, dampening=tau),
                           factor * edge.full_batch) is grows


@pytest.mark.parametrize("factor, grows", [(0.98, False), (1.02, True)])
def test_weight_decay_moves_the_edge_on_h_down_by_wd(factor, grows):
    lr, beta, wd = 0.1, 0.5, 2.0
    edge = optimizer_edge(torch.optim.SGD(params(), lr=lr, momentum=beta, weight_decay=wd))
    assert edge.full_batch == pytest.approx(momentum_edge(lr, beta) - wd)
    assert edge.small_batch == pytest.approx(small_batch_momentum_edge(lr, beta) - wd)
    assert edge.full_batch_name.endswith(" − wd") and "weight_decay=2" in edge.description
    assert any("H + wd·I" in note for note in edge.notes)
    # The curvature of loss_fn alone: the optimizer adds wd·θ to its gradient itself.
    assert quadratic_grows(lambda p: torch.optim.SGD(p, lr=lr, momentum=beta, weight_decay=wd),
                           factor * edge.full_batch) is grows


# --- Adam, AdamW -----------------------------------------------------------------------------


def test_adam_edge_is_on_the_preconditioned_sharpness():
    edge = optimizer_edge(torch.optim.Adam(params(), lr=0.01, betas=(0.9, 0.999)))
    assert edge.curvature == "preconditioned_sharpness" and edge.small_batch is None
    assert edge.full_batch == pytest.approx((2 + 2 * 0.9) / ((1 - 0.9) * 0.01))
    assert edge.full_batch_name == "(2+2β₁)/((1−β₁)η)" and edge.momentum == 0.9
    coupled = optimizer_edge(torch.optim.Adam(params(), lr=0.01, weight_decay=0.1))
    assert coupled.full_batch == pytest.approx(edge.full_batch)  # wd goes into the operator
    assert any("H + wd·I" in note for note in coupled.notes)


@pytest.mark.parametrize("factor, grows", [(0.99, False), (1.01, True)])
def test_adamw_edge_matches_its_frozen_preconditioner_recurrence(factor, grows):
    lr, beta1, wd = 0.01, 0.9, 5.0
    edge = optimizer_edge(torch.optim.AdamW(params(), lr=lr, betas=(beta1, 0.999),
                                            weight_decay=wd))
    plain = (2 + 2 * beta1) / ((1 - beta1) * lr)
    assert edge.full_batch == pytest.approx(plain - wd * (1 + beta1) / (1 - beta1))
    assert edge.optimizer == "AdamW" and "wd(1+β₁)/(1−β₁)" in edge.full_batch_name
    # m ← β₁m + (1−β₁)a·x, x ← (1−η·wd)x − η·m along an eigenvector of P⁻¹H (eigenvalue a).
    a = factor * edge.full_batch
    step = np.array([[beta1, (1 - beta1) * a], [-lr * beta1, 1 - lr * wd - lr * (1 - beta1) * a]])
    assert bool(max(abs(np.linalg.eigvals(step))) > 1) is grows


# --- SAM, unknown optimizers, groups, schedules ----------------------------------------------


def test_sam_edge_needs_the_gradient_norm():
    sam = SAM(params(), torch.optim.SGD, rho=0.05, lr=0.1)
    edge = optimizer_edge(sam, grad_norm=2.0)
    assert edge.full_batch == pytest.approx(sam_edge(0.1, 0.05, 2.0)) and edge.rho == 0.05
    assert edge.optimizer == "SAM(SGD)" and "rho=0.05" in edge.description
    assert optimizer_edge(sam).full_batch is None
    with_momentum = optimizer_edge(SAM(params(), torch.optim.SGD, rho=0.05, lr=0.1,
                                       momentum=0.9), grad_norm=2.0)
    assert with_momentum.full_batch is None
    assert with_momentum.notes[0].startswith("no edge formula for SAM(SGD)")


def test_unknown_optimizer_has_no_edge_and_says_so():
    edge = optimizer_edge(torch.optim.RMSprop(params(), lr=0.01))
    assert edge.full_batch is None and edge.small_batch is None
    assert edge.notes == ("no edge formula for RMSprop",)
    with pytest.raises(ValueError, match="torch.optim.Optimizer"):
        optimizer_edge("SGD")


def test_param_groups_that_differ_are_noted():
    first, second = params(), params()
    optimizer = torch.optim.SGD([{"params": first}, {"params": second, "lr": 0.5}], lr=0.1)
    edge = optimizer_edge(optimizer)
    assert edge.lr == 0.1 and "group 0" in edge.notes[-1]


def test_monitor_follows_a_warm_up_schedule_and_sam():
    torch.manual_seed(0)
    X, y = torch.randn(32, 3), torch.randn(32, 2)
    model = mlp([3, 8, 2], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    warm_up = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 4))
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                          every=1)
    used = []
    for _ in range(6):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        half_mse(model(X), y).backward()
        optimizer.step()
        monitor.step()
        warm_up.step()
    record = monitor.record
    assert record["lr"].tolist() == pytest.approx(used)
    assert used[0] < used[3] == used[5]  # warm-up, then flat
    assert record["edge"].to_numpy() == pytest.approx(2 / np.array(used))
    # SAM through the hook on its base optimizer: λ_SAM at the measured gradient norm.
    sam = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    sam_monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=sam, probe=(X, y),
                              every=2).attach()
    for _ in range(4):
        sam.zero_grad()
        sam.step(lambda: _backward(model, X, y))
    row = sam_monitor.record.iloc[-1]
    assert len(sam_monitor.record) == 2 and row["step"] == 4
    assert row["edge"] == pytest.approx(sam_edge(0.1, 0.05, row["grad_norm"]))
    assert math.isfinite(row["edge"]) and row["edge"] < 2 / 0.1


def _backward(model, X, y):
    loss = half_mse(model(X), y)
    loss.backward()
    return loss
