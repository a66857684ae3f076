"""Curvature of a model's training loss: Hessian-vector products and the measurements built on them.

Layout (operators apart from algorithms, as in hessian-eigenthings v1): ``operators/`` holds the
flat parameter layout (``params``) and the Hessian operator (``hessian``); ``algorithms/`` the
eigen-solvers (``eigen``, on the Krylov machinery in ``lanczos``), trace and density
(``density``), batch sharpness (``batch``) and perturbation measures (``perturbation``);
``meters`` the training-loop callbacks. Everything public is importable from
``edutools.engine.sharpness`` (alias ``edutools.engine.sharpness``).

* **Parameter helpers** — the flat parameter vector is made of the parameters with
  ``requires_grad=True``, in ``model.named_parameters()`` order. Every vector this module takes or
  returns (``v``, ``v0``, eigenvectors, gradients) is such a flat vector of length ``num_params``.
* **Operator** — :class:`HessianOperator` applies H, the Hessian of the training loss L(θ) with
  respect to that vector, to vectors (one HVP per call, counted in ``num_hvps``); :func:`hvp` is
  the one-shot form; :meth:`HessianOperator.to_scipy` wraps it for ``scipy.sparse.linalg``.
* **Algorithms** — :func:`top_eigenvalues` (Lanczos; :func:`operator_top_eigenvalues` on an
  operator already built), :func:`power_iteration`, :func:`hessian_trace` (Hutchinson),
  :func:`spectral_density` (stochastic Lanczos quadrature), :func:`batch_sharpness`,
  :func:`exact_hessian`, :func:`eps_sharpness` (Keskar et al. 2017),
  :func:`perturbation_sharpness` (a poor estimate, kept as a contrast).
* **Meters** — :class:`LambdaMaxMeter`, :class:`BatchSharpnessMeter`: training-loop callbacks.

Conventions shared by every measurement:

* ``loss_fn(outputs, targets)`` returns a scalar tensor that is a *mean over samples* (the course
  MSE is ``0.5 · mean_over_samples ||f(x) − y||²``). Curvatures are in units of loss per
  (parameter unit)²; λ_max is compared with edges such as 2/η.
* The model is evaluated in **eval mode** (dropout off, batch-norm running statistics) inside every
  measurement: curvature is a property of the deterministic loss. The previous train/eval mode of
  every submodule is restored afterwards.
* Measurements never populate ``.grad`` (they use ``torch.autograd.grad``) and leave the parameters
  bit-for-bit as they found them (perturbing measurements restore a saved copy).
* Vectors live on the model's device and dtype; nothing here assumes a CPU.
"""

from edutools.engine.sharpness.algorithms.batch import BatchSharpnessResult, batch_sharpness
from edutools.engine.sharpness.algorithms.density import (
    DensityResult,
    TraceResult,
    hessian_trace,
    spectral_density,
)
from edutools.engine.sharpness.algorithms.eigen import (
    EigenResult,
    lambda_max,
    operator_top_eigenvalues,
    power_iteration,
    top_eigenvalues,
)
from edutools.engine.sharpness.algorithms.perturbation import (
    EpsSharpnessResult,
    PerturbationSharpnessResult,
    eps_sharpness,
    perturbation_sharpness,
)
from edutools.engine.sharpness.meters import BatchSharpnessMeter, LambdaMaxMeter
from edutools.engine.sharpness.operators.hessian import (
    DEFAULT_HVP_METHOD,
    EXACT_HESSIAN_MAX_PARAMS,
    HVP_METHODS,
    HessianOperator,
    exact_hessian,
    hvp,
)
from edutools.engine.sharpness.operators.params import (
    evaluation_mode,
    flat_grad,
    flatten_params,
    preserved_parameters,
    set_flat_params,
    trainable_named_parameters,
    unflatten_params,
)
from edutools.ground.models import num_params

__all__ = [
    "BatchSharpnessMeter",
    "BatchSharpnessResult",
    "DEFAULT_HVP_METHOD",
    "DensityResult",
    "EXACT_HESSIAN_MAX_PARAMS",
    "EigenResult",
    "EpsSharpnessResult",
    "HVP_METHODS",
    "HessianOperator",
    "LambdaMaxMeter",
    "PerturbationSharpnessResult",
    "TraceResult",
    "batch_sharpness",
    "eps_sharpness",
    "evaluation_mode",
    "exact_hessian",
    "flat_grad",
    "flatten_params",
    "hessian_trace",
    "hvp",
    "lambda_max",
    "num_params",
    "operator_top_eigenvalues",
    "perturbation_sharpness",
    "power_iteration",
    "preserved_parameters",
    "set_flat_params",
    "spectral_density",
    "top_eigenvalues",
    "trainable_named_parameters",
    "unflatten_params",
]
