"""Foret et al. 2021 / Kwon et al. 2021 (lesson 06): does SAM find flatter minima and generalize
better here — and what does it cost?

The task: scikit-learn's 8×8 digits with a fraction of the *training* labels flipped to another
class (validation labels stay clean), learned by a ReLU MLP 64-128-10 with softmax
cross-entropy and SGD + heavy-ball momentum, mini-batches of 64. Trained long enough, such a
network memorizes the flipped labels and its validation accuracy falls; the question is whether
SAM (ρ·g/‖g‖), ASAM (the same in rescaled coordinates) or m-sharpness resist that.

* :func:`noisy_digits` — the data, with the mask of flipped labels.
* :class:`Method` and :data:`METHODS` — what is compared; :func:`make_step` builds one
  optimizer step for a method (SGD, SAM, ASAM, stale ascent, m-sharpness).
* :func:`train_method` / :func:`compare_methods` — runs over seeds, with λ_max, Keskar's
  ε-sharpness and the fraction of flipped labels memorized at the end; :func:`paired_gaps`.
* Cost: :func:`count_passes` (forward/backward passes per step: deterministic) and
  :func:`time_per_step` (wall time: noisy on a shared machine).

Engine layer: nothing here draws.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.sam import SAM
from edutools.engine.sharpness import eps_sharpness, lambda_max
from edutools.engine.training import RunRecord, evaluate, train
from edutools.ground.data import Dataset, load_digits
from edutools.ground.models import cross_entropy, mlp
from edutools.ground.validation import check_fraction, check_positive_int

__all__ = ["BATCH_SIZE", "CHEAP", "EPOCHS", "LR", "METHODS", "MOMENTUM", "M_SHARPNESS",
           "Method", "MethodRun", "NOISE_FRACTION", "NoisyDigits", "compare_methods",
           "count_passes", "make_step", "memorized_fraction", "noisy_digits", "paired_gaps",
           "time_per_step", "train_method"]

#: Fraction of training labels flipped to a different class.
NOISE_FRACTION = 0.25
#: The base optimizer: SGD, η = 0.05, heavy ball β = 0.9, batches of 64.
LR = 0.05
MOMENTUM = 0.9
BATCH_SIZE = 64
WIDTH = 128
#: Epochs (both modes: long enough to memorize) and the measurement cadence (epochs): every
#: 2 epochs, fine enough to compare the methods at equal training loss and to date memorization.
EPOCHS = 100
MEASURE_EVERY_EPOCHS = 2
#: Keskar et al.'s box half-width factor for ε-sharpness.
EPS = 1e-3


@dataclass(frozen=True)
class Method:
    """One optimizer to compare (the base step is always SGD with heavy-ball momentum).

    Attributes:
        name: label in tables and figures.
        rho: SAM radius ρ (0: plain SGD).
        adaptive: ASAM (Kwon et al. 2021) instead of SAM.
        ascent_every: recompute ε̂ every k steps, reuse it in between (1 = SAM).
        m: m-sharpness sub-batch size (one ε̂ per m samples); ``None`` = the whole batch.
    """

    name: str
    rho: float = 0.0
    adaptive: bool = False
    ascent_every: int = 1
    m: int | None = None


#: The three optimizers of the main comparison.
METHODS: tuple[Method, ...] = (Method("SGD"), Method("SAM ρ=0.1", rho=0.1),
                               Method("ASAM ρ=0.5", rho=0.5, adaptive=True))
#: The cheap variant: SAM's ascent only every 5th step.
CHEAP = Method("SAM ρ=0.1, ascent every 5", rho=0.1, ascent_every=5)
#: m-sharpness: one ε̂ per sub-batch of m samples (m = 64, the whole batch, is SAM itself).
M_SHARPNESS: tuple[Method, ...] = (Method("SAM ρ=0.1, m=16", rho=0.1, m=16),
                                   Method("SAM ρ=0.1, m=8", rho=0.1, m=8))


@dataclass(frozen=True)
class NoisyDigits:
    """Digits with flipped training labels.

    Attributes:
        data: the :class:`~edutools.ground.data.Dataset` (noisy ``y_train``, clean ``y_val``).
        flipped: bool array (n_train,), True where the training label was changed.
        clean_labels: the original training labels, int64 array (n_train,).
    """

    data: Dataset
    flipped: np.ndarray
    clean_labels: np.ndarray

    @property
    def fraction(self) -> float:
        """The fraction of training labels actually flipped."""
        return float(self.flipped.mean())


@functools.lru_cache(maxsize=8)
def noisy_digits(*, seed: int = 0, fraction: float = NOISE_FRACTION) -> NoisyDigits:
    """The digits split drawn with ``seed``, each training label flipped with probability
    ``fraction`` to a uniformly random *other* class (validation labels stay clean)."""
    fraction = check_fraction(fraction, name="fraction")
    data = load_digits(seed=seed, device="cpu")
    clean = data.y_train.numpy().copy()
    rng = np.random.default_rng([seed, 6])  # independent of the split's own stream
    flipped = rng.random(len(clean)) < fraction
    shifted = (clean + rng.integers(1, 10, size=len(clean))) % 10
    noisy = np.where(flipped, shifted, clean)
    data = replace(data, name=f"digits, {fraction:.0%} of training labels flipped",
                   y_train=torch.as_tensor(noisy, dtype=torch.int64))
    return NoisyDigits(data=data, flipped=flipped, clean_labels=clean)


def _model(seed: int) -> nn.Module:
    return mlp([64, WIDTH, 10], activation="relu", init="torch", seed=seed)


def make_step(method: Method, model: nn.Module, *, lr: float = LR,
              momentum: float = MOMENTUM) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """One optimizer step of ``method`` on a batch: ``step(X, y) -> loss`` (at θ, before the
    step). The optimizer lives in the closure, so momentum and stale ε̂ carry over between calls.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if method.rho == 0:
        sgd = torch.optim.SGD(params, lr=lr, momentum=momentum)

        def sgd_step(X: torch.Tensor, y: torch.Tensor) -> float:
            sgd.zero_grad(set_to_none=True)
            loss = cross_entropy(model(X), y)
            loss.backward()
            sgd.step()
            return float(loss.detach())

        return sgd_step
    sam = SAM(params, rho=method.rho, adaptive=method.adaptive,
              ascent_every=method.ascent_every, lr=lr, momentum=momentum)
    if method.m is not None:
        def m_step(X: torch.Tensor, y: torch.Tensor) -> float:
            return sam.m_sharpness_step(model, cross_entropy, X, y, m=method.m).loss

        return m_step
    losses: list[float] = []

    def sam_step(X: torch.Tensor, y: torch.Tensor) -> float:
        def closure() -> torch.Tensor:
            loss = cross_entropy(model(X), y)
            loss.backward()
            losses.append(float(loss.detach()))
            return loss

        losses.clear()
        sam.zero_grad(set_to_none=True)
        sam.step(closure)
        return losses[0]

    return sam_step


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class MethodRun(RunRecord):
    """One method, one seed: the curve and the end point (no model: picklable). A
    :class:`~edutools.engine.training.record.RunRecord` whose ``config`` holds ``method`` (the
    :class:`Method`), ``seed`` (of the data split, the flipped labels, the initial weights and
    the batches), ``epochs``, ``lr``, ``momentum``, ``batch_size``, …

    Attributes:
        record: one row per measurement: ``epoch``, ``train_loss``, ``train_acc``, ``val_acc``
            and ``memorized`` (fraction of flipped training labels predicted as given).
        end: the end point: ``val_acc``, ``best_val_acc``, ``train_acc``, ``memorized``
            (fraction of flipped training labels the net predicts as given), ``lambda_max``
            (noisy training loss), ``eps_sharpness`` (Keskar, ε = 1e-3, in %), ``seconds``.
    """

    end: dict[str, float] = field(default_factory=dict)

    @property
    def method(self) -> Method:
        """The optimizer that was run."""
        return self.setting("method")

    @property
    def seed(self) -> int:
        """Seed of the split, the flipped labels, the initial weights and the batches."""
        return self.setting("seed")


def memorized_fraction(model: nn.Module, noisy: NoisyDigits) -> float:
    """Fraction of the flipped training labels that ``model`` predicts *as given* (the wrong
    label): 0 = none memorized, 1 = all. Eval mode, no gradient; the mode is restored."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model(noisy.data.X_train).argmax(dim=1).numpy()
    model.train(was_training)
    given = noisy.data.y_train.numpy()
    return float((predicted[noisy.flipped] == given[noisy.flipped]).mean())


def _end_point(model: nn.Module, noisy: NoisyDigits, record: pd.DataFrame,
               seconds: float) -> dict[str, float]:
    data = noisy.data
    return {"val_acc": float(record["val_acc"].iloc[-1]),
            "best_val_acc": float(record["val_acc"].max()),
            "train_acc": float(record["train_acc"].iloc[-1]),
            "memorized": memorized_fraction(model, noisy),
            "lambda_max": lambda_max(model, cross_entropy, data.X_train, data.y_train, tol=1e-3),
            "eps_sharpness": eps_sharpness(model, cross_entropy, data.X_train, data.y_train,
                                           eps=EPS).sharpness,
            "seconds": seconds}


def train_method(method: Method, *, seed: int = 0, epochs: int = EPOCHS,
                 measure_every_epochs: int = MEASURE_EVERY_EPOCHS,
                 fraction: float = NOISE_FRACTION) -> MethodRun:
    """Train the digits MLP with ``method`` on :func:`noisy_digits` for ``epochs`` epochs.

    Plain SGD, SAM, ASAM and stale ascent go through :func:`edutools.engine.training.train`;
    m-sharpness through the same batch order in a small loop (``train`` has no m-sharpness
    step). Measures the validation accuracy every ``measure_every_epochs`` epochs.
    """
    epochs = check_positive_int(epochs, name="epochs")
    noisy = noisy_digits(seed=seed, fraction=fraction)
    data, model = noisy.data, _model(seed)
    per_epoch = data.num_train // BATCH_SIZE
    every = per_epoch * check_positive_int(measure_every_epochs, name="measure_every_epochs")
    start = time.perf_counter()
    if method.m is None:
        factory = None if method.rho == 0 else (
            lambda params: SAM(params, rho=method.rho, adaptive=method.adaptive,
                               ascent_every=method.ascent_every, lr=LR, momentum=MOMENTUM))
        result = train(model, data, lr=LR, momentum=MOMENTUM, batch_size=BATCH_SIZE,
                       num_steps=epochs * per_epoch, optimizer=factory, measure_every=every,
                       callbacks=[lambda state: {"memorized": memorized_fraction(state.model,
                                                                                 noisy)}],
                       seed=seed, description=method.name)
        record = result.record[["step", "train_loss", "train_acc", "val_acc",
                                "memorized"]].copy()
        # Epochs as passes of per_epoch steps (train counts samples seen: 0.98 per pass here).
        record.insert(0, "epoch", record.pop("step") / per_epoch)
        losses, diverged, message = result.step_losses, result.diverged, result.message
    else:
        record = _train_loop(make_step(method, model), model, noisy, epochs=epochs,
                             every=every, seed=seed)
        losses, diverged, message = np.empty(0), False, f"Finished {epochs} epochs"
    end = _end_point(model, noisy, record, time.perf_counter() - start)
    config = dict(method=method, seed=seed, epochs=epochs, fraction=fraction, lr=LR,
                  momentum=MOMENTUM, batch_size=BATCH_SIZE,
                  measure_every_epochs=measure_every_epochs)
    return MethodRun(record=record, config=config, end=end, step_losses=losses,
                     diverged=diverged, message=message, seconds=end["seconds"])


def _train_loop(step: Callable[[torch.Tensor, torch.Tensor], float], model: nn.Module,
                noisy: NoisyDigits, *, epochs: int, every: int, seed: int) -> pd.DataFrame:
    """``train``'s batch order (a fresh seeded shuffle per epoch, last partial batch dropped)."""
    data = noisy.data
    per_epoch = data.num_train // BATCH_SIZE
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    rows = []

    def measure(step_count: int) -> None:
        train_metrics = evaluate(model, cross_entropy, data.X_train, data.y_train,
                                 classification=True)
        val_metrics = evaluate(model, cross_entropy, data.X_val, data.y_val, classification=True)
        rows.append({"epoch": step_count / per_epoch, "train_loss": train_metrics["loss"],
                     "train_acc": train_metrics["acc"], "val_acc": val_metrics["acc"],
                     "memorized": memorized_fraction(model, noisy)})

    measure(0)
    model.train()
    for count in range(epochs * per_epoch):
        if count % per_epoch == 0:
            order = torch.randperm(data.num_train, generator=generator)
        index = order[(count % per_epoch) * BATCH_SIZE:(count % per_epoch + 1) * BATCH_SIZE]
        step(data.X_train[index], data.y_train[index])
        if (count + 1) % every == 0 or count + 1 == epochs * per_epoch:
            measure(count + 1)
    model.eval()
    return pd.DataFrame(rows).drop_duplicates("epoch", keep="last").reset_index(drop=True)


def compare_methods(methods: Iterable[Method], seeds: Iterable[int], *, epochs: int = EPOCHS,
                    measure_every_epochs: int = MEASURE_EVERY_EPOCHS
                    ) -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame]]:
    """:func:`train_method` for every method and seed.

    Returns:
        ``(table, records)``: ``table`` has one row per (method, seed) with the end-point fields
        of :class:`MethodRun` (``method`` and ``seed`` columns first); ``records`` maps
        ``(method name, seed)`` to the run's record.
    """
    rows, records = [], {}
    for seed in seeds:
        for method in methods:
            run = train_method(method, seed=seed, epochs=epochs,
                               measure_every_epochs=measure_every_epochs)
            rows.append({"method": method.name, "seed": seed, **run.end})
            records[(method.name, seed)] = run.record
    return pd.DataFrame(rows), records


def paired_gaps(table: pd.DataFrame, column: str, *, baseline: str) -> pd.DataFrame:
    """Per method, ``column`` minus the baseline method's on the same seed, over seeds.

    Returns one row per other method (index ``method``): ``mean`` gap, its ``se`` (standard
    error, NaN for one seed), ``min``, ``max``, ``positive`` (seeds with a gap > 0) and ``seeds``.
    """
    wide = table.pivot(index="seed", columns="method", values=column)
    if baseline not in wide:
        raise ValueError(f"baseline {baseline!r} is not a method of the table: "
                         f"{sorted(wide.columns)}")
    rows = {}
    for name in wide.columns.drop(baseline):
        gap = (wide[name] - wide[baseline]).dropna()
        rows[name] = {"mean": gap.mean(), "se": gap.std(ddof=1) / math.sqrt(len(gap))
                      if len(gap) > 1 else float("nan"), "min": gap.min(), "max": gap.max(),
                      "positive": int((gap > 0).sum()), "seeds": len(gap)}
    return pd.DataFrame(rows).T.rename_axis("method")


# -- cost ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PassCount:
    """Forward (each followed by one backward) passes through the network per optimizer step.

    Attributes:
        method: the method's name.
        passes_per_step: network calls per step, averaged over the steps counted.
        samples_per_step: samples through the network per step (the arithmetic done).
        num_steps: steps counted.
    """

    method: str
    passes_per_step: float
    samples_per_step: float
    num_steps: int


def count_passes(method: Method, *, num_steps: int = 10, seed: int = 0) -> PassCount:
    """Count the network's forward calls during ``num_steps`` steps of ``method`` (batches of
    :data:`BATCH_SIZE` from :func:`noisy_digits`): deterministic, unlike wall time."""
    num_steps = check_positive_int(num_steps, name="num_steps")
    data = noisy_digits(seed=seed).data
    model = _model(seed)
    step = make_step(method, model)
    calls, samples = [0], [0]

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        calls[0] += 1
        samples[0] += int(inputs[0].shape[0])

    handle = model.register_forward_pre_hook(hook)
    try:
        for i in range(num_steps):
            index = torch.arange(i * BATCH_SIZE, (i + 1) * BATCH_SIZE) % data.num_train
            step(data.X_train[index], data.y_train[index])
    finally:
        handle.remove()
    return PassCount(method=method.name, passes_per_step=calls[0] / num_steps,
                     samples_per_step=samples[0] / num_steps, num_steps=num_steps)


def time_per_step(methods: Sequence[Method], *, num_steps: int = 100, repeats: int = 5,
                  seed: int = 0) -> pd.DataFrame:
    """Wall-clock and CPU time per optimizer step of each method, in interleaved rounds.

    Each round times ``num_steps`` steps of every method in turn (so a burst of load on a
    shared machine hits all methods alike); the table keeps the median over ``repeats`` rounds.
    Returns one row per method (index ``method``): ``ms_per_step``, ``cpu_ms_per_step`` and
    both divided by the first method's (``wall_ratio``, ``cpu_ratio``).
    """
    num_steps = check_positive_int(num_steps, name="num_steps")
    repeats = check_positive_int(repeats, name="repeats")
    data = noisy_digits(seed=seed).data
    steps = [make_step(method, _model(seed)) for method in methods]
    batches = [torch.arange(i * BATCH_SIZE, (i + 1) * BATCH_SIZE) % data.num_train
               for i in range(num_steps)]
    wall: list[list[float]] = [[] for _ in methods]
    cpu: list[list[float]] = [[] for _ in methods]
    for step in steps:  # one warm-up step each (first calls allocate)
        step(data.X_train[batches[0]], data.y_train[batches[0]])
    for _ in range(repeats):
        for i, step in enumerate(steps):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            for index in batches:
                step(data.X_train[index], data.y_train[index])
            wall[i].append((time.perf_counter() - start_wall) / num_steps * 1e3)
            cpu[i].append((time.process_time() - start_cpu) / num_steps * 1e3)
    table = pd.DataFrame({"method": [m.name for m in methods],
                          "ms_per_step": [statistics.median(w) for w in wall],
                          "cpu_ms_per_step": [statistics.median(c) for c in cpu]})
    table["wall_ratio"] = table["ms_per_step"] / table["ms_per_step"].iloc[0]
    table["cpu_ratio"] = table["cpu_ms_per_step"] / table["cpu_ms_per_step"].iloc[0]
    return table.set_index("method")
