"""edutools.engine.sam: schedulers, state_dict and param groups reach the base optimizer;
m-sharpness against its reference.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from edutools.engine.sam import (
    SAM,
    m_sharpness_gradient,
)
from tests.engine.sam_reference import (
    LR,
    MOMENTUM,
    loss_fn,
    make_closure,
    make_data,
    make_model,
    params_of,
    ref_eps,
    ref_grad,
)

# ---------------------------------------------------------------------------------------------
# Schedulers, state_dict, param groups
# ---------------------------------------------------------------------------------------------

def test_lr_scheduler_acts_on_the_base_step_through_shared_param_groups():
    X, y = make_data()
    model = make_model()
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    assert sam.param_groups is sam.base_optimizer.param_groups
    scheduler = torch.optim.lr_scheduler.StepLR(sam, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        loss_fn(model(X), y).backward()
        sam.first_step(zero_grad=True)
        loss_fn(model(X), y).backward()
        sam.second_step(zero_grad=True)
        scheduler.step()
    assert sam.base_optimizer.param_groups[0]["lr"] == pytest.approx(LR / 2)
    # The next step uses lr/2: same as a fresh SAM with lr/2 from the same point (no momentum).
    twin = copy.deepcopy(model)
    twin_sam = SAM(twin.parameters(), rho=0.05, lr=LR / 2)
    sam.step(make_closure(model, X, y))
    twin_sam.step(make_closure(twin, X, y))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(),
                                                 strict=True))


@pytest.mark.parametrize("every", [1, 3])
def test_state_dict_round_trip_includes_momentum_and_stale_perturbation(every):
    X, y = make_data()
    model = make_model()
    sam = SAM(model.parameters(), rho=0.05, ascent_every=every, lr=LR, momentum=MOMENTUM)
    for _ in range(4):
        sam.zero_grad()
        sam.step(make_closure(model, X, y))
    state = copy.deepcopy(sam.state_dict())
    twin = copy.deepcopy(model)
    twin_sam = SAM(twin.parameters(), rho=0.7, ascent_every=every, lr=1.0, momentum=0.0)
    twin_sam.load_state_dict(state)
    assert twin_sam.param_groups is twin_sam.base_optimizer.param_groups
    assert twin_sam.param_groups[0]["lr"] == LR and twin_sam.param_groups[0]["sam_rho"] == 0.05
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(sam.base_optimizer.state[p]["momentum_buffer"],
                           twin_sam.base_optimizer.state[q]["momentum_buffer"])
    assert twin_sam.ascent_due == sam.ascent_due
    for _ in range(3):
        for m, s in ((model, sam), (twin, twin_sam)):
            s.zero_grad()
            s.step(make_closure(m, X, y))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(),
                                                 strict=True))


def test_add_param_group_reaches_the_base_optimizer():
    model = make_model()
    sam = SAM(model[0].parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    sam.add_param_group({"params": model[2].parameters(), "lr": 0.01})
    assert len(sam.base_optimizer.param_groups) == 2
    group = sam.param_groups[1]
    assert group["lr"] == 0.01 and group["momentum"] == MOMENTUM and group["sam_rho"] == 0.05


# ---------------------------------------------------------------------------------------------
# m-sharpness
# ---------------------------------------------------------------------------------------------

def ref_m_sharpness(model, X, y, *, rho, m, adaptive=False):
    theta, n = params_of(model), X.shape[0]
    total = {k: torch.zeros_like(v) for k, v in theta.items()}
    for start in range(0, n, m):
        X_c, y_c = X[start:start + m], y[start:start + m]
        eps = ref_eps(theta, ref_grad(model, theta, X_c, y_c), rho=rho, adaptive=adaptive)
        g = ref_grad(model, {k: theta[k] + eps[k] for k in theta}, X_c, y_c)
        total = {k: total[k] + (X_c.shape[0] / n) * g[k] for k in theta}
    return [total[name] for name, _ in model.named_parameters()]


@pytest.mark.parametrize("m, adaptive", [(6, False), (5, False), (8, True)])
def test_m_sharpness_gradient_is_the_weighted_average_of_chunk_sam_gradients(m, adaptive):
    model, (X, y) = make_model(), make_data(n=24)
    before = [p.detach().clone() for p in model.parameters()]
    result = m_sharpness_gradient(model, loss_fn, X, y, rho=0.05, m=m, adaptive=adaptive)
    expected = ref_m_sharpness(model, X, y, rho=0.05, m=m, adaptive=adaptive)
    for got, want in zip(result.grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert result.chunk_sizes == tuple([m] * (24 // m) + ([24 % m] if 24 % m else []))
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_m_sharpness_limits_rho_zero_and_m_equal_n():
    model, (X, y) = make_model(), make_data(n=24)
    full = ref_grad(model, params_of(model), X, y)
    names = [name for name, _ in model.named_parameters()]
    at_zero = m_sharpness_gradient(model, loss_fn, X, y, rho=0.0, m=7)  # with a remainder
    for got, name in zip(at_zero.grads, names, strict=True):
        torch.testing.assert_close(got, full[name], rtol=1e-10, atol=1e-12)
    one_chunk = m_sharpness_gradient(model, loss_fn, X, y, rho=0.05, m=24)
    theta = params_of(model)
    eps = ref_eps(theta, full, rho=0.05)
    sam_grad = ref_grad(model, {k: theta[k] + eps[k] for k in theta}, X, y)
    for got, name in zip(one_chunk.grads, names, strict=True):
        torch.testing.assert_close(got, sam_grad[name], rtol=1e-10, atol=1e-12)


def test_m_sharpness_step_is_a_base_step_with_that_gradient():
    model, (X, y) = make_model(), make_data(n=24)
    twin = copy.deepcopy(model)
    sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    result = sam.m_sharpness_step(model, loss_fn, X, y, m=6)
    with torch.no_grad():
        for p, g in zip(twin.parameters(), result.grads, strict=True):
            p.sub_(LR * g)  # first heavy-ball step: v = g
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert max((p - q).abs().max() for p, q in zip(model.parameters(), twin.parameters(),
                                                   strict=True)) < 1e-12
    assert not all(torch.equal(p, b) for p, b in zip(model.parameters(), make_model().parameters(),
                                                     strict=True))
