"""Lesson 06's SAM + momentum engine: SAM's heavy-ball edge, the SAM-step batch sharpness meter,
short runs and the plateau table."""

import math
import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from edutools.engine.experiments.sam_momentum import (
    MomentumRun,
    SamBatchSharpnessMeter,
    late_means,
    sam_momentum_edge,
    sam_momentum_run,
    sam_plateau_table,
)
from edutools.engine.sharpness import batch_sharpness
from edutools.ground.models import half_mse, mlp
from edutools.ground.theory import momentum_edge, sam_edge


def test_sam_momentum_edge_solves_its_equation_and_reduces_to_the_known_edges():
    lr, beta, rho, g = 0.3, 0.5, 0.05, 0.2
    edge = sam_momentum_edge(lr, beta, rho, g)
    assert edge + rho * edge**2 / g == pytest.approx(momentum_edge(lr, beta))
    assert edge < momentum_edge(lr, beta)
    assert sam_momentum_edge(0.2, 0.0, rho, g) == pytest.approx(sam_edge(0.2, rho, g))
    assert sam_momentum_edge(lr, beta, 0.0, g) == momentum_edge(lr, beta)
    assert sam_momentum_edge(lr, beta, rho, 0.0) == 0.0
    assert sam_momentum_edge(lr, beta, rho, 1.0) > sam_momentum_edge(lr, beta, rho, 0.1)
    for bad in (dict(rho=-1.0), dict(grad_norm=float("nan")), dict(momentum=1.0)):
        with pytest.raises(ValueError):
            sam_momentum_edge(**(dict(lr=lr, momentum=beta, rho=rho, grad_norm=g) | bad))


def state(model, X, y, *, step=0, batch_size=8):
    return SimpleNamespace(model=model, loss_fn=half_mse, X_train=X, y_train=y, step=step,
                           batch_size=batch_size)


def test_with_rho_zero_the_meter_is_batch_sharpness_on_the_same_batches():
    torch.manual_seed(0)
    model = mlp([5, 7, 3], activation="tanh", seed=1)
    X, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    values = SamBatchSharpnessMeter(rho=0.0, num_batches=6, seed=3)(state(model, X, y))
    reference = batch_sharpness(model, half_mse, X, y, batch_size=8, num_batches=6, seed=3)
    assert values["batch_sharpness"] == pytest.approx(reference.mean, rel=1e-5)
    assert values["batch_sharpness_se"] == pytest.approx(reference.standard_error, rel=1e-4)
    assert values["sam_batch_sharpness"] == pytest.approx(values["batch_sharpness"])


def test_sam_step_sharpness_on_a_linear_model_matches_the_explicit_formula():
    # Linear model, half-MSE: H_B = X_BᵀX_B/n_B (per output) is known exactly.
    torch.manual_seed(1)
    model = torch.nn.Linear(4, 1, bias=False)
    X, y = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 1, dtype=torch.float64)
    model = model.double()
    rho = 0.3
    values = SamBatchSharpnessMeter(rho=rho, num_batches=1, seed=0)(
        state(model, X, y, batch_size=10))
    H = X.T @ X / 10
    g = H @ model.weight.detach()[0] - X.T @ y[:, 0] / 10
    d = g + rho / torch.linalg.vector_norm(g) * (H @ g)
    assert values["batch_sharpness"] == pytest.approx(float(g @ H @ g / (g @ g)), rel=1e-9)
    assert values["sam_batch_sharpness"] == pytest.approx(float(d @ H @ d / (g @ d)), rel=1e-9)
    assert values["batch_grad_norm"] == pytest.approx(float(torch.linalg.vector_norm(g)))
    assert values["sam_batch_sharpness"] > values["batch_sharpness"]
    assert math.isnan(values["batch_sharpness_se"])


def test_a_short_mini_batch_run_records_both_sharpnesses_and_is_picklable():
    seen = []
    run = sam_momentum_run(optimizer="SAM", batch_size=50, num_steps=20, num_batches=3,
                           watch=seen.append)
    assert isinstance(run, MomentumRun) and run.rho == 0.05 and len(run.record) == 11
    assert {"lambda_max", "batch_sharpness", "sam_batch_sharpness", "momentum_edge",
            "sam_momentum_edge"} <= set(run.record)
    assert len(seen) == 11 and isinstance(seen[-1], MomentumRun)
    assert (run.record["sam_momentum_edge"] < run.record["momentum_edge"]).all()
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(run)).record, run.record)
    sgd = sam_momentum_run(optimizer="SGD", batch_size=1000, num_steps=10, measure_every=5)
    assert sgd.rho == 0 and "batch_sharpness" not in sgd.record and len(sgd.record) == 3
    with pytest.raises(ValueError, match="optimizer"):
        sam_momentum_run(optimizer="Adam", batch_size=50)


def synthetic_run(name, batch_size, *, lam, bs=None, sam_bs=None, norms=None):
    steps = np.arange(0, 1001, 100)
    record = pd.DataFrame({"step": steps, "lambda_max": lam, "grad_norm": norms or 0.2,
                           "sam_momentum_edge": 5.0})
    if bs is not None:
        record["batch_sharpness"], record["sam_batch_sharpness"] = bs, sam_bs
    config = {"optimizer": name, "batch_size": batch_size, "lr": 0.3, "momentum": 0.5,
              "rho": 0.05 if name == "SAM" else 0.0, "num_steps": 1000}
    return MomentumRun(config=config, record=record, seconds=1.0)


def test_settled_values_and_the_plateau_table():
    lam = np.r_[np.zeros(7), 4.0, 5.0, 6.0, 5.0]  # late window (last 30%): steps 700-1000
    run = synthetic_run("SAM", 50, lam=lam, bs=np.r_[np.zeros(7), 2, 2, 2, 2.0],
                        sam_bs=np.r_[np.zeros(7), 3, 3, 3, 3.0])
    values = late_means(run)
    assert values["lambda_max"] == pytest.approx(5.0)
    assert values["batch_sharpness"] == pytest.approx(2.0)
    full = synthetic_run("SGD", 1000, lam=np.full(11, 9.0))
    assert math.isnan(late_means(full)["batch_sharpness"])
    table = sam_plateau_table({("SAM", 50): run, ("SGD", 1000): full})
    lower, upper = 2 * 0.5 / 0.3, 2 * 1.5 / 0.3
    assert table.loc[("SAM", 50), "BS / 2(1−β)/η"] == pytest.approx(2.0 / lower)
    assert table.loc[("SAM", 50), "SAM-step BS / 2(1−β)/η"] == pytest.approx(3.0 / lower)
    assert table.loc[("SAM", 50), "λ_max / SAM edge"] == pytest.approx(1.0)
    assert table.loc[("SGD", 1000), "λ_max / 2(1+β)/η"] == pytest.approx(9.0 / upper)
    with pytest.raises(ValueError, match="fraction"):
        late_means(run, fraction=0.0)
