"""Lesson 03's exercises: heavy ball's (and Nesterov's) edge from the characteristic polynomial;
Polyak's critically damped setting (:func:`check_polyak_setting`); the mean-square edge with a
noisy curvature (:func:`check_mean_square_lr`).

The contract: ``stable_edge(lr, momentum, nesterov=False) -> float``, the largest curvature λ of
a quadratic direction f(θ) = ½λθ² on which momentum with step size ``lr`` = η and momentum β
(PyTorch convention, ``torch.optim.SGD``) still converges:

* heavy ball: θ_{t+1} = (1+β−ηλ)θ_t − βθ_{t−1}; characteristic polynomial
  z² − (1+β−ηλ)z + β; a root crosses the unit circle at z = −1 when ηλ = 2(1+β);
* Nesterov (``nesterov=True``): θ_{t+1} = (1+β)(1−ηλ)θ_t − β(1−ηλ)θ_{t−1}; at z = −1,
  ηλ = (2+2β)/(1+2β).

:func:`check_stable_edge` compares the learner's edges with these, names the usual confusions
(GD's 2/η, the small-batch plateau 2(1−β)/η, 2/(η(1−β)), ηλ instead of λ, Nesterov's edge for
heavy ball and back), and runs ``torch.optim.SGD`` just inside and outside the learner's edge.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from edutools.face.exercises.core import ExerciseFeedback
from edutools.ground.theory.momentum_dynamics import (
    mean_square_edge,
    mean_square_radius,
    polyak_heavy_ball,
    worst_rate,
)
from edutools.ground.theory.quadratic import run_quadratic

EXERCISE = "the edge of heavy ball and Nesterov"
RTOL = 1e-6
CASES = ((0.3, 0.5), (0.05, 0.9), (0.1, 0.0), (2.0, 0.7))

StableEdge = Callable[..., object]

__all__ = ["check_mean_square_lr", "check_polyak_setting", "check_stable_edge"]


def _heavy_ball(lr: float, momentum: float) -> float:
    return 2 * (1 + momentum) / lr


def _nesterov(lr: float, momentum: float) -> float:
    return (2 + 2 * momentum) / (lr * (1 + 2 * momentum))


def check_stable_edge(stable_edge: StableEdge) -> ExerciseFeedback:
    """Check a learner's ``stable_edge(lr, momentum, nesterov=False)`` (see the module)."""
    for nesterov in (False, True):
        for lr, momentum in CASES:
            if nesterov and momentum == 0:
                continue  # torch needs momentum > 0 for Nesterov
            try:
                result = stable_edge(lr, momentum, nesterov=nesterov)
            except NotImplementedError:
                return _fail("not written yet: replace the `raise NotImplementedError` line.")
            except TypeError as error:
                return _fail(f"calling stable_edge({lr}, {momentum}, nesterov={nesterov}) raised "
                             f"TypeError: {error}. The signature is "
                             "`stable_edge(lr, momentum, nesterov=False)`.")
            except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
                return _fail(f"stable_edge({lr}, {momentum}, nesterov={nesterov}) raised "
                             f"{type(error).__name__}: {error}")
            message = _diagnose(result, lr, momentum, nesterov)
            if message is not None:
                rule = "Nesterov" if nesterov else "heavy ball"
                return _fail(f"{rule} with η = {lr}, β = {momentum}: {message}")
    return ExerciseFeedback(EXERCISE, True,
                            "correct: heavy ball is stable up to λ = 2(1+β)/η, Nesterov up to "
                            "(2+2β)/(η(1+2β)) — in both a root of the characteristic polynomial "
                            "leaves the unit circle through z = −1, and torch.optim.SGD agrees.")


def _fail(message: str) -> ExerciseFeedback:
    return ExerciseFeedback(EXERCISE, False, message)


def _diagnose(result: object, lr: float, momentum: float, nesterov: bool) -> str | None:
    """None when the edge is right, else a sentence naming the mistake."""
    try:
        value = float(result)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"return a number (the curvature λ at the edge), got {type(result).__name__}."
    expected = (_nesterov if nesterov else _heavy_ball)(lr, momentum)
    if _close(value, expected):
        return None
    candidates = [
        (_heavy_ball(lr, momentum) if nesterov else _nesterov(lr, momentum),
         "that is Nesterov's edge (2+2β)/(η(1+2β)) — heavy ball's polynomial is "
         "z² − (1+β−ηλ)z + β" if not nesterov else
         "that is heavy ball's edge 2(1+β)/η, but nesterov=True: Nesterov takes the gradient "
         "at the look-ahead point, θ_{t+1} = (1+β)(1−ηλ)θ_t − β(1−ηλ)θ_{t−1}; set z = −1 in "
         "its characteristic polynomial"),
        (2 / lr, "that is plain GD's edge 2/η: momentum moves it (put z = −1 into the "
                 "polynomial, β included)"),
        (2 * (1 - momentum) / lr, "that is 2(1−β)/η, the small-batch plateau of lesson 03's "
                                  "networks, not the quadratic's edge — on a quadratic "
                                  "momentum *widens* heavy ball's stable range"),
        (2 / (lr * (1 - momentum)), "that is 2/(η(1−β)): the effective step η/(1−β) gives "
                                    "2/η_eff = 2(1−β)/η, and neither is the edge — solve "
                                    "p(−1) = 0 for ηλ"),
        (expected * lr, "that is the edge of ηλ, a dimensionless number; the question asks for "
                        "the curvature λ itself: divide by η"),
        (expected / lr, "you divided by η twice: λ_edge = (ηλ)_edge / η"),
        (expected * lr * lr, "you multiplied by η where you should divide: "
                             "λ_edge = (ηλ)_edge / η"),
    ]
    for wrong, message in candidates:
        if _close(value, wrong) and not _close(wrong, expected):
            return f"you returned {value:.6g}; {message}."
    return _by_simulation(value, lr, momentum, nesterov, expected)


def _by_simulation(value: float, lr: float, momentum: float, nesterov: bool,
                   expected: float) -> str:
    """Run torch.optim.SGD 2% inside and outside the learner's edge and say which side fails."""
    if not math.isfinite(value) or value <= 0:
        return f"you returned {value:g}; the edge is a positive curvature."
    rule = dict(lr=lr, momentum=momentum, nesterov=nesterov, num_steps=3000)
    inside = run_quadratic([0.98 * value], **rule)
    outside = run_quadratic([1.02 * value], **rule)
    if inside.diverged:
        return (f"you returned {value:.6g}, but torch.optim.SGD already diverges at 0.98× that "
                f"curvature: your edge is too high (expected {expected:.6g}).")
    if not outside.diverged:
        return (f"you returned {value:.6g}, but torch.optim.SGD still converges at 1.02× that "
                f"curvature: your edge is too low (expected {expected:.6g}).")
    return f"you returned {value:.6g}, expected {expected:.6g}."


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12)


# ---- Derive-then-code exercises: Polyak's setting and the mean-square edge -------------------

POLYAK_EXERCISE = "Polyak's heavy ball (critical damping)"
MEAN_SQUARE_EXERCISE = "the mean-square edge with a noisy curvature"
INTERVALS = ((0.01, 1.0), (1.0, 30.0), (0.5, 2.0))
NOISE_CASES = ((0.5, 1.0, 0.5), (0.9, 2.0, 3.0), (0.0, 1.0, 1.0), (0.9, 1.0, 0.0))


def _call(function: Callable[..., object], exercise: str, *args: float
          ) -> tuple[object, ExerciseFeedback | None]:
    try:
        return function(*args), None
    except NotImplementedError:
        return None, ExerciseFeedback(exercise, False, "not written yet: replace the "
                                      "`raise NotImplementedError` line.")
    except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
        return None, ExerciseFeedback(exercise, False, f"calling it with {args} raised "
                                      f"{type(error).__name__}: {error}")


def check_polyak_setting(polyak_setting: Callable[[float, float], object]) -> ExerciseFeedback:
    """Check ``polyak_setting(smallest, largest) -> (lr, momentum)``: heavy ball's best fixed
    setting on curvatures [μ, L], η = 4/(√L+√μ)², β = ((√κ−1)/(√κ+1))²."""
    fail = functools.partial(ExerciseFeedback, POLYAK_EXERCISE, False)
    for mu, big_l in INTERVALS:
        result, error = _call(polyak_setting, POLYAK_EXERCISE, mu, big_l)
        if error is not None:
            return error
        try:
            lr, momentum = (float(value) for value in result)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            return fail(f"return a pair (lr, momentum), got {result!r}.")
        best = polyak_heavy_ball(mu, big_l)
        if _close(lr, best.lr) and _close(momentum, best.momentum):
            continue
        where = f"on [μ, L] = [{mu}, {big_l}] you returned η = {lr:.6g}, β = {momentum:.6g}"
        root = math.sqrt(best.momentum)
        hints = [
            (_close(lr, 2 / (big_l + mu)), "η = 2/(L+μ) is GD's best step; with momentum "
             "the complex roots have modulus √β, so choose η and β to put both ends of the "
             "spectrum on the edge of the complex region, (1 ± √β)² = ηλ"),
            (_close(momentum, root), "β is the square of the rate: the roots' modulus is √β, "
             "so β* = ((√κ−1)/(√κ+1))², not (√κ−1)/(√κ+1)"),
            (_close(momentum, ((big_l / mu - 1) / (big_l / mu + 1)) ** 2), "you used κ where "
             "√κ belongs: β* = ((√κ−1)/(√κ+1))²"),
            (_close(lr, 4 / (big_l + mu)), "η = 4/(√L+√μ)², a square of the sum of square "
             "roots, not 4/(L+μ)"),
        ]
        for wrong, hint in hints:
            if wrong:
                return fail(f"{where}: {hint}.")
        rate = float(worst_rate(lr, momentum, mu, big_l))
        if not rate < 1:
            return fail(f"{where}: heavy ball diverges there (ηL = {lr * big_l:.3g} is past "
                        f"the edge 2(1+β) = {2 * (1 + momentum):.3g}, or β ≥ 1).")
        return fail(f"{where}: its worst contraction factor over [μ, L] is {rate:.4f} per step, "
                    f"Polyak's is {best.rate:.4f}. Make both ends critically damped: "
                    "ημ = (1−√β)², ηL = (1+√β)².")
    return ExerciseFeedback(POLYAK_EXERCISE, True,
                            "correct: η = 4/(√L+√μ)², β = ((√κ−1)/(√κ+1))², rate "
                            "(√κ−1)/(√κ+1) per step against GD's (κ−1)/(κ+1).")


def check_mean_square_lr(mean_square_lr: Callable[[float, float, float], object]
                         ) -> ExerciseFeedback:
    """Check ``mean_square_lr(momentum, mean_curvature, curvature_variance) -> float``: the
    largest η at which heavy ball with a curvature drawn afresh each step (mean m, variance σ²)
    is mean-square stable, 2/(m/(1+β) + σ²/((1−β)m))."""
    fail = functools.partial(ExerciseFeedback, MEAN_SQUARE_EXERCISE, False)
    for beta, mean, variance in NOISE_CASES:
        result, error = _call(mean_square_lr, MEAN_SQUARE_EXERCISE, beta, mean, variance)
        if error is not None:
            return error
        try:
            value = float(result)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return fail(f"return a number (the largest stable η), got {result!r}.")
        expected = mean_square_edge(beta, mean, variance)
        if _close(value, expected):
            continue
        where = f"β = {beta}, m = {mean}, σ² = {variance}: you returned {value:.6g}"
        hints = [
            (2 * (1 + beta) / mean, "that is the noise-free edge 2(1+β)/m: the variance adds "
             "η²σ² to E[A²] in the first row of the second-moment map"),
            (2 * mean / (mean**2 + variance), "that is plain SGD's bound η·E[h²]/E[h] < 2, "
             "without momentum: keep β in the recursion"),
            (2 / (mean / (1 - beta) + variance / ((1 + beta) * mean)), "(1+β) and (1−β) are "
             "swapped: the noise-free part must give the full-batch edge 2(1+β)/m"),
            (2 / (mean / (1 + beta) + math.sqrt(variance) / ((1 - beta) * mean)),
             "you used the standard deviation σ where the variance σ² belongs"),
        ]
        for wrong, hint in hints:
            if _close(value, wrong) and not _close(wrong, expected):
                return fail(f"{where}; {hint}.")
        radius = mean_square_radius(value, beta, mean, variance) if value > 0 else math.nan
        side = "too high: E[x²] already grows there" if radius >= 1 else "too low: E[x²] " \
            "still shrinks at slightly larger η"
        return fail(f"{where}, expected {expected:.6g}; the exact second-moment recursion says "
                    f"your η is {side} (its spectral radius is {radius:.4f}). Set the largest "
                    "eigenvalue of the 3×3 map to 1 and solve for η.")
    return ExerciseFeedback(MEAN_SQUARE_EXERCISE, True,
                            "correct: 2/η = m/(1+β) + σ²/((1−β)m) — no noise gives the full-batch "
                            "edge 2(1+β)/m, dominant noise bounds η·E[h²]/E[h] by 2(1−β).")
