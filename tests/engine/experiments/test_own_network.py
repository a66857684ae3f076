"""Lesson 08's experiment (own_network): the CNN, the monitored plain loops and their records,
on tiny settings, against independent references."""

import math

import numpy as np
import pytest
import torch

from edutools.engine.experiments import own_network
from edutools.engine.sharpness import top_eigenvalues
from edutools.ground.models import half_mse


def test_the_cnn_takes_flat_digits_and_is_seeded():
    data = own_network.digits_images(seed=0, num_train=20, device="cpu")
    assert data.X_train.shape == (20, 64)
    model = own_network.small_cnn(seed=3, device="cpu")
    assert model(data.X_train).shape == (20, 10)
    assert sum(p.numel() for p in model.parameters()) == 3818
    again = own_network.small_cnn(seed=3, device="cpu")
    other = own_network.small_cnn(seed=4, device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(),
                                                 strict=True))
    assert not torch.equal(next(model.parameters()), next(other.parameters()))


def test_a_monitored_run_records_the_edge_of_its_optimizer_and_the_curvature_there():
    run = own_network.run_monitored(optimizer="sgd", lr=0.1, momentum=0.9, num_steps=20,
                                    every=10, num_train=64, seed=1)
    record = run.record
    assert list(record["step"]) == [10, 20] and not run.diverged
    assert np.allclose(record["edge"], 2 * 1.9 / 0.1)  # heavy ball, full batch
    assert run.setting("lr") == 0.1 and run.edges.full_batch == pytest.approx(38.0)
    assert len(run.step_losses) == 20 and math.isfinite(record["train_loss"].iloc[-1])
    assert record["train_loss"].iloc[-1] == run.step_losses[19]
    # the last measurement is λ_max at the final weights: retrain them without the monitor
    data = own_network.digits_images(seed=1, num_train=64)
    model = own_network.small_cnn(seed=1, device=data.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(20):
        opt.zero_grad()
        half_mse(model(data.X_train), data.y_train).backward()
        opt.step()
    final = top_eigenvalues(model, half_mse, data.X_train, data.y_train, tol=1e-6)
    assert record["lambda_max"].iloc[-1] == pytest.approx(float(final.eigenvalues[0]), rel=1e-3)


def test_adam_is_measured_on_its_preconditioned_sharpness():
    run = own_network.run_monitored(optimizer="adam", lr=0.01, num_steps=10, every=5,
                                    num_train=32, seed=0)
    assert (run.record["curvature"] == "preconditioned_sharpness").all()
    assert np.allclose(run.record["edge"], (2 + 2 * 0.9) / ((1 - 0.9) * 0.01))
    assert run.setting("momentum") == 0.0 and "Adam" in run.verdict


def test_partial_runs_carry_the_settings_and_divergence_names_the_lr():
    seen = []
    own_network.run_monitored(optimizer="sgd", lr=0.05, num_steps=10, every=5, num_train=32,
                              watch=seen.append)
    assert [len(p.record) for p in seen] == [1, 2] and all(p.partial for p in seen)
    assert seen[0].setting("lr") == 0.05
    blown = own_network.run_monitored(optimizer="sgd", lr=50.0, num_steps=50, every=5,
                                      num_train=32)
    assert blown.diverged and "lr=50" in blown.message


def test_bad_optimizer_name_is_named():
    with pytest.raises(ValueError, match="'rmsprop'"):
        own_network.make_optimizer("rmsprop", [torch.zeros(1, requires_grad=True)], lr=0.1)


def test_the_seed_recipe_compares_batch_sharpness_with_the_small_batch_edge():
    run = own_network.run_seed_recipe(epochs=1, every=30, seed=0)
    record = run.record
    assert (record["curvature"] == "batch_sharpness").all()
    assert np.allclose(record["edge"], 2 * (1 - 0.9) / 0.01)
    assert (record["batch_sharpness_se"] > 0).all() and len(run.step_losses) == 63
