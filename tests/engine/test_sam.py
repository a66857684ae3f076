"""edutools.engine.sam: SAM / ASAM updates and stale ascent against independent references
(:mod:`tests.engine.sam_reference`), and SAM as the optimizer of ``train``.

The other concerns have their own files: ``test_sam_batchnorm_amp.py`` (BatchNorm, mixed
precision), ``test_sam_state.py`` (schedulers, state_dict, param groups, m-sharpness) and
``test_sam_bad_inputs.py``. The references share no code with the package.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from edutools.engine.sam import (
    SAM,
    asam_scale,
    ascent_perturbation,
)
from tests.engine.sam_reference import (
    LR,
    MOMENTUM,
    assert_params_close,
    flat,
    loss_fn,
    make_closure,
    make_data,
    make_model,
    ref_sam_sgd,
)

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
