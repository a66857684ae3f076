"""Keskar's small-batch / large-batch comparison over many seeds at once (lesson 04).

The SB − LB gap in validation accuracy is a point or two, with a seed-to-seed spread as large as
the gap, so saying it is *there* takes 20 seeds or more, and run one by one (:mod:`.keskar`) 20
seeds cost minutes. Here every seed is one member of an *ensemble*: its own data
(``teacher_task(seed=s)``), its own initial weights (``mlp(widths, seed=s)``) and its own batch
order (the one :func:`~edutools.engine.training.train` draws for ``seed=s``), all stepped together
by batched matrix products — one forward and one backward pass per step for all seeds.

Each member follows :func:`.keskar.train_to_loss` — Adam on cross-entropy until the training
loss, checked every 125 steps (25 for a full batch), is ≤ the target — with the same arithmetic up
to round-off (batched matrix products add in another order), so a member's run is a statistically
equivalent, not a bit-identical, copy of the one-by-one run. A member that reaches the target
stops (its weights and Adam state are frozen) while the others go on.

Engine layer: nothing here draws.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.ground.data import Dataset
from edutools.ground.models import mlp
from edutools.ground.validation import check_lr, check_positive_int

__all__ = ["GapStatistics", "SeedGaps", "SeedRuns", "gap_statistics", "seed_gaps",
           "train_seeds_to_loss"]

#: Adam's defaults (torch.optim.Adam), as :func:`.keskar.train_to_loss` uses them.
BETAS = (0.9, 0.999)
EPS = 1e-8


@dataclass(frozen=True)
class SeedRuns:
    """The outcome of :func:`train_seeds_to_loss`, one entry per seed (arrays of shape (S,)).

    Attributes:
        seeds: the seeds, in order.
        batch_size: the mini-batch size B.
        steps: optimizer steps taken when the member stopped (the target reached, or the budget).
        reached: whether the member reached the target loss.
        train_loss, train_acc, val_acc: at the stop.
        peak_val_acc: the best validation accuracy over the checks (step 0 included).
        models: each member's network at its stop (an ``mlp`` like the one-by-one run's).
    """

    seeds: tuple[int, ...]
    batch_size: int
    steps: np.ndarray
    reached: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    val_acc: np.ndarray
    peak_val_acc: np.ndarray
    models: tuple[nn.Module, ...] = field(repr=False, default=())

    def table(self) -> pd.DataFrame:
        """One row per seed (index ``seed``) with every attribute above as a column."""
        return pd.DataFrame({"steps": self.steps, "reached": self.reached,
                             "train_loss": self.train_loss, "train_acc": self.train_acc,
                             "val_acc": self.val_acc, "peak_val_acc": self.peak_val_acc},
                            index=pd.Index(self.seeds, name="seed"))


class _Ensemble:
    """S copies of one :func:`~edutools.ground.models.mlp` as stacked weights, evaluated with
    batched matrix products (``torch.baddbmm``): member s sees only its own inputs, so the sum of
    the members' losses has each member's own gradient in its slice of the stacked weights."""

    def __init__(self, models: Sequence[nn.Sequential]) -> None:
        self.layers: list[nn.Module | tuple[torch.Tensor, torch.Tensor]] = []
        for index, module in enumerate(models[0]):
            if isinstance(module, nn.Linear):
                twins = [model[index] for model in models]
                weight = torch.stack([t.weight.detach() for t in twins]).transpose(1, 2)
                bias = torch.stack([t.bias.detach() for t in twins]).unsqueeze(1)
                self.layers.append((weight.contiguous().requires_grad_(),
                                    bias.requires_grad_()))
            elif isinstance(module, nn.Flatten | nn.Tanh | nn.ReLU | nn.Identity):
                self.layers.append(module)
            else:
                raise ValueError(f"the ensemble supports Linear layers and elementwise "
                                 f"activations, got {type(module).__name__}")
        self.params = [t for layer in self.layers if isinstance(layer, tuple) for t in layer]
        self._template = models[0]

    def member(self, row: int) -> nn.Module:
        """Member ``row`` (of the members still kept) as a network of its own."""
        model = copy.deepcopy(self._template)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        stacked = [layer for layer in self.layers if isinstance(layer, tuple)]
        with torch.no_grad():
            for linear, (weight, bias) in zip(linears, stacked, strict=True):
                linear.weight.copy_(weight[row].T)
                linear.bias.copy_(bias[row, 0])
        return model

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members ``rows`` (the others have stopped)."""
        self.layers = [(layer[0][rows].detach().requires_grad_(),
                        layer[1][rows].detach().requires_grad_())
                       if isinstance(layer, tuple) else layer for layer in self.layers]
        self.params = [t for layer in self.layers if isinstance(layer, tuple) for t in layer]

    def _forward(self, X: torch.Tensor) -> torch.Tensor:
        h = X
        for layer in self.layers:
            if isinstance(layer, tuple):
                h = torch.baddbmm(layer[1], h, layer[0])
            elif isinstance(layer, nn.Flatten):
                h = h.reshape(h.shape[0], h.shape[1], -1)
            else:
                h = layer(h)
        return h

    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs of every member on its own inputs: X (S, n, d) → (S, n, classes)."""
        with torch.no_grad():
            return self._forward(X)

    def gradients(self, X: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Each member's gradient of its own mean cross-entropy on (X[s], y[s]), stacked."""
        outputs = self._forward(X)
        losses = nn.functional.cross_entropy(outputs.transpose(1, 2), y, reduction="none")
        return list(torch.autograd.grad(losses.mean(1).sum(), self.params))


class _Adam:
    """``torch.optim.Adam``'s update (its single-tensor arithmetic) on stacked tensors."""

    def __init__(self, params: list[torch.Tensor], *, lr: float) -> None:
        self.lr = lr
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.count = 0

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members ``rows`` (the others have stopped)."""
        self.first = [m[rows] for m in self.first]
        self.second = [v[rows] for v in self.second]

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        self.count += 1  # every remaining member has taken the same number of steps
        beta1, beta2 = BETAS
        step_size = self.lr / (1 - beta1 ** self.count)
        correction2_sqrt = (1 - beta2 ** self.count) ** 0.5
        with torch.no_grad():
            for param, g, first, second in zip(params, grads, self.first, self.second,
                                               strict=True):
                first.lerp_(g, 1 - beta1)
                second.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                param.addcdiv_(first, (second.sqrt() / correction2_sqrt).add_(EPS),
                               value=-step_size)


def _stacked(datasets: Sequence[Dataset]) -> tuple[torch.Tensor, ...]:
    sizes = {d.num_train for d in datasets} | {len(d.X_val) for d in datasets}
    if len({d.num_train for d in datasets}) != 1 or len({len(d.X_val) for d in datasets}) != 1:
        raise ValueError(f"every seed's dataset must have the same sizes, got {sorted(sizes)}")
    return tuple(torch.stack([getattr(d, name) for d in datasets])
                 for name in ("X_train", "y_train", "X_val", "y_val"))


def _loss_and_accuracy(ensemble: _Ensemble, X: torch.Tensor,
                       y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outputs = ensemble.outputs(X)
    losses = nn.functional.cross_entropy(outputs.transpose(1, 2), y, reduction="none").mean(1)
    return losses, (outputs.argmax(dim=2) == y).float().mean(1)


def train_seeds_to_loss(make_data: Callable[[int], Dataset], widths: Sequence[int], *,
                        seeds: Sequence[int], batch_size: int | None, lr: float,
                        target_loss: float, max_steps: int) -> SeedRuns:
    """Adam on cross-entropy for every seed at once until each member's training loss is ≤
    ``target_loss`` (see the module docstring). ``make_data(seed)`` gives that seed's dataset;
    ``batch_size`` None = the whole training set."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    lr = check_lr(lr)
    max_steps = check_positive_int(max_steps, name="max_steps")
    datasets = [make_data(seed) for seed in seeds]
    X, y, X_val, y_val = _stacked(datasets)
    num_train = X.shape[1]
    batch_size = num_train if batch_size is None else check_positive_int(batch_size,
                                                                         name="batch_size")
    check_every = 25 if batch_size == num_train else 125
    ensemble = _Ensemble([mlp(list(widths), seed=seed, device=X.device) for seed in seeds])
    adam = _Adam(ensemble.params, lr=lr)
    orders = [torch.Generator().manual_seed(seed) for seed in seeds]
    size = len(seeds)
    alive = np.arange(size)  # the members still training, as rows of the original order
    steps = np.full(size, max_steps)
    final = {"train_loss": np.zeros(size), "train_acc": np.zeros(size), "val_acc": np.zeros(size)}
    peak = np.full(size, -np.inf)
    models: list[nn.Module | None] = [None] * size
    index = torch.empty(0, dtype=torch.long)
    for step in range(max_steps + 1):
        if step % check_every == 0 or step == max_steps:
            loss, acc = _loss_and_accuracy(ensemble, X, y)
            _, val_acc = _loss_and_accuracy(ensemble, X_val, y_val)
            peak[alive] = np.maximum(peak[alive], val_acc.numpy())
            stop = (loss.numpy() <= target_loss) | (step == max_steps)
            for key, value in (("train_loss", loss), ("train_acc", acc), ("val_acc", val_acc)):
                final[key][alive[stop]] = value.numpy()[stop]
            steps[alive[stop]] = step
            for row in np.flatnonzero(stop):
                models[alive[row]] = ensemble.member(int(row))
            if stop.all():
                break
            if stop.any():
                rows = torch.from_numpy(np.flatnonzero(~stop))
                ensemble.keep(rows)
                adam.keep(rows)
                X, y, X_val, y_val, index = X[rows], y[rows], X_val[rows], y_val[rows], index[rows]
                orders = [orders[int(r)] for r in rows]
                alive = alive[~stop]
        position = step % (num_train // batch_size)
        if position == 0:
            index = torch.stack([torch.randperm(num_train, generator=g) for g in orders])
        batch = index[:, position * batch_size:(position + 1) * batch_size].to(X.device)
        members = torch.arange(len(alive))[:, None]
        adam.step(ensemble.params, ensemble.gradients(X[members, batch], y[members, batch]))
    return SeedRuns(seeds=seeds, batch_size=batch_size, steps=steps,
                    reached=final["train_loss"] <= target_loss, peak_val_acc=peak,
                    models=tuple(m for m in models if m is not None), **final)


@dataclass(frozen=True, eq=False)
class SeedGaps:
    """SB and LB over many seeds (:func:`seed_gaps`).

    Attributes:
        small, large: the two :class:`SeedRuns`.
        table: one row per seed (index ``seed``): ``SB val_acc``, ``LB val_acc``, ``gap``
            (SB − LB), and each run's steps, final training loss and accuracy, peak validation
            accuracy, each column prefixed with ``SB`` or ``LB``.
    """

    small: SeedRuns
    large: SeedRuns

    @property
    def table(self) -> pd.DataFrame:
        table = pd.concat({"SB": self.small.table(), "LB": self.large.table()}, axis=1)
        table.columns = [f"{name} {column}" for name, column in table.columns]
        table["gap"] = table["SB val_acc"] - table["LB val_acc"]
        return table

    @property
    def gap(self) -> pd.Series:
        """SB − LB final validation accuracy per seed."""
        return self.table["gap"]

    def models(self, seed: int) -> tuple[nn.Module, nn.Module]:
        """The SB and the LB solution of ``seed``."""
        row = self.small.seeds.index(int(seed))
        return self.small.models[row], self.large.models[row]


def seed_gaps(make_data: Callable[[int], Dataset], widths: Sequence[int], *,
              seeds: Sequence[int], small_batch_size: int, large_batch_size: int | None,
              lr: float, target_loss: float, max_steps: int) -> SeedGaps:
    """Keskar's SB-vs-LB comparison for every seed: :func:`train_seeds_to_loss` with each batch
    size (``None`` = the whole training set), the same seeds, so the same initial weights."""
    small, large = (train_seeds_to_loss(make_data, widths, seeds=seeds, batch_size=batch_size,
                                        lr=lr, target_loss=target_loss, max_steps=max_steps)
                    for batch_size in (small_batch_size, large_batch_size))
    return SeedGaps(small=small, large=large)


@dataclass(frozen=True)
class GapStatistics:
    """How sure a set of per-seed gaps makes us that the mean gap is positive.

    Attributes:
        n: the number of seeds.
        mean, standard_error: of the gaps (SE = sample SD / √n).
        positive: the number of seeds with a gap > 0.
        sign_p: one-sided sign-test p: the chance of at least ``positive`` of ``n`` fair coins.
    """

    n: int
    mean: float
    standard_error: float
    positive: int
    sign_p: float

    @property
    def z(self) -> float:
        """The mean in standard errors."""
        return self.mean / self.standard_error


def gap_statistics(gaps: Sequence[float] | pd.Series) -> GapStatistics:
    """Mean, standard error and sign test of ``gaps`` (at least two values)."""
    values = np.asarray(gaps, dtype=float)
    if values.size < 2 or not np.isfinite(values).all():
        raise ValueError(f"gap_statistics needs at least two finite gaps, got {values.tolist()}")
    n, positive = int(values.size), int((values > 0).sum())
    sign_p = sum(math.comb(n, k) for k in range(positive, n + 1)) / 2 ** n
    return GapStatistics(n=n, mean=float(values.mean()),
                         standard_error=float(values.std(ddof=1) / math.sqrt(n)),
                         positive=positive, sign_p=float(sign_p))
