"""One training loop for the whole course: full-batch GD and mini-batch SGD, with or without
(Nesterov) momentum, measured every few steps through callbacks.

A lesson cell reads: pick data and model → ``train(...)`` with a measurement → plot against the
edge → assert. Measurements are callables ``callback(state) -> dict`` (see :class:`TrainState`);
:mod:`edutools.engine.sharpness` provides the λ_max and batch-sharpness meters.

Momentum follows ``torch.optim.SGD`` (heavy ball): ``v ← βv + g``, ``θ ← θ − ηv``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.sam.batchnorm import frozen_running_stats
from edutools.engine.training.divergence import divergence_message, divergence_reason
from edutools.engine.training.phases import Phase, run_phases
from edutools.engine.training.result import (
    Callback,
    TrainingDivergedWarning,
    TrainResult,
    TrainState,
)
from edutools.ground.data import Dataset
from edutools.ground.device import progress_disabled
from edutools.ground.models import LossFn, accuracy, resolve_loss
from edutools.ground.progress import progress_bar
from edutools.ground.validation import (
    check_batch_size,
    check_bool,
    check_finite,
    check_lr,
    check_model_dtype,
    check_momentum,
    check_positive_int,
)


def _check_model_and_data(model: nn.Module, data: Dataset, params: list[nn.Parameter]) -> None:
    """The model fits the data (device, dtype); warn if there is no validation set."""
    if not params:
        raise ValueError("the model has no trainable parameters")
    if params[0].device != data.device:
        raise ValueError(f"the model is on {params[0].device} but the data is on {data.device}; "
                         "move one of them (model.to(data.device))")
    check_model_dtype(model, data.X_train, name="data.X_train")
    if len(data.X_val) == 0:
        warnings.warn(f"{data.name}: the validation set is empty, so val_loss (and val_acc) "
                      "are NaN in the record", stacklevel=3)


def _check_initial_loss(model: nn.Module, X: torch.Tensor, initial_loss: float) -> None:
    """Raise ``ValueError`` if the loss before any step is not finite: the data were checked
    where they entered (Dataset), so the model's parameters or outputs are to blame."""
    if math.isfinite(initial_loss):
        return
    with torch.no_grad():
        check_finite(torch.cat([p.detach().reshape(-1) for p in model.parameters()]),
                     name="the model's parameters")
        check_finite(model(X), name="the model's outputs on data.X_train")
    raise ValueError(f"the training loss before any step is {initial_loss}: the model's outputs "
                     "are finite, so the loss function returns a non-finite value for them")


def evaluate(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
             *, classification: bool) -> dict[str, float]:
    """Loss (and accuracy when ``classification``) of ``model`` on (X, y) in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(X)
        values = {"loss": float(loss_fn(outputs, y))}
        if classification:
            values["acc"] = accuracy(outputs, y)
    model.train(was_training)
    return values


def full_batch_grad_norm(model: nn.Module, loss_fn: LossFn, X: torch.Tensor,
                         y: torch.Tensor) -> float:
    """‖∇L(θ)‖₂ of the full-batch loss, in eval mode; leaves ``.grad`` untouched."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model(X), y), params)
    model.train(was_training)
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def train(model: nn.Module, data: Dataset, *, lr: float | None = None,
          num_steps: int | None = None, phases: Sequence[Phase] | None = None,
          loss_fn: str | LossFn = "cross_entropy", batch_size: int | None = None,
          momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
          optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
          measure_every: int = 100, callbacks: Iterable[Callback] = (), seed: int = 0,
          window: int = 50, jitter_window: int = 5, divergence_factor: float = 1e3,
          stop_at_loss: float | None = None,
          watch: Callable[[pd.DataFrame], None] | None = None,
          progress: bool | None = None, description: str | None = None) -> TrainResult:
    """Train ``model`` on ``data`` for ``num_steps`` optimizer steps and record measurements.

    Args:
        model: the network; trained in place (train mode during steps, eval mode to measure).
        data: the dataset; the model must already be on ``data.device``.
        lr: learning rate η (> 0).
        num_steps: budget in optimizer steps.
        phases: a schedule instead of ``lr``/``num_steps``/``batch_size``: a sequence of
            :class:`Phase` ``(lr, batch_size, epochs)`` run with one SGD optimizer (heavy ball
            ``momentum``), so the velocity carries over; measured once per epoch; phase i seeded
            by ``seed + i``. Only ``momentum``, ``loss_fn``, ``seed`` and ``progress`` apply.
        loss_fn: ``"cross_entropy"``, ``"half_mse"`` or a callable ``(outputs, targets)``.
        batch_size: mini-batch size B; ``None`` or ``data.num_train`` means full-batch GD.
            Mini-batches are drawn without replacement: a fresh shuffle every epoch, the last
            incomplete batch of an epoch dropped so every step uses exactly B samples.
        momentum: heavy-ball β in [0, 1) (``torch.optim.SGD`` convention).
        nesterov: use Nesterov momentum (requires ``momentum > 0``).
        weight_decay: L2 penalty coefficient passed to SGD.
        optimizer: optional factory ``params -> Optimizer`` replacing SGD (e.g. Adam, SAM); an
            optimizer whose ``requires_closure`` attribute is True gets ``step(closure)``.
            ``lr``/``momentum`` are then only recorded (for edges and labels).
        measure_every: measure every k steps (and at step 0 and at the end).
        callbacks: extra measurements, each ``callback(state) -> dict`` merged into the row.
        seed: seeds the batch order and dropout; the same seed gives the same record on CPU.
        window: number of recent steps for the loss-variance proxy.
        jitter_window: number of recent measurements for the validation jitter.
        divergence_factor: stop when the mini-batch loss exceeds this multiple of the initial
            loss or is not finite; a loss held far above the initial one and not falling stops
            it too (:mod:`edutools.engine.training.divergence`).
        stop_at_loss: stop at the first measurement whose full training loss is ≤ this value.
        watch: called with the record so far (a DataFrame, as ``TrainResult.record``) after every
            measurement — e.g. a live plot (:class:`edutools.face.live.LiveFigure`) or a slider
            panel redrawing while it trains. It must not change the model; an exception it
            raises (such as a panel cancelling a stale run) stops training and propagates.
        progress: show a progress bar; ``None`` = on unless ``EDUTOOLS_QUIET``/``CI`` is set.
        description: label of the progress bar.

    Returns:
        A :class:`TrainResult`; on divergence it holds the record so far and a warning of
        category :class:`TrainingDivergedWarning` is issued.
    """
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be an edutools Dataset, got {type(data).__name__}")
    if phases is not None:
        if lr is not None or num_steps is not None or batch_size is not None:
            raise ValueError("give either phases or lr/num_steps/batch_size, not both (got "
                             f"lr={lr!r}, num_steps={num_steps!r}, batch_size={batch_size!r})")
        return run_phases(train, model, data, phases, momentum=momentum, loss_fn=loss_fn,
                          seed=seed, progress=progress)
    if lr is None or num_steps is None:
        raise ValueError(f"train needs lr and num_steps (or phases), got lr={lr!r}, "
                         f"num_steps={num_steps!r}")
    lr = check_lr(lr)
    momentum = check_momentum(momentum)
    num_steps = check_positive_int(num_steps, name="num_steps")
    measure_every = check_positive_int(measure_every, name="measure_every")
    window = check_positive_int(window, name="window")
    jitter_window = check_positive_int(jitter_window, name="jitter_window")
    if check_bool(nesterov, name="nesterov") and momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number ≥ 0, got {weight_decay!r}")
    if not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")
    num_train = data.num_train
    batch_size = num_train if batch_size is None else check_batch_size(batch_size, num_train)
    loss = resolve_loss(loss_fn)
    params = [p for p in model.parameters() if p.requires_grad]
    _check_model_and_data(model, data, params)
    callbacks = list(callbacks)
    classification = data.num_classes is not None

    if optimizer is None:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                              weight_decay=weight_decay)
    else:
        opt = optimizer(params)
    needs_closure = bool(getattr(opt, "requires_closure", False))

    torch.manual_seed(seed)  # dropout masks
    order_generator = torch.Generator().manual_seed(seed)
    X, y = data.X_train, data.y_train
    full_batch = batch_size == num_train
    batches_per_epoch = num_train // batch_size
    order = torch.empty(0, dtype=torch.long)

    step_losses = torch.full((num_steps,), float("nan"), dtype=torch.float64)
    rows: list[dict[str, float]] = []
    state = TrainState(step=0, model=model, optimizer=opt, loss_fn=loss, data=data, lr=lr,
                       momentum=momentum, nesterov=nesterov, batch_size=batch_size)
    val_history: list[float] = []

    def measure(step: int) -> dict[str, float]:
        state.step = step
        state.recent_losses = step_losses[max(0, step - window):step].numpy()
        row: dict[str, float] = {"step": step, "epoch": step * batch_size / num_train}
        train_metrics = evaluate(model, loss, X, y, classification=classification)
        val_metrics = evaluate(model, loss, data.X_val, data.y_val, classification=classification)
        row["train_loss"] = train_metrics["loss"]
        row["val_loss"] = val_metrics["loss"]
        if classification:
            row["train_acc"] = train_metrics["acc"]
            row["val_acc"] = val_metrics["acc"]
        finite = math.isfinite(row["train_loss"])
        row["grad_norm"] = full_batch_grad_norm(model, loss, X, y) if finite else float("nan")
        row["loss_var"] = (float(np.var(state.recent_losses)) if len(state.recent_losses) > 1
                           else float("nan"))
        val_history.append(row["val_loss"])
        recent_val = np.asarray(val_history[-jitter_window:])
        # RMS of successive changes: a trend moves it little, step-to-step noise a lot.
        row["val_jitter"] = (float(np.sqrt(np.mean(np.diff(recent_val) ** 2)))
                             if len(recent_val) > 1 else float("nan"))
        if finite:
            for callback in callbacks:
                row.update(callback(state) or {})
        return row

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        # At a perturbed point (SAM's θ + ε̂) BatchNorm must not update its running statistics:
        # the pass at θ already did (edutools.engine.sam.batchnorm).
        # The backward pass stays inside: BatchNorm saves its buffers for it.
        with frozen_running_stats(model, enabled=bool(getattr(opt, "perturbed", False))):
            batch_loss = loss(model(xb), yb)
            batch_loss.backward()
        return batch_loss

    quiet = progress_disabled() if progress is None else not progress
    # Text in a display that closing empties, not stderr: no empty error box left behind.
    bar = progress_bar(total=num_steps, disable=quiet, desc=description or "training")
    start = time.perf_counter()
    rows.append(measure(0))
    _check_initial_loss(model, X, rows[0]["train_loss"])
    if watch is not None:
        watch(pd.DataFrame(rows))
    initial_loss = max(rows[0]["train_loss"], 1e-12)
    diverged_at: int | None = None
    stopped_at_loss = False
    message = ""
    last_update = 0
    completed = 0
    model.train()
    for step in range(num_steps):
        if full_batch:
            xb, yb = X, y
        else:
            position = step % batches_per_epoch
            if position == 0:
                order = torch.randperm(num_train, generator=order_generator).to(data.device)
            index = order[position * batch_size:(position + 1) * batch_size]
            xb, yb = X[index], y[index]
        if needs_closure and not getattr(opt, "ascent_due", True):
            # SAM reusing a stale ε̂ (ascent_every > 1) needs no gradient at θ: one pass, at
            # θ + ε̂, whose loss is the step's recorded loss.
            batch_loss = opt.step(closure)
        else:
            batch_loss = closure()
            if needs_closure:
                opt.step(closure)
            else:
                opt.step()
        value = float(batch_loss.detach())
        step_losses[step] = value
        completed = step + 1
        reason = divergence_reason(step_losses, completed, initial_loss, divergence_factor)
        if reason is not None:
            diverged_at = completed
            message = divergence_message(reason, completed, opt)
            rows.append(measure(completed))
            if watch is not None:
                watch(pd.DataFrame(rows))
            break
        if completed % measure_every == 0 or completed == num_steps:
            rows.append(measure(completed))
            if watch is not None:
                watch(pd.DataFrame(rows))
            bar.update(completed - last_update)
            last_update = completed
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.4f}", refresh=False)
            if stop_at_loss is not None and rows[-1]["train_loss"] <= stop_at_loss:
                stopped_at_loss = True
                break
    bar.close()
    model.eval()
    seconds = time.perf_counter() - start
    if diverged_at is not None:
        warnings.warn(message, TrainingDivergedWarning, stacklevel=2)
    elif stopped_at_loss:
        message = f"Reached training loss ≤ {stop_at_loss:g} at step {completed}"
    else:
        message = f"Finished {completed} steps, training loss {rows[-1]['train_loss']:.4g}"
    config = dict(lr=lr, num_steps=num_steps, batch_size=batch_size, momentum=momentum,
                  nesterov=nesterov, weight_decay=weight_decay, seed=seed,
                  loss_fn=loss_fn if isinstance(loss_fn, str) else getattr(loss_fn, "__name__",
                                                                            "custom"),
                  optimizer="SGD" if optimizer is None else type(opt).__name__)
    return TrainResult(record=pd.DataFrame(rows), step_losses=step_losses[:completed].numpy(),
                       model=model, diverged=diverged_at is not None, diverged_at=diverged_at,
                       message=message, seconds=seconds, config=config)
