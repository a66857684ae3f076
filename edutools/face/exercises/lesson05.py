"""Exercise checks of lesson 05 (measuring sharpness): power iteration, with feedback.

Face layer, in the pattern of :mod:`edutools.face.exercises`: :func:`check_power_iteration` runs the
learner's function on symmetric matrices whose spectrum is known and returns an
:class:`~edutools.face.exercises.ExerciseFeedback` that says *what* is wrong.

The exercise's contract: ``power_iteration(hvp_fn, v0, num_iters) -> (eigenvalue, eigenvector)``

* ``hvp_fn(v)`` returns H·v for a flat torch vector ``v`` of shape ``(n,)`` (one Hessian-vector
  product per call);
* ``v0`` is the start vector, shape ``(n,)`` (not necessarily of unit norm; do not modify it);
* ``num_iters`` is the number of iterations (one HVP each);
* the result is λ_max — the *largest* (most positive) eigenvalue — as a float, and a unit
  eigenvector of shape ``(n,)``.

Plain power iteration converges to the eigenvalue of largest *magnitude*. A Hessian away from a
minimum can have a negative eigenvalue larger in magnitude than λ_max; then one more run on the
shifted operator H − σI with σ = that negative eigenvalue (all eigenvalues of H − σI are ≥ 0, the
largest is λ_max − σ) finds λ_max. The check includes such a spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from edutools.face.exercises import ExerciseFeedback

PowerIteration = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, int], object]

EXERCISE = "power iteration"
#: Relative accuracy asked of eigenvalues, and of |cos| between returned and true eigenvectors.
EIGENVALUE_RTOL = 1e-4
ALIGNMENT_TOL = 1e-4
NORM_TOL = 1e-6

SHIFT_TRICK = (
    "Shift trick: if the first run gives a negative eigenvalue σ, run again on "
    "`lambda v: hvp_fn(v) - σ * v` (the operator H − σI, whose eigenvalues are all ≥ 0) and "
    "add σ back to the eigenvalue it finds."
)

__all__ = ["EigenProblem", "check_power_iteration", "make_eigenproblem"]


@dataclass(frozen=True, eq=False)
class EigenProblem:
    """A symmetric matrix with a known spectrum, the test bench of :func:`check_power_iteration`.

    Attributes:
        matrix: shape ``(n, n)``, float64, ``Q diag(eigenvalues) Qᵀ`` for a random orthogonal Q.
        eigenvalues: shape ``(n,)``, descending.
        eigenvectors: shape ``(n, n)``; column i is the unit eigenvector of ``eigenvalues[i]``.
    """

    matrix: torch.Tensor
    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor

    @property
    def lambda_max(self) -> float:
        """The largest (most positive) eigenvalue."""
        return float(self.eigenvalues[0])

    @property
    def dominant_index(self) -> int:
        """Index of the eigenvalue of largest magnitude (where plain power iteration goes)."""
        return int(torch.argmax(self.eigenvalues.abs()))

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H·v for a flat float tensor of shape ``(n,)`` (the check's ``hvp_fn``)."""
        n = self.matrix.shape[0]
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"hvp_fn takes a torch tensor of shape ({n},), got {type(v).__name__}")
        if tuple(v.shape) != (n,):
            raise ValueError(f"hvp_fn takes a flat vector of shape ({n},), got {tuple(v.shape)}")
        return self.matrix.to(v.dtype) @ v


def make_eigenproblem(eigenvalues: Sequence[float], *, seed: int = 0) -> EigenProblem:
    """Build ``Q diag(eigenvalues) Qᵀ`` with Q a seeded random orthogonal matrix (float64)."""
    values = torch.sort(torch.as_tensor(eigenvalues, dtype=torch.float64), descending=True).values
    if values.ndim != 1 or len(values) < 2 or not torch.isfinite(values).all():
        raise ValueError(f"eigenvalues must be at least two finite numbers, got {eigenvalues}")
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(len(values), len(values), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r))  # a unique, properly random orthogonal matrix
    matrix = q @ torch.diag(values) @ q.T
    return EigenProblem(matrix=0.5 * (matrix + matrix.T), eigenvalues=values, eigenvectors=q)


@dataclass(frozen=True)
class _Case:
    name: str
    problem: EigenProblem
    v0: torch.Tensor
    num_iters: int


def _cases() -> list[_Case]:
    generator = torch.Generator().manual_seed(1)
    positive = make_eigenproblem([10, 6, 4, 3, 2, 1.5, 1, 0.5, 0.2, 0.1, -0.5, -1], seed=2)
    negative = make_eigenproblem([5, 2, 1, 0.5, 0.2, 0, -0.1, -0.5, -1, -2, -4, -10], seed=3)
    n = positive.matrix.shape[0]
    return [
        _Case("a spectrum whose largest eigenvalue, 10, is also the largest in magnitude",
              positive, torch.randn(n, generator=generator, dtype=torch.float64), 200),
        _Case("a start vector that already is the top eigenvector (a perfect warm start)",
              positive, positive.eigenvectors[:, 0].clone(), 1),
        _Case("a spectrum with λ_max = 5 and a negative eigenvalue −10 (a saddle-like Hessian)",
              negative, torch.randn(n, generator=generator, dtype=torch.float64), 200),
    ]


def check_power_iteration(power_iteration: PowerIteration) -> ExerciseFeedback:
    """Check a learner's ``power_iteration(hvp_fn, v0, num_iters) -> (eigenvalue, eigenvector)``.

    See the module docstring for the contract. Three cases: a positive-dominant spectrum from a
    random start (200 iterations), a warm start at the exact top eigenvector (1 iteration: a
    function that ignores ``v0`` fails it), and a spectrum whose largest-magnitude eigenvalue is
    negative (200 iterations per run; plain power iteration returns −10 there instead of 5).
    """
    hvps_used = []
    for case in _cases():
        problem = case.problem
        calls = 0

        def hvp_fn(v: torch.Tensor, problem: EigenProblem = problem) -> torch.Tensor:
            nonlocal calls
            calls += 1
            return problem.hvp(v)

        v0 = case.v0.clone()
        try:
            result = power_iteration(hvp_fn, v0, case.num_iters)
        except NotImplementedError:
            return _fail("not written yet: replace the `raise NotImplementedError` line.")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return _fail(f"on {case.name}, calling it with num_iters={case.num_iters} raised "
                         f"{type(error).__name__}: {error}")
        message = _diagnose(case, result, v0, calls)
        if message is not None:
            return _fail(f"on {case.name}: {message}")
        hvps_used.append(calls)
    note = ""
    if hvps_used[0] > _careful_budget(200):
        note = (f" Note: you spent {hvps_used[0]} HVPs for 200 iterations; one per iteration "
                "suffices (reuse w = H·v for the Rayleigh quotient and for the next vector).")
    return ExerciseFeedback(
        EXERCISE, True,
        f"correct: λ_max = 10 with {hvps_used[0]} HVPs; from a perfect warm start in "
        f"{hvps_used[1]} HVP(s); and λ_max = 5, not −10, when a negative eigenvalue dominates "
        f"({hvps_used[2]} HVPs).{note}")


def _careful_budget(num_iters: int) -> int:
    """HVPs a careful implementation spends: one per iteration plus a final Rayleigh quotient."""
    return num_iters + 1


def _fail(message: str) -> ExerciseFeedback:
    return ExerciseFeedback(EXERCISE, False, message)


def _diagnose(case: _Case, result: object, v0_after: torch.Tensor, calls: int) -> str | None:
    """None when the case passes, else a sentence saying what is wrong."""
    read = _read_result(case, result, v0_after, calls)
    if isinstance(read, str):
        return read
    eigenvalue, vector = read
    norm = float(torch.linalg.vector_norm(vector))
    if norm == 0:
        return "the eigenvector is all zeros."
    unit = vector / norm
    problem = case.problem
    message = _diagnose_dominant(problem, eigenvalue, unit)
    if message is not None:
        return message
    if abs(float(unit @ problem.eigenvectors[:, 0])) >= 1 - ALIGNMENT_TOL:
        return _diagnose_aligned(case, eigenvalue, unit, norm)
    return _diagnose_wrong_vector(case, eigenvalue, unit)


def _read_result(case: _Case, result: object, v0_after: torch.Tensor,
                 calls: int) -> str | tuple[float, torch.Tensor]:
    """The returned (eigenvalue, eigenvector) as (float, float64 tensor), or what is wrong with
    its form, the start vector or the HVP budget."""
    n = case.problem.matrix.shape[0]
    if calls == 0:
        return "hvp_fn was never called: every iteration needs one product w = hvp_fn(v)."
    if result is None:
        return "it returned None: end with `return eigenvalue, v`."
    if not isinstance(result, tuple | list) or len(result) != 2:
        return f"return a pair `(eigenvalue, eigenvector)`, got {_describe(result)}."
    raw_value, raw_vector = result
    try:
        eigenvalue = float(raw_value)
    except (TypeError, ValueError, RuntimeError):
        return (f"the eigenvalue must be a number (a float), got {_describe(raw_value)}; the "
                "order is `(eigenvalue, eigenvector)`.")
    try:
        vector = torch.as_tensor(raw_vector).detach().to("cpu", torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"the eigenvector must be a tensor of shape ({n},), got {_describe(raw_vector)}."
    if tuple(vector.shape) != (n,):
        return f"the eigenvector must be a flat tensor of shape ({n},), got {tuple(vector.shape)}."
    if not math.isfinite(eigenvalue) or not torch.isfinite(vector).all():
        return ("the result contains NaN or inf: did you divide by a zero norm, or let the vector "
                "grow without normalizing it each iteration?")
    if not torch.equal(v0_after, case.v0):
        return ("your function changed v0 in place (e.g. `v0 /= v0.norm()`); work on a copy "
                "(`v = v0 / v0.norm()`): the caller reuses v0, e.g. for warm starts.")
    if calls > 4 * _careful_budget(case.num_iters):
        return (f"it called hvp_fn {calls} times for num_iters={case.num_iters}; one HVP per "
                "iteration, in at most two runs (the second for the shift), is the budget — "
                "HVPs are the cost we count.")
    return eigenvalue, vector


def _diagnose_dominant(problem: EigenProblem, eigenvalue: float,
                       unit: torch.Tensor) -> str | None:
    """The message when the answer is the eigenvalue of largest magnitude, not λ_max."""
    dominant = problem.dominant_index
    if dominant == 0:
        return None
    dominant_value = float(problem.eigenvalues[dominant])
    aligned_dominant = abs(float(unit @ problem.eigenvectors[:, dominant])) >= 1 - ALIGNMENT_TOL
    if not (aligned_dominant or _close(eigenvalue, dominant_value)):
        return None
    sign = ""
    if _close(eigenvalue, abs(dominant_value)):
        sign = (" Your eigenvalue is even +" + f"{abs(dominant_value):g}: ‖Hv‖ loses the "
                "sign; use the Rayleigh quotient vᵀ(Hv).")
    return (f"you found {dominant_value:g}, the eigenvalue of largest *magnitude* — that "
            f"is where plain power iteration goes — but λ_max = {problem.lambda_max:g}. Hessians "
            f"away from a minimum (early training, saddles) can have such negative "
            f"eigenvalues.{sign} {SHIFT_TRICK}")


def _diagnose_aligned(case: _Case, eigenvalue: float, unit: torch.Tensor,
                      norm: float) -> str | None:
    """The vector points along the top eigenvector: None if the rest is right too."""
    problem, H, lam = case.problem, case.problem.matrix, case.problem.lambda_max
    dominant = problem.dominant_index
    if abs(norm - 1) > NORM_TOL:
        extra = ""
        if _close(eigenvalue, lam * norm**2):
            extra = " Your eigenvalue vᵀHv also carries that factor ‖v‖²."
        return (f"the eigenvector points the right way but has norm {norm:.4g}, not 1: "
                f"divide by its norm (v ← w/‖w‖) every iteration and return the unit "
                f"vector.{extra}")
    if _close(eigenvalue, lam):
        return None
    start = case.v0 / torch.linalg.vector_norm(case.v0)
    if _close(eigenvalue, float(start @ H @ start)):
        return ("the vector is right but the eigenvalue is the Rayleigh quotient of the "
                "*start* vector v0: compute λ = vᵀ(Hv) for the final v (update it inside "
                "the loop).")
    if _close(eigenvalue, lam**2):
        return (f"the vector is right but {eigenvalue:g} = λ_max²: that is ‖Hv‖² or vᵀH²v; "
                "the Rayleigh quotient is vᵀ(Hv) for a unit v.")
    if dominant != 0 and _close(eigenvalue, lam - float(problem.eigenvalues[dominant])):
        return (f"the vector is right but you returned {eigenvalue:g} = λ_max − σ, the top "
                f"eigenvalue of the *shifted* operator: add the shift σ back.")
    return (f"the vector is right but the eigenvalue {eigenvalue:g} is not its Rayleigh "
            f"quotient vᵀHv = {float(unit @ H @ unit):g} (expected λ_max = {lam:g}).")


def _diagnose_wrong_vector(case: _Case, eigenvalue: float, unit: torch.Tensor) -> str:
    """The vector is not the top eigenvector: which mistake it looks like."""
    H, lam = case.problem.matrix, case.problem.lambda_max
    rayleigh = float(unit @ H @ unit)
    start = case.v0 / torch.linalg.vector_norm(case.v0)
    if abs(float(unit @ start)) >= 1 - 1e-12:
        return ("you returned the start vector unchanged: inside the loop set w = hvp_fn(v), "
                "then v ← w/‖w‖.")
    residual = float(torch.linalg.vector_norm(H @ unit - rayleigh * unit))
    if residual <= 1e-6 * max(abs(lam), 1.0):
        return (f"your vector is an eigenvector, but of {rayleigh:g}, not of λ_max = {lam:g}. "
                "Start from v0 and multiply by H (not by its inverse, not with deflation).")
    if case.num_iters == 1:
        return ("started at the exact top eigenvector with num_iters=1, the result is not that "
                "eigenvector: start from the v0 you are given (that is what makes warm starts "
                "work) and return the vector after the iteration.")
    return (f"after {case.num_iters} iterations the vector is not an eigenvector yet "
            f"(‖Hv − λv‖ = {residual:.3g} for a unit v; expected λ_max = {lam:g}, you returned "
            f"{eigenvalue:g}). Does the loop run num_iters times and set v ← Hv/‖Hv‖ each time?")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=EIGENVALUE_RTOL, abs_tol=1e-12)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"
