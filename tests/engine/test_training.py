"""The training loop: GD/SGD, momentum, records, callbacks, divergence, reproducibility."""

import math
import warnings

import numpy as np
import pytest
import torch

from edutools.engine.training import TrainingDivergedWarning, train
from edutools.ground.models import mlp


def small_model(teacher, seed=0, **kwargs):
    return mlp([teacher.input_dim, 16, teacher.num_classes], seed=seed, **kwargs)


def test_full_batch_gd_step_matches_the_formula(teacher):
    model = small_model(teacher)
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(teacher.X_train), teacher.y_train)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    train(model, teacher, lr=0.1, num_steps=1, measure_every=1)
    for old, grad, new in zip(before, grads, model.parameters(), strict=True):
        assert torch.allclose(new, old - 0.1 * grad, atol=1e-6)


def test_heavy_ball_convention_v_beta_v_plus_g(teacher):
    # Two steps of v ← βv + g, θ ← θ − ηv done by hand must equal train(momentum=β).
    lr, beta = 0.05, 0.9
    reference = small_model(teacher)
    velocity = [torch.zeros_like(p) for p in reference.parameters()]
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(reference(teacher.X_train), teacher.y_train)
        grads = torch.autograd.grad(loss, list(reference.parameters()))
        with torch.no_grad():
            for p, v, g in zip(reference.parameters(), velocity, grads, strict=True):
                v.mul_(beta).add_(g)
                p.sub_(lr * v)
    model = small_model(teacher)
    train(model, teacher, lr=lr, momentum=beta, num_steps=2, measure_every=1)
    for a, b in zip(reference.parameters(), model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_record_has_measurements_every_k_steps(teacher):
    result = train(small_model(teacher), teacher, lr=0.5, num_steps=50, batch_size=20,
                   measure_every=10, window=5, jitter_window=3)
    record = result.record
    assert record["step"].tolist() == [0, 10, 20, 30, 40, 50]
    for column in ("train_loss", "val_loss", "train_acc", "val_acc", "grad_norm", "loss_var",
                   "val_jitter", "epoch"):
        assert column in record
    assert record["epoch"].iloc[-1] == pytest.approx(50 * 20 / 200)
    assert record["train_loss"].iloc[-1] < record["train_loss"].iloc[0]
    assert len(result.step_losses) == 50 and not result.diverged
    # loss_var is the variance of the last `window` mini-batch losses before the measurement
    assert record["loss_var"].iloc[1] == pytest.approx(np.var(result.step_losses[5:10]))
    val = record["val_loss"].to_numpy()
    assert record["val_jitter"].iloc[2] == pytest.approx(np.sqrt(np.mean(np.diff(val[:3]) ** 2)))
    assert record["val_jitter"].iloc[5] == pytest.approx(np.sqrt(np.mean(np.diff(val[3:6]) ** 2)))


def test_epoch_sampling_visits_every_sample_once(teacher):
    model = small_model(teacher)
    inputs = []
    handle = model.register_forward_pre_hook(
        lambda module, args: inputs.append(args[0].detach().clone()) if module.training else None)
    train(model, teacher, lr=0.1, num_steps=8, batch_size=50, measure_every=100)
    handle.remove()
    first_epoch = torch.cat(inputs[:4])
    second_epoch = torch.cat(inputs[4:8])
    key = lambda X: sorted(map(tuple, X.numpy().round(5).tolist()))  # noqa: E731
    assert key(first_epoch) == key(teacher.X_train) == key(second_epoch)
    assert not torch.equal(first_epoch, second_epoch)  # reshuffled each epoch


def test_same_seed_gives_identical_record(teacher):
    runs = [train(small_model(teacher, dropout=0.2), teacher, lr=0.3, momentum=0.9, batch_size=16,
                  num_steps=60, measure_every=20, seed=7) for _ in range(2)]
    assert runs[0].record.equals(runs[1].record)
    other = train(small_model(teacher, dropout=0.2), teacher, lr=0.3, momentum=0.9,
                  batch_size=16, num_steps=60, measure_every=20, seed=8)
    assert not runs[0].record.equals(other.record)


def test_callbacks_are_merged_into_rows(teacher):
    calls = []

    def meter(state):
        calls.append(state.step)
        assert state.X_train is teacher.X_train and state.batch_size == 40
        return {"my_value": float(state.step) * 2}

    result = train(small_model(teacher), teacher, lr=0.1, num_steps=30, batch_size=40,
                   measure_every=15, callbacks=[meter])
    assert calls == [0, 15, 30]
    assert result.record["my_value"].tolist() == [0.0, 30.0, 60.0]


def test_divergence_stops_reports_step_and_returns_record(teacher):
    with pytest.warns(TrainingDivergedWarning, match=r"diverged at step \d+"):
        result = train(small_model(teacher), teacher, lr=500.0, num_steps=200,
                       loss_fn="half_mse", measure_every=50)
    assert result.diverged and result.diverged_at < 200
    assert result.record["step"].iloc[-1] == result.diverged_at
    assert "lr=500" in result.message
    assert len(result.step_losses) == result.diverged_at
    from edutools.face.plots import plot_loss_curves

    ax = plot_loss_curves(result.record, diverged_at=result.diverged_at)
    assert ax.get_title() and ax.get_xlabel() == "training step"


def test_no_warning_and_no_divergence_at_small_lr(teacher):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingDivergedWarning)
        result = train(small_model(teacher), teacher, lr=0.05, num_steps=20, measure_every=10)
    assert not result.diverged and result.diverged_at is None


def test_stop_at_loss(teacher):
    result = train(small_model(teacher), teacher, lr=1.0, num_steps=5000, measure_every=10,
                   stop_at_loss=0.6)
    assert result.record["train_loss"].iloc[-1] <= 0.6
    assert result.record["step"].iloc[-1] < 5000 and "Reached" in result.message


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": -0.1}, "lr"),
    ({"lr": 0.0}, "lr"),
    ({"momentum": 1.2}, "momentum must lie in \\[0, 1\\), got 1.2"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"batch_size": 201}, "batch_size=201 is larger than the training set \\(200"),
    ({"num_steps": 0}, "num_steps"),
    ({"nesterov": True}, "nesterov"),
    ({"loss_fn": "hinge"}, "loss_fn"),
])
def test_bad_input_names_the_parameter(teacher, kwargs, match):
    args = {"lr": 0.1, "num_steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        train(small_model(teacher), teacher, **args)


def test_model_on_wrong_device_or_wrong_data_type(teacher):
    with pytest.raises(ValueError, match="Dataset"):
        train(small_model(teacher), (teacher.X_train, teacher.y_train), lr=0.1, num_steps=1)
    model = small_model(teacher).to(torch.float64)
    model.to("meta")
    with pytest.raises(ValueError, match="model is on meta"):
        train(model, teacher, lr=0.1, num_steps=1)


def test_custom_optimizer_with_closure(teacher):
    closures = []

    class CountingSGD(torch.optim.SGD):
        requires_closure = True

        def step(self, closure=None):
            closures.append(closure is not None)
            return super().step()

    result = train(small_model(teacher), teacher, lr=0.1, num_steps=3, measure_every=3,
                   optimizer=lambda params: CountingSGD(params, lr=0.1))
    assert closures == [True, True, True] and result.config["optimizer"] == "CountingSGD"
    assert math.isfinite(result.final["train_loss"])
