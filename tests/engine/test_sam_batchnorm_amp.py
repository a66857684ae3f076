"""edutools.engine.sam with BatchNorm (statistics of one pass) and mixed precision (GradScaler).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from edutools.engine.sam import (
    SAM,
    disable_running_stats,
    enable_running_stats,
    frozen_running_stats,
)
from tests.engine.sam_reference import (
    LR,
    MOMENTUM,
    flat,
    loss_fn,
    make_closure,
    make_data,
    make_model,
)

# ---------------------------------------------------------------------------------------------
# BatchNorm
# ---------------------------------------------------------------------------------------------

def bn_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))


def bn_buffers(model):
    bn = model[1]
    return [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]


@pytest.mark.parametrize("protocol", ["two_calls", "closure"])
def test_batchnorm_statistics_equal_those_of_one_forward_pass(protocol):
    X, y = make_data(dtype=torch.float32)
    reference = bn_model()
    reference(X)  # one forward pass in training mode, as the base optimizer would do
    model = bn_model()
    sam = SAM(model.parameters(), rho=0.5, lr=LR, momentum=MOMENTUM)
    if protocol == "two_calls":
        loss_fn(model(X), y).backward()
        sam.first_step(zero_grad=True)
        with frozen_running_stats(model):
            loss_fn(model(X), y).backward()
        sam.second_step(zero_grad=True)
    else:
        def closure():
            with frozen_running_stats(model, enabled=sam.perturbed):
                loss = loss_fn(model(X), y)
                loss.backward()
            return loss
        sam.step(closure)
    for got, want in zip(bn_buffers(model), bn_buffers(reference), strict=True):
        assert torch.equal(got, want)
    # Without the freeze the perturbed pass moves the statistics a second time.
    unfrozen = bn_model()
    sam = SAM(unfrozen.parameters(), rho=0.5, lr=LR)
    sam.step(make_closure(unfrozen, X, y))
    assert not torch.equal(bn_buffers(unfrozen)[0], bn_buffers(reference)[0])
    assert bn_buffers(unfrozen)[2].item() == 2


def test_disable_enable_running_stats_pair_and_misuse():
    model = bn_model()
    X, _ = make_data(dtype=torch.float32)
    before = bn_buffers(model)
    disable_running_stats(model)
    model(X)
    with pytest.raises(RuntimeError, match="already"):
        disable_running_stats(model)
    enable_running_stats(model)
    assert all(torch.equal(a, b) for a, b in zip(bn_buffers(model), before, strict=True))
    with pytest.raises(TypeError, match="model"):
        disable_running_stats("not a model")


# ---------------------------------------------------------------------------------------------
# Mixed precision
# ---------------------------------------------------------------------------------------------

def amp_sam_step(model, sam, scaler, X, y, *, autocast=False, inf_in=None, unscale_first=True):
    """The documented GradScaler recipe; ``inf_in`` plants an inf gradient in pass 1 or 2."""
    def backward(pass_number):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model(X), y)
        scaler.scale(loss.float()).backward()
        if inf_in == pass_number:
            next(model.parameters()).grad[0, 0] = float("inf")

    backward(1)
    if unscale_first:
        scaler.unscale_(sam)
    sam.first_step(zero_grad=True)
    backward(2)
    sam.second_step(zero_grad=True, scaler=scaler)
    scaler.update()


def test_grad_scaler_step_equals_unscaled_fp32_step():
    X, y = make_data(dtype=torch.float32)
    reference = make_model(dtype=torch.float32)
    model = copy.deepcopy(reference)
    ref_sam = SAM(reference.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, enabled=True)
    for step in range(3):
        ref_sam.zero_grad()
        ref_sam.step(make_closure(reference, X, y))
        amp_sam_step(model, sam, scaler, X, y, unscale_first=step != 1)
    assert scaler.get_scale() == 2.0 ** 12  # no overflow, no skipped step
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_grad_scaler_with_bf16_autocast_is_close_to_fp32():
    X, y = make_data(dtype=torch.float32)
    reference = make_model(dtype=torch.float32)
    model = copy.deepcopy(reference)
    start = flat([p.detach().clone() for p in reference.parameters()])
    ref_sam = SAM(reference.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, enabled=True)
    ref_sam.step(make_closure(reference, X, y))
    amp_sam_step(model, sam, scaler, X, y, autocast=True)
    ref_update = flat(reference.parameters()).detach() - start
    amp_update = flat(model.parameters()).detach() - start
    # bfloat16 keeps 8 significant bits (relative rounding 2⁻⁹ ≈ 0.002 per operation).
    error = torch.linalg.vector_norm(amp_update - ref_update) / torch.linalg.vector_norm(ref_update)
    assert error < 0.01  # measured 0.0024


@pytest.mark.parametrize("inf_in, unscale_first", [(1, True), (1, False), (2, True)])
def test_grad_scaler_skips_the_step_on_inf_gradients(inf_in, unscale_first):
    X, y = make_data(dtype=torch.float32)
    model = make_model(dtype=torch.float32)
    sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, enabled=True)
    amp_sam_step(model, sam, scaler, X, y)  # one good step: momentum buffers exist
    before = [p.detach().clone() for p in model.parameters()]
    buffers = [sam.base_optimizer.state[p]["momentum_buffer"].clone()
               for p in model.parameters()]
    amp_sam_step(model, sam, scaler, X, y, inf_in=inf_in, unscale_first=unscale_first)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert all(torch.equal(sam.base_optimizer.state[p]["momentum_buffer"], b)
               for p, b in zip(model.parameters(), buffers, strict=True))
    assert scaler.get_scale() == 2.0 ** 11  # the overflow was recorded: scale backed off
    amp_sam_step(model, sam, scaler, X, y)  # and training goes on
    assert not torch.equal(next(model.parameters()), before[0])
