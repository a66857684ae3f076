"""edutools.engine.sam: SAM / ASAM / stale ascent / m-sharpness against independent references.

The references below are written from the formulas with plain tensors and autograd on
``torch.func.functional_call``; they share no code with the package.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call

from edutools.engine.sam import (
    SAM,
    asam_scale,
    ascent_perturbation,
    disable_running_stats,
    enable_running_stats,
    frozen_running_stats,
    m_sharpness_gradient,
)

LR, MOMENTUM = 0.1, 0.9


# ---------------------------------------------------------------------------------------------
# Problem and reference formulas (plain tensors and torch.func, no code from the package)
# ---------------------------------------------------------------------------------------------

def make_model(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)


def make_data(n: int = 24, seed: int = 1, dtype: torch.dtype = torch.float64):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=generator, dtype=dtype)
    y = torch.randn(n, 3, generator=generator, dtype=dtype)
    return X, y


def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return 0.5 * (outputs - targets).pow(2).sum(dim=1).mean()


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def ref_grad(model, theta, X, y):
    """∇L at the parameters ``theta`` (a name → tensor dict), by autograd on a functional call.

    (torch.func.grad would do too, but its first call costs seconds of lazy imports.)
    """
    leaves = {k: v.detach().requires_grad_() for k, v in theta.items()}
    loss = loss_fn(functional_call(model, leaves, (X,)), y)
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))


def ref_eps(theta, g, *, rho, adaptive=False, eta=0.01):
    """ε̂ = ρ·T²g/‖Tg‖ with T = |w| + η on >1-D tensors, T = 1 otherwise (T = 1 for SAM)."""
    T = {k: (v.abs() + eta) if adaptive and v.ndim > 1 else torch.ones_like(v)
         for k, v in theta.items()}
    norm = torch.sqrt(sum(((T[k] * g[k]) ** 2).sum() for k in g))
    return {k: rho * T[k] ** 2 * g[k] / norm for k in g}


def ref_sam_sgd(model, X, y, *, steps, rho, adaptive=False, eta=0.01, every=1):
    """SAM with heavy-ball SGD (v ← βv + g_SAM, θ ← θ − ηv); ε̂ recomputed when t % every == 0."""
    theta, velocity, eps = params_of(model), None, None
    for t in range(steps):
        if t % every == 0:
            eps = ref_eps(theta, ref_grad(model, theta, X, y), rho=rho, adaptive=adaptive,
                          eta=eta)
        g_sam = ref_grad(model, {k: theta[k] + eps[k] for k in theta}, X, y)
        velocity = (dict(g_sam) if velocity is None
                    else {k: MOMENTUM * velocity[k] + g_sam[k] for k in theta})
        theta = {k: theta[k] - LR * velocity[k] for k in theta}
    return theta


def make_closure(model, X, y, counter=None):
    def closure():
        if counter is not None:
            counter.append(1)
        loss = loss_fn(model(X), y)
        loss.backward()
        return loss
    return closure


def assert_params_close(model, expected, *, tol=1e-10):
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=tol, atol=tol)


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


# ---------------------------------------------------------------------------------------------
# SAM and ASAM updates
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("adaptive, rho", [(False, 0.05), (True, 0.5)])
@pytest.mark.parametrize("protocol", ["closure", "two_calls"])
def test_update_matches_reference_with_heavy_ball(adaptive, rho, protocol):
    model = make_model()
    X, y = make_data()
    expected = ref_sam_sgd(copy.deepcopy(model), X, y, steps=5, rho=rho, adaptive=adaptive)
    sam = SAM(model.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=LR,
              momentum=MOMENTUM)
    for _ in range(5):
        if protocol == "closure":
            sam.zero_grad()
            sam.step(make_closure(model, X, y))
        else:
            loss_fn(model(X), y).backward()
            sam.first_step(zero_grad=True)
            loss_fn(model(X), y).backward()
            sam.second_step(zero_grad=True)
    assert_params_close(model, expected)
    # The update is not the plain heavy-ball one (the reference would not catch ρ being ignored
    # if it were): at least one parameter moved differently by more than the tolerance.
    plain = ref_sam_sgd(copy.deepcopy(make_model()), X, y, steps=5, rho=0.0)
    assert max((p.detach() - plain[n]).abs().max() for n, p in model.named_parameters()) > 1e-4


def test_davda54_style_backward_then_step_closure():
    model = make_model()
    X, y = make_data()
    expected = ref_sam_sgd(copy.deepcopy(model), X, y, steps=3, rho=0.05)
    sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    counter = []
    for _ in range(3):
        loss_fn(model(X), y).backward()  # gradient at θ computed outside
        sam.step(make_closure(model, X, y, counter))
        sam.zero_grad()
    assert len(counter) == 3  # the closure ran only at θ + ε̂
    assert_params_close(model, expected)


def test_step_under_no_grad_still_computes_gradients():
    model, (X, y) = make_model(), make_data()
    expected = ref_sam_sgd(copy.deepcopy(model), X, y, steps=2, rho=0.05)
    sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM)
    with torch.no_grad():
        for _ in range(2):
            sam.zero_grad()
            sam.step(make_closure(model, X, y))
    assert_params_close(model, expected)


def test_works_as_the_optimizer_of_edutools_training():
    from edutools.engine.training import train
    from edutools.ground.data import teacher_task

    data = teacher_task(num_train=24, num_val=8, input_dim=5, num_classes=3, device="cpu")
    data = data.to("cpu", dtype=torch.float64)
    X, y = data.X_train, torch.nn.functional.one_hot(data.y_train, 3).to(torch.float64)
    model = make_model()
    expected = ref_sam_sgd(copy.deepcopy(model), X, y, steps=3, rho=0.05)
    train(model, data, lr=LR, num_steps=3, loss_fn="half_mse", measure_every=3, progress=False,
          optimizer=lambda params: SAM(params, rho=0.05, lr=LR, momentum=MOMENTUM))
    assert_params_close(model, expected)


def perturbation_after_first_step(model, sam, X, y):
    before = [p.detach().clone() for p in model.parameters()]
    loss_fn(model(X), y).backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
             for p in model.parameters()]
    sam.first_step(zero_grad=True)
    eps = [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]
    return before, grads, eps


def test_sam_perturbation_has_norm_rho_and_direction_of_g():
    model, (X, y) = make_model(), make_data()
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    _, grads, eps = perturbation_after_first_step(model, sam, X, y)
    g, e = flat(grads), flat(eps)
    assert torch.linalg.vector_norm(e).item() == pytest.approx(0.05, rel=1e-12)
    torch.testing.assert_close(e, 0.05 * g / torch.linalg.vector_norm(g), rtol=1e-9, atol=1e-14)
    assert sam.last_grad_norm == pytest.approx(torch.linalg.vector_norm(g).item(), rel=1e-12)


def test_asam_perturbation_has_rescaled_norm_rho_and_leaves_biases_unscaled():
    model, (X, y) = make_model(), make_data()
    rho, eta = 0.5, 0.01
    sam = SAM(model.parameters(), rho=rho, adaptive=True, asam_eta=eta, lr=LR)
    before, grads, eps = perturbation_after_first_step(model, sam, X, y)
    T = [(w.abs() + eta) if w.ndim > 1 else torch.ones_like(w) for w in before]
    rescaled = flat([e / t for e, t in zip(eps, T, strict=True)])
    assert torch.linalg.vector_norm(rescaled).item() == pytest.approx(rho, rel=1e-12)
    tg_norm = torch.linalg.vector_norm(flat([t * g for t, g in zip(T, grads, strict=True)]))
    for w, g, e in zip(before, grads, eps, strict=True):
        if w.ndim == 1:  # bias: ε̂_b = ρ g_b / ‖T g‖, no |b| factor
            torch.testing.assert_close(e, rho * g / tg_norm, rtol=1e-9, atol=1e-14)
    assert asam_scale(before[1], asam_eta=eta) is None  # bias: T = identity
    torch.testing.assert_close(asam_scale(before[0], asam_eta=eta), before[0].abs() + eta)
    # ASAM's ball is not SAM's: the plain norm of ε̂ is not ρ.
    assert abs(torch.linalg.vector_norm(flat(eps)).item() - rho) > 1e-3


def test_parameters_are_restored_bit_for_bit_before_the_base_step():
    seen = {}

    class Recorder(torch.optim.Optimizer):
        """A base optimizer that only records the parameters it is asked to update."""

        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            seen["params"] = [p.detach().clone() for g in self.param_groups for p in g["params"]]

    model, (X, y) = make_model(dtype=torch.float32), make_data(dtype=torch.float32)
    sam = SAM(model.parameters(), Recorder, rho=0.3)
    originals = [p.detach().clone() for p in model.parameters()]
    _, _, eps = perturbation_after_first_step(model, sam, X, y)
    loss_fn(model(X), y).backward()
    sam.second_step()
    for original, restored in zip(originals, seen["params"], strict=True):
        assert torch.equal(original, restored)
    # Subtracting ε̂ instead would not have been exact in float32 (what the copy avoids).
    assert not all(torch.equal((o + e) - e, o) for o, e in zip(originals, eps, strict=True))


@pytest.mark.parametrize("adaptive, every", [(False, 1), (False, 3), (True, 1)])
def test_zero_gradient_gives_no_perturbation_and_no_nan(adaptive, every):
    model = make_model()
    sam = SAM(model.parameters(), rho=0.05, adaptive=adaptive, ascent_every=every, lr=LR)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    sam.first_step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert sam.last_grad_norm == 0.0
    sam.second_step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert sam.ascent_due  # nothing stored: the next step looks for a direction again
    result = ascent_perturbation(before, [torch.zeros_like(b) for b in before], rho=0.05)
    assert result.grad_norm == 0.0 and all(torch.equal(e, torch.zeros_like(e))
                                           for e in result.perturbation)


def test_parameters_without_gradient_are_not_perturbed():
    model, (X, y) = make_model(), make_data()
    model[0].weight.requires_grad_(False)
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    frozen = model[0].weight.detach().clone()
    _, grads, eps = perturbation_after_first_step(model, sam, X, y)
    assert torch.equal(eps[0], torch.zeros_like(eps[0]))
    rest = flat(eps[1:])
    assert torch.linalg.vector_norm(rest).item() == pytest.approx(0.05, rel=1e-12)
    loss_fn(model(X), y).backward()
    sam.second_step()
    assert torch.equal(model[0].weight, frozen)


def test_base_optimizer_with_its_own_rho_keeps_it():
    model = make_model()
    sam = SAM(model.parameters(), torch.optim.Adadelta, rho=0.05, lr=1.0)
    assert sam.param_groups[0]["rho"] == 0.9  # Adadelta's own ρ, untouched by SAM's radius
    assert sam.param_groups[0]["sam_rho"] == 0.05


# ---------------------------------------------------------------------------------------------
# Cheap variant: stale ascent
# ---------------------------------------------------------------------------------------------

def test_stale_ascent_recomputes_every_k_steps_and_matches_reference():
    k, steps = 3, 7
    model, (X, y) = make_model(), make_data()
    expected = ref_sam_sgd(copy.deepcopy(model), X, y, steps=steps, rho=0.05, every=k)
    sam = SAM(model.parameters(), rho=0.05, ascent_every=k, lr=LR, momentum=MOMENTUM)
    counter, fresh = [], []
    for _ in range(steps):
        fresh.append(sam.ascent_due)
        sam.zero_grad()
        sam.step(make_closure(model, X, y, counter))
    assert fresh == [t % k == 0 for t in range(steps)]
    assert len(counter) == steps + math.ceil(steps / k)  # one pass per step, one more per ascent
    assert_params_close(model, expected)


def test_stale_ascent_reuses_the_same_perturbation_between_recomputations():
    model, (X, y) = make_model(), make_data()
    sam = SAM(model.parameters(), rho=0.05, ascent_every=4, lr=LR, momentum=MOMENTUM)
    perturbations = []
    for _ in range(6):
        theta = [p.detach().clone() for p in model.parameters()]
        if sam.ascent_due:
            loss_fn(model(X), y).backward()
        sam.first_step(zero_grad=True)
        perturbations.append(flat([p.detach() - t for p, t in
                                   zip(model.parameters(), theta, strict=True)]))
        loss_fn(model(X), y).backward()
        sam.second_step(zero_grad=True)
    for t in (1, 2, 3):  # θ moved, ε̂ did not (up to the rounding of θ + ε̂ − θ)
        torch.testing.assert_close(perturbations[t], perturbations[0], rtol=0, atol=1e-15)
    assert torch.linalg.vector_norm(perturbations[4] - perturbations[0]) > 1e-6
    torch.testing.assert_close(perturbations[5], perturbations[4], rtol=0, atol=1e-15)


def test_stale_ascent_with_k_1_is_sam():
    X, y = make_data()
    runs = []
    for every in (None, 1):
        model = make_model()
        kwargs = {} if every is None else {"ascent_every": every}
        sam = SAM(model.parameters(), rho=0.05, lr=LR, momentum=MOMENTUM, **kwargs)
        for _ in range(4):
            sam.zero_grad()
            sam.step(make_closure(model, X, y))
        runs.append([p.detach() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


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


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [-0.1, float("nan"), float("inf"), "0.05"])
def test_bad_rho(rho):
    with pytest.raises(ValueError, match="rho"):
        SAM(make_model().parameters(), rho=rho, lr=LR)


@pytest.mark.parametrize("base, match", [
    ("instance", "not an instance"), (int, "subclass of torch.optim.Optimizer"),
    (lambda params: None, "subclass of torch.optim.Optimizer"), (SAM, "SAM itself")])
def test_bad_base_optimizer(base, match):
    model = make_model()
    if base == "instance":
        base = torch.optim.SGD(model.parameters(), lr=LR)
    with pytest.raises(TypeError, match=match):
        SAM(model.parameters(), base, rho=0.05, lr=LR)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"adaptive": 1}, TypeError, "adaptive"), ({"asam_eta": -0.01}, ValueError, "asam_eta"),
    ({"ascent_every": 0}, ValueError, "ascent_every"),
    ({"ascent_every": 2.5}, ValueError, "ascent_every")])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        SAM(make_model().parameters(), rho=0.05, lr=LR, **kwargs)


def test_protocol_misuse():
    model, (X, y) = make_model(), make_data()
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    with pytest.raises(RuntimeError, match="before first_step"):
        sam.second_step()
    with pytest.raises(TypeError, match="closure"):
        sam.step()
    with pytest.raises(TypeError, match="callable"):
        sam.step(3)
    loss_fn(model(X), y).backward()
    sam.first_step()
    with pytest.raises(RuntimeError, match="twice"):
        sam.first_step()
    with pytest.raises(ValueError, match="SAM state_dict"):
        sam.load_state_dict(torch.optim.SGD(model.parameters(), lr=LR).state_dict())


def test_closure_returning_none_raises_and_leaves_theta():
    model, (X, y) = make_model(), make_data()
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    before = [p.detach().clone() for p in model.parameters()]

    def forgetful():
        loss_fn(model(X), y).backward()

    loss_fn(model(X), y).backward()
    with pytest.raises(TypeError, match="returned None"):
        sam.step(forgetful)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert not sam.perturbed


@pytest.mark.parametrize("m, match", [(0, "m must"), (25, "larger than the batch"),
                                      (2.0, "m must")])
def test_m_sharpness_bad_m(m, match):
    model, (X, y) = make_model(), make_data(n=24)
    with pytest.raises(ValueError, match=match):
        m_sharpness_gradient(model, loss_fn, X, y, rho=0.05, m=m)


def test_m_sharpness_bad_shapes():
    model, (X, y) = make_model(), make_data(n=24)
    with pytest.raises(ValueError, match="same number of samples"):
        m_sharpness_gradient(model, loss_fn, X, y[:10], rho=0.05, m=4)
    sam = SAM(model[0].parameters(), rho=0.05, lr=LR)
    with pytest.raises(ValueError, match="does not own"):
        sam.m_sharpness_step(model, loss_fn, X, y, m=4)


def test_train_with_stale_ascent_does_one_pass_on_reuse_steps_and_freezes_batchnorm():
    from edutools.engine.training import train
    from edutools.ground.data import teacher_task

    data = teacher_task(num_train=64, num_val=32, input_dim=5, num_classes=3, seed=0,
                        device="cpu")
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(),
                                torch.nn.Linear(8, 3))
    passes = []
    model.register_forward_hook(lambda module, inputs, output: passes.append(module.training))
    train(model, data, lr=0.1, num_steps=6, batch_size=16, measure_every=100,
          optimizer=lambda params: SAM(params, rho=0.05, lr=0.1, ascent_every=3))
    training_passes = sum(passes)  # measurement passes run in eval mode
    # Steps 1 and 4 recompute ε̂ (two passes), the other four reuse it (one pass each).
    assert training_passes == 2 * 2 + 4
    assert int(model[1].num_batches_tracked) == 2  # only the passes at θ update BatchNorm
