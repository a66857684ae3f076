"""Exercise check of lesson 06 (SAM): the ascent step ε̂, with feedback that names the mistake.

The exercise's contract: ``sam_ascent(grads, rho) -> perturbation``

* ``grads`` is the gradient g at θ as a list of tensors, one per parameter tensor (any shapes);
  do not modify them;
* ``rho`` is the radius ρ > 0;
* the result is ε̂ = ρ·g/‖g‖ as a list of tensors with the same shapes, where ‖g‖ is the
  Euclidean norm of *all* the tensors together (so ‖ε̂‖ = ρ); at g = 0 there is no ascent
  direction and ε̂ = 0.

Face layer: the reference answer is computed here from the formula in plain torch, without the
engine's optimizer, so that the check reads on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from edutools.face.exercises.core import ExerciseFeedback

SamAscent = Callable[[list[torch.Tensor], float], object]

EXERCISE = "SAM's ascent step"
#: Relative tolerance on ε̂ (float64 cases).
RTOL = 1e-6

__all__ = ["check_sam_ascent", "reference_ascent"]


def reference_ascent(grads: Sequence[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """ε̂ = ρ·g/‖g‖ with the norm over all tensors together; zeros when g = 0."""
    norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    if norm == 0:
        return [torch.zeros_like(g) for g in grads]
    return [g * (rho / norm) for g in grads]


def _cases() -> list[tuple[str, list[torch.Tensor], float]]:
    generator = torch.Generator().manual_seed(6)

    def draw(*shape: int, scale: float) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=generator, dtype=torch.float64)

    # Tensors of very different norms, so per-tensor normalization is visibly wrong, and
    # ‖g‖ far from 1, so forgetting to normalize is too; ρ ≠ 1, so ρ² differs from ρ.
    return [
        ("a weight (4×3) and a bias (4,) with ‖g‖ ≈ 7, ρ = 0.05",
         [draw(4, 3, scale=2.0), draw(4, scale=0.1)], 0.05),
        ("three tensors with ‖g‖ ≈ 0.02 (a nearly flat point), ρ = 0.5",
         [draw(5, 2, scale=0.003), draw(2, scale=0.01), draw(3, 3, 2, scale=0.002)], 0.5),
        ("g = 0 (a critical point), ρ = 0.05",
         [torch.zeros(3, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)], 0.05),
    ]


def check_sam_ascent(sam_ascent: SamAscent) -> ExerciseFeedback:
    """Check a learner's ``sam_ascent(grads, rho)`` (see the module docstring for the contract)
    on three cases: two tensors of very different norms, a small gradient, and g = 0."""
    for description, grads, rho in _cases():
        originals = [g.clone() for g in grads]
        try:
            result = sam_ascent([g for g in grads], rho)
        except NotImplementedError:
            return _fail("not written yet: replace the `raise NotImplementedError` line.")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return _fail(f"on {description}, it raised {type(error).__name__}: {error}")
        if any(not torch.equal(g, o) for g, o in zip(grads, originals, strict=True)):
            return _fail("it changed the gradients in place (e.g. `g.mul_(...)` or `g /= ...`): "
                         "build new tensors (`g * (rho / norm)`); the optimizer still needs g.")
        message = _diagnose(result, grads, rho)
        if message is not None:
            return _fail(f"on {description}: {message}")
    return ExerciseFeedback(EXERCISE, True,
                            "correct: ε̂ = ρ·g/‖g‖ with one norm over all tensors, so ‖ε̂‖ = ρ "
                            "exactly, and ε̂ = 0 where there is no gradient.")


def _fail(message: str) -> ExerciseFeedback:
    return ExerciseFeedback(EXERCISE, False, message)


def _global_norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in tensors))


def _same(result: Sequence[torch.Tensor], expected: Sequence[torch.Tensor]) -> bool:
    scale = max(_global_norm(expected), 1e-30)
    return all(float((r.double() - e.double()).abs().max()) <= RTOL * scale + 1e-15
               for r, e in zip(result, expected, strict=True))


def _diagnose(result: object, grads: list[torch.Tensor], rho: float) -> str | None:
    """None when ``result`` is right for this case, else what is wrong."""
    count = len(grads)
    if result is None:
        return "it returned None: end with `return [...]`, one tensor per gradient tensor."
    if isinstance(result, torch.Tensor):
        return (f"it returned one tensor of shape {tuple(result.shape)}; return a list with one "
                f"tensor per parameter tensor ({count} here), each shaped like its gradient.")
    try:
        result = list(result)
    except TypeError:
        return f"return a list of tensors, got a {type(result).__name__}."
    if len(result) != count:
        return f"it returned {len(result)} tensors for {count} gradient tensors."
    for i, (r, g) in enumerate(zip(result, grads, strict=True)):
        if not isinstance(r, torch.Tensor):
            return f"entry {i} is a {type(r).__name__}, not a tensor."
        if tuple(r.shape) != tuple(g.shape):
            return (f"entry {i} has shape {tuple(r.shape)} but its gradient has shape "
                    f"{tuple(g.shape)}: ε̂ has the shape of the parameters.")
    norm = _global_norm(grads)
    if norm == 0:
        if any(not bool(torch.isfinite(r).all()) for r in result):
            return ("at g = 0 it returned NaN or inf — the division ρ/‖g‖ with ‖g‖ = 0. There "
                    "is no ascent direction at a critical point: return zeros there (e.g. "
                    "`if norm == 0: return [torch.zeros_like(g) for g in grads]`).")
        if _global_norm(result) != 0:
            return "at g = 0 there is no ascent direction: ε̂ must be all zeros."
        return None
    if any(not bool(torch.isfinite(r).all()) for r in result):
        return "it returned NaN or inf for a non-zero gradient."
    expected = reference_ascent(grads, rho)
    if _same(result, expected):
        return None
    return _name_mistake(result, grads, rho, norm)


def _name_mistake(result: list[torch.Tensor], grads: list[torch.Tensor], rho: float,
                  norm: float) -> str:
    candidates: list[tuple[list[torch.Tensor], str]] = [
        ([-e for e in reference_ascent(grads, rho)],
         "the sign is flipped: ε̂ points *down*hill. SAM looks for the worst loss near θ, so "
         "it steps *up* the gradient: ε̂ = +ρ·g/‖g‖ (the descent comes afterwards)."),
        ([rho * g for g in grads],
         f"it is ρ·g, not normalized: its norm is ρ·‖g‖ = {rho * norm:.3g} instead of ρ = "
         f"{rho:g}. Divide by ‖g‖, so that ε̂ lies on the sphere of radius ρ however large g "
         "is."),
        ([rho * g / max(float(torch.linalg.vector_norm(g)), 1e-300) for g in grads],
         f"each tensor was normalized on its own, so ‖ε̂‖ = ρ·√{len(grads)} and the direction "
         "is no longer g's (small tensors such as biases get as much as large ones). Take ONE "
         "norm over all tensors together: ‖g‖ = √(Σ_t ‖g_t‖²)."),
        (reference_ascent(grads, rho * rho),
         f"it is scaled by ρ² = {rho * rho:g}; the radius is ρ = {rho:g}: ε̂ = ρ·g/‖g‖."),
        (reference_ascent(grads, 1.0),
         "it is g/‖g‖, of norm 1: multiply by the radius ρ."),
        ([rho * g / norm**2 for g in grads],
         "it is divided by ‖g‖² instead of ‖g‖, so its norm is ρ/‖g‖ rather than ρ."),
        ([g for g in grads],
         "it returned the gradient itself: ε̂ = ρ·g/‖g‖ has norm ρ."),
        ([rho * torch.sign(g) for g in grads],
         "it is ρ·sign(g), the worst point of an ℓ∞ box (as in adversarial examples, FGSM); SAM "
         "uses the Euclidean ball, whose worst point to first order is ρ·g/‖g‖."),
    ]
    for candidate, message in candidates:
        if _same(result, candidate):
            return message
    got = _global_norm(result)
    flat_r = torch.cat([r.double().flatten() for r in result])
    flat_g = torch.cat([g.double().flatten() for g in grads])
    cosine = float(flat_r @ flat_g) / max(got * norm, 1e-300)
    return (f"expected ρ·g/‖g‖ (norm ρ = {rho:g}, parallel to g); yours has norm {got:.4g} and "
            f"cosine {cosine:.4f} with g.")
