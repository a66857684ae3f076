"""Jelassi & Li (2022): data where momentum generalizes better than plain gradient descent.

Each example is made of ``num_patches`` patches in R^d. One patch carries the *feature*:
``c·y·w*`` with a unit vector ``w*`` and the label y = ±1; the others are Gaussian noise
orthogonal to ``w*`` (standard deviation σ per coordinate). Most examples carry the feature at a
large margin c = 1, a few (``small_margin_fraction``) at a small margin c = α. The network is
one hidden layer of ``num_filters`` filters w_r with a cubic activation, summed over filters and
patches: ``f(X) = Σ_r Σ_p ⟨w_r, x_p⟩³``, trained on the logistic loss log(1 + exp(−y f)).

Both GD and GD with momentum fit the training set. The paper's point: GD fits the small-margin
examples by *memorizing their noise*, GD+M by *learning the feature* (its accumulated gradient
keeps pushing along w* after the large-margin examples are fitted), which shows on fresh
small-margin examples. :func:`feature_alignment` (max_r ⟨w_r, w*⟩) and
:func:`small_margin_accuracy` measure the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from edutools.engine.training import RunRecord, TrainResult, partial_watch, train
from edutools.ground.data import Dataset
from edutools.ground.device import get_device
from edutools.ground.theory.conventions import to_pytorch
from edutools.ground.validation import check_fraction, check_positive_int


@dataclass(frozen=True)
class PatchTask:
    """The data of one draw of the Jelassi–Li experiment.

    Attributes:
        data: an edutools :class:`~edutools.ground.data.Dataset`; inputs (n, num_patches, d) float,
            labels (n,) float ±1 (regression-style targets: the loss is the logistic loss).
            The validation split is the *test* set.
        feature: the unit feature vector w*, shape (d,).
        train_small_margin: bool (n_train,), which training examples carry the feature at α.
        test_small_margin: bool (n_test,), the same for the test set.
        alpha: the small margin α; sigma: the noise level σ.
    """

    data: Dataset
    feature: torch.Tensor
    train_small_margin: torch.Tensor
    test_small_margin: torch.Tensor
    alpha: float
    sigma: float


def _draw(rng: np.random.Generator, n: int, *, dim: int, num_patches: int, num_small: int,
          alpha: float, sigma: float, feature: np.ndarray) -> tuple[np.ndarray, ...]:
    labels = rng.choice([-1.0, 1.0], size=n)
    small = np.zeros(n, dtype=bool)
    small[rng.choice(n, size=num_small, replace=False)] = True
    margin = np.where(small, alpha, 1.0)
    noise = sigma * rng.standard_normal((n, num_patches, dim))
    noise -= (noise @ feature)[..., None] * feature  # orthogonal to w*
    X = noise
    position = rng.integers(0, num_patches, size=n)
    X[np.arange(n), position] = (margin * labels)[:, None] * feature
    return X, labels, small


def patch_task(*, dim: int = 500, num_patches: int = 2, num_train: int = 100,
               num_test: int = 2000, small_margin_fraction: float = 0.1, alpha: float = 0.1,
               sigma: float = 0.1, seed: int = 0,
               device: torch.device | str | None = None) -> PatchTask:
    """Draw a training and a test set of the Jelassi–Li patch data (defaults: COURSE.md's).

    Exactly ``round(small_margin_fraction · n)`` examples of each split have the small margin.
    ``w*`` is the first coordinate axis (the model is rotation invariant, so this loses nothing).
    """
    dim = check_positive_int(dim, name="dim")
    num_patches = check_positive_int(num_patches, name="num_patches")
    if num_patches < 2:
        raise ValueError(f"num_patches must be at least 2 (a feature and a noise patch), "
                         f"got {num_patches}")
    num_train = check_positive_int(num_train, name="num_train")
    num_test = check_positive_int(num_test, name="num_test")
    small_margin_fraction = check_fraction(small_margin_fraction, name="small_margin_fraction")
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha (small margin) must be a finite number > 0, got {alpha!r}")
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma (noise level) must be a finite number ≥ 0, got {sigma!r}")
    rng = np.random.default_rng(seed)
    feature = np.zeros(dim)
    feature[0] = 1.0
    splits = [_draw(rng, n, dim=dim, num_patches=num_patches,
                    num_small=int(round(small_margin_fraction * n)), alpha=alpha, sigma=sigma,
                    feature=feature) for n in (num_train, num_test)]
    device = torch.device(device) if device is not None else get_device()

    def tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype).to(device)

    (X_tr, y_tr, small_tr), (X_te, y_te, small_te) = splits
    data = Dataset(name=f"Jelassi–Li patches (d={dim}, α={alpha:g}, σ={sigma:g})",
                   X_train=tensor(X_tr), y_train=tensor(y_tr), X_val=tensor(X_te),
                   y_val=tensor(y_te), num_classes=None)
    return PatchTask(data=data, feature=tensor(feature),
                     train_small_margin=tensor(small_tr, torch.bool),
                     test_small_margin=tensor(small_te, torch.bool), alpha=float(alpha),
                     sigma=float(sigma))


class CubicPatchNet(nn.Module):
    """f(X) = Σ_r Σ_p ⟨w_r, x_p⟩³ with ``num_filters`` filters w_r ~ N(0, init_std² I).

    Input (n, num_patches, d); output (n,).
    """

    def __init__(self, dim: int, *, num_filters: int = 10, init_std: float = 0.01,
                 seed: int | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        weight = init_std * torch.randn(check_positive_int(num_filters, name="num_filters"),
                                        check_positive_int(dim, name="dim"), generator=generator)
        self.weight = nn.Parameter(weight.to(device) if device is not None else weight)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return (X @ self.weight.T).pow(3).sum(dim=(1, 2))


def logistic_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of log(1 + exp(−y·f)) over samples, labels y = ±1."""
    return F.softplus(-targets * outputs).mean()


def sign_accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples with sign(f(x)) = y (NaN for an empty set)."""
    if len(X) == 0:
        return float("nan")
    with torch.no_grad():
        return float((torch.sign(model(X)) == y).float().mean())


def small_margin_accuracy(model: nn.Module, task: PatchTask) -> float:
    """Test accuracy on the small-margin test examples only."""
    mask = task.test_small_margin
    return sign_accuracy(model, task.data.X_val[mask], task.data.y_val[mask])


def feature_alignment(model: CubicPatchNet, task: PatchTask) -> float:
    """max_r ⟨w_r, w*⟩: how far the best filter has moved along the feature."""
    with torch.no_grad():
        return float((model.weight @ task.feature).max())


@dataclass(frozen=True)
class PatchResult:
    """Outcome of one run of :func:`run_patches`.

    Attributes:
        lr, momentum: the PyTorch heavy-ball setting that was run.
        train_acc: training accuracy (1.0 = the training set is fitted).
        test_acc: accuracy on the whole test set.
        small_margin_test_acc: accuracy on the small-margin test examples.
        alignment: :func:`feature_alignment` at the end.
        training: the :class:`~edutools.engine.training.TrainResult`; its record has the columns
            ``alignment`` and ``small_margin_acc`` at every measurement.
    """

    lr: float
    momentum: float
    train_acc: float
    test_acc: float
    small_margin_test_acc: float
    alignment: float
    training: TrainResult


def run_patches(task: PatchTask, *, lr: float, momentum: float = 0.0, num_steps: int = 2000,
                num_filters: int = 10, init_std: float = 0.01, seed: int = 0,
                measure_every: int = 100, progress: bool | None = None,
                watch: Callable[[pd.DataFrame], None] | None = None) -> PatchResult:
    """Full-batch GD (``momentum`` = 0) or heavy ball (PyTorch convention) on ``task``.

    The averaged form of the paper with step α is ``lr = α(1−β)`` here
    (:func:`edutools.ground.theory.conventions.to_pytorch`). ``seed`` draws the initial filters.
    ``watch`` receives the record so far after every measurement (as in ``train``).
    """
    data = task.data
    model = CubicPatchNet(data.X_train.shape[-1], num_filters=num_filters, init_std=init_std,
                          seed=seed, device=data.device)

    def feature_meter(state: object) -> dict[str, float]:
        return {"alignment": feature_alignment(model, task),
                "small_margin_acc": small_margin_accuracy(model, task)}

    result = train(model, data, lr=lr, momentum=momentum, num_steps=num_steps,
                   loss_fn=logistic_loss, measure_every=measure_every, seed=seed,
                   callbacks=[feature_meter], progress=progress,
                   description=f"η={lr:g}, β={momentum:g}", watch=watch)
    return PatchResult(
        lr=lr, momentum=momentum,
        train_acc=sign_accuracy(model, data.X_train, data.y_train),
        test_acc=sign_accuracy(model, data.X_val, data.y_val),
        small_margin_test_acc=small_margin_accuracy(model, task),
        alignment=feature_alignment(model, task), training=result)


#: Momentum values γ of the averaged form (step α = 1) on the lesson's slider; 0 is plain GD.
SLIDER_GRID: dict[str, tuple[float, ...]] = {"momentum": (0.0, 0.5, 0.8, 0.9, 0.95)}


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class PatchCurve(RunRecord):
    """A :class:`PatchResult` reduced to numbers (picklable, no model), for figures and sliders:
    a :class:`~edutools.engine.training.record.RunRecord` whose ``record`` has ``alignment`` and
    ``small_margin_acc`` columns and whose ``config`` holds ``lr``, ``momentum`` (the PyTorch
    heavy-ball setting that was run), ``num_steps``, ``seed``, …

    Attributes:
        small_margin_test_acc, alignment: at the end (NaN in a partial result while training).
    """

    small_margin_test_acc: float = math.nan
    alignment: float = math.nan

    @property
    def lr(self) -> float:
        """PyTorch's step size η."""
        return self.setting("lr")

    @property
    def momentum(self) -> float:
        """Heavy-ball β."""
        return self.setting("momentum")

    @classmethod
    def from_result(cls, result: PatchResult) -> PatchCurve:
        """Keep the numbers of ``result``."""
        return cls.from_train(result.training, lr=result.lr, momentum=result.momentum,
                              small_margin_test_acc=result.small_margin_test_acc,
                              alignment=result.alignment)


def run_patch_momentum(*, momentum: float, seed: int = 0, num_steps: int = 2000,
                       measure_every: int = 20,
                       watch: Callable[[PatchCurve], None] | None = None) -> PatchCurve:
    """The paper's averaged form with step α = 1 and momentum γ = ``momentum`` on the default
    :func:`patch_task` drawn with ``seed`` (γ = 0: plain GD with η = 1). Every γ has the same
    effective step 1; PyTorch runs it as ``lr = 1 − γ``. The slider's run function."""
    setting = to_pytorch("averaged", 1.0, momentum)
    settings = dict(lr=setting.pytorch_lr, momentum=momentum, num_steps=num_steps, seed=seed,
                    measure_every=measure_every)
    result = run_patches(patch_task(seed=seed), lr=setting.pytorch_lr, momentum=momentum,
                         num_steps=num_steps, seed=seed, measure_every=measure_every,
                         watch=partial_watch(watch, settings, kind=PatchCurve))
    return PatchCurve.from_result(result)


@dataclass(frozen=True, eq=False)
class PatchComparison:
    """Several update rules on several data seeds.

    Attributes:
        table: one row per (rule, seed): ``rule``, ``seed``, ``train acc``,
            ``small-margin test acc``, ``test acc``, ``feature alignment``.
        runs: (rule, seed) → its :class:`PatchCurve` (the numbers of its :class:`PatchResult`).
    """

    table: pd.DataFrame
    runs: dict[tuple[str, int], PatchCurve]


def compare_patch_rules(rules: Mapping[str, Mapping[str, Any]], seeds: Sequence[int], *,
                        num_steps: int = 2000, measure_every: int = 20) -> PatchComparison:
    """Run every rule (name → ``run_patches`` keywords such as ``lr``, ``momentum``) on
    :func:`patch_task` drawn with each seed (the seed also draws the initial filters)."""
    runs, rows = {}, []
    for seed in seeds:
        task = patch_task(seed=seed)
        for name, rule in rules.items():
            result = run_patches(task, **rule, num_steps=num_steps, seed=seed,
                                 measure_every=measure_every)
            runs[(name, seed)] = PatchCurve.from_result(result)
            rows.append({"rule": name, "seed": seed, "train acc": result.train_acc,
                         "small-margin test acc": result.small_margin_test_acc,
                         "test acc": result.test_acc, "feature alignment": result.alignment})
    return PatchComparison(table=pd.DataFrame(rows), runs=runs)
