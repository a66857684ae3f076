"""The SAM-ascent check: passes correct code, names the specific mistake otherwise."""

import pytest
import torch

from edutools.engine.sam import ascent_perturbation
from edutools.face.exercises.lesson06 import check_sam_ascent, reference_ascent


def global_norm(grads):
    return torch.sqrt(sum((g**2).sum() for g in grads))


def correct(grads, rho):
    norm = global_norm(grads)
    if norm == 0:
        return [torch.zeros_like(g) for g in grads]
    return [rho * g / norm for g in grads]


def not_normalized(grads, rho):
    return [rho * g for g in grads]


def per_tensor(grads, rho):
    return [rho * g / g.norm() for g in grads]


def descent(grads, rho):
    return [-e for e in correct(grads, rho)]


def rho_squared(grads, rho):
    return correct(grads, rho * rho)


def no_rho(grads, rho):
    return correct(grads, 1.0)


def squared_norm(grads, rho):
    norm = global_norm(grads)
    return [rho * g / norm**2 for g in grads] if norm > 0 else [0 * g for g in grads]


def sign(grads, rho):
    return [rho * torch.sign(g) for g in grads]


def nan_at_zero(grads, rho):
    return [rho * g / global_norm(grads) for g in grads]


def in_place(grads, rho):
    norm = global_norm(grads)
    return [g.mul_(rho / norm) if norm > 0 else g for g in grads]


def flat(grads, rho):
    return torch.cat([e.flatten() for e in correct(grads, rho)])


def stub(grads, rho):
    raise NotImplementedError


def crashes(grads, rho):
    return grads.norm()  # a list has no .norm()


def half_rho(grads, rho):
    return correct(grads, rho / 2)


def test_a_correct_answer_passes_and_matches_the_engine():
    feedback = check_sam_ascent(correct)
    assert feedback.passed, feedback.message
    assert "‖ε̂‖ = ρ" in feedback.message
    # The check's reference is the same ε̂ as the optimizer's own ascent_perturbation.
    grads = [torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    ours = reference_ascent(grads, 0.05)
    engine = ascent_perturbation([g.clone() for g in grads], grads, rho=0.05).perturbation
    for a, b in zip(ours, engine, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("answer", "words"), [
    (not_normalized, "not normalized"),
    (per_tensor, "normalized on its own"),
    (descent, "sign is flipped"),
    (rho_squared, "ρ²"),
    (no_rho, "multiply by the radius"),
    (squared_norm, "‖g‖² instead of ‖g‖"),
    (sign, "sign(g)"),
    (nan_at_zero, "g = 0"),
    (in_place, "in place"),
    (flat, "one tensor of shape"),
    (stub, "not written yet"),
    (crashes, "raised AttributeError"),
    (half_rho, "norm 0.025"),
])
def test_each_typical_mistake_gets_a_message_that_names_it(answer, words):
    feedback = check_sam_ascent(answer)
    assert not feedback.passed
    assert words in feedback.message, feedback.message
