"""Lesson 02's exercise: the batch sharpness of one batch, from its gradient and an HVP.

The contract: ``batch_ratio(gradient, hvp) -> float``

* ``gradient`` is g_B, the flat gradient of the batch loss, a float tensor of shape ``(n,)``;
* ``hvp(v)`` returns H_B·v for a flat tensor ``v`` of shape ``(n,)`` (one Hessian-vector
  product per call);
* the result is the curvature of the batch loss along its own gradient,
  g_Bᵀ H_B g_B / ‖g_B‖², as a float (NaN when g_B = 0, where the ratio is undefined).

:func:`check_batch_ratio` runs the learner's function on symmetric matrices and gradients whose
answer is known, and names the mistake when it is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from edutools.face.exercises.core import ExerciseFeedback

EXERCISE = "batch sharpness of one batch"
RTOL = 1e-6

BatchRatio = Callable[[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], object]

__all__ = ["check_batch_ratio"]


def _symmetric(eigenvalues: list[float], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    matrix = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    return 0.5 * (matrix + matrix.T)


def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    hessian = _symmetric([9.0, 4.0, 2.0, 1.0, 0.5, 0.1, -0.3, -1.0], seed=1)
    gradient = torch.randn(8, generator=generator, dtype=torch.float64)
    # Large gradient: a result that scales with ‖g‖ is far from the answer.
    large = 30.0 * torch.randn(8, generator=generator, dtype=torch.float64)
    # A gradient along the negative-curvature directions: the ratio is negative.
    saddle = _symmetric([3.0, 1.0, -2.0, -5.0], seed=2)
    eigenvalues, vectors = torch.linalg.eigh(saddle)
    downhill = vectors[:, 0] + 0.2 * vectors[:, 1]  # mostly along eigenvalue −5
    return [("a random gradient", hessian, gradient),
            ("a gradient of norm ≈ 80", hessian, large),
            ("a gradient along negative curvature (the answer is negative)", saddle, downhill)]


def check_batch_ratio(batch_ratio: BatchRatio) -> ExerciseFeedback:
    """Check a learner's ``batch_ratio(gradient, hvp)`` against g_Bᵀ H_B g_B / ‖g_B‖².

    Three cases (a random gradient, a large one, one along negative curvature) and a zero
    gradient (expects NaN). A wrong answer gets a message naming the likely mistake.
    """
    for name, hessian, gradient in _cases():
        calls = 0

        def hvp(v: torch.Tensor, hessian: torch.Tensor = hessian) -> torch.Tensor:
            nonlocal calls
            calls += 1
            if not isinstance(v, torch.Tensor) or tuple(v.shape) != (hessian.shape[0],):
                raise ValueError(f"hvp takes a flat tensor of shape ({hessian.shape[0]},), "
                                 f"got {type(v).__name__} {tuple(getattr(v, 'shape', ()))}")
            return hessian @ v.to(hessian.dtype)

        given = gradient.clone()
        try:
            result = batch_ratio(given, hvp)
        except NotImplementedError:
            return _fail("not written yet: replace the `raise NotImplementedError` line.")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return _fail(f"on {name} it raised {type(error).__name__}: {error}")
        message = _diagnose(result, hessian, gradient, given, calls)
        if message is not None:
            return _fail(f"on {name}: {message}")
    zero = torch.zeros(8, dtype=torch.float64)
    try:
        at_zero = float(batch_ratio(zero, lambda v: v))
    except ZeroDivisionError:
        return _fail("with a zero gradient it raised ZeroDivisionError: the ratio is undefined "
                      "there — return float('nan') (torch's 0/0 already gives nan).")
    except Exception as error:  # noqa: BLE001
        return _fail(f"with a zero gradient it raised {type(error).__name__}: {error}; return "
                     "float('nan') there.")
    if not math.isnan(at_zero):
        return _fail(f"with a zero gradient it returned {at_zero:g}: the curvature along no "
                     "direction is undefined — return float('nan'), as edutools does.")
    return ExerciseFeedback(EXERCISE, True,
                            "correct: gᵀHg/‖g‖² is the curvature of the batch loss along its own "
                            "step direction, one HVP per batch; it does not depend on ‖g‖ and "
                            "can be negative.")


def _fail(message: str) -> ExerciseFeedback:
    return ExerciseFeedback(EXERCISE, False, message)


def _diagnose(result: object, hessian: torch.Tensor, gradient: torch.Tensor,
              given: torch.Tensor, calls: int) -> str | None:
    """None when the result is right, else a sentence naming the mistake."""
    g = gradient
    hg = hessian @ g
    squared = float(g @ g)
    curvature = float(g @ hg)
    expected = curvature / squared
    if not torch.equal(given, gradient):
        return ("your function changed the gradient in place (e.g. `gradient /= …`); work on a "
                "copy: the caller still needs g.")
    if calls == 0:
        return "hvp was never called: H_B·g_B comes from one call, hvp(gradient)."
    if isinstance(result, torch.Tensor) and result.numel() > 1:
        return (f"it returned a tensor of shape {tuple(result.shape)}: that is H·g, a vector. "
                "The curvature along g is the number gᵀ(Hg)/‖g‖²: take the dot product with g.")
    try:
        value = float(result)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        return f"return a number (a float), got {type(result).__name__}."
    if _close(value, expected):
        return None
    diagnoses = [
        (curvature, "that is gᵀHg: divide by ‖g‖² = gᵀg, so that the size of g drops out"),
        (curvature / math.sqrt(squared),
         "that is gᵀHg/‖g‖: divide by ‖g‖² (= gᵀg), not by ‖g‖ — the ratio must not change "
         "when g is doubled"),
        (float(torch.linalg.vector_norm(hg)) / math.sqrt(squared),
         "that is ‖Hg‖/‖g‖, how much H stretches g, not the curvature along g: take the dot "
         "product gᵀ(Hg) instead of a norm (it keeps the sign, too)"),
        (float(torch.linalg.vector_norm(hg)) / squared,
         "that is ‖Hg‖/‖g‖²: use the dot product gᵀ(Hg), not the norm of Hg"),
        (abs(expected), "that is |gᵀHg|/‖g‖²: keep the sign — along negative curvature the "
                        "ratio is negative"),
        (-expected, "right size, wrong sign: the ratio is +gᵀHg/‖g‖² (positive where the batch "
                    "loss curves up along g)"),
        (float(hg @ hg) / squared, "that is ‖Hg‖²/‖g‖² = gᵀH²g/‖g‖²: one H too many — use "
                                   "gᵀ(Hg)"),
    ]
    for wrong, message in diagnoses:
        if _close(value, wrong) and not _close(wrong, expected):
            return f"you returned {value:.6g}; {message}."
    return f"you returned {value:.6g}, expected gᵀHg/‖g‖² = {expected:.6g}."


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12)
