"""Self-stabilization (lesson 01): the meter on a model whose Hessian is known, and the summary's
reading of a cycle built from the quadratic model itself."""

import numpy as np
import pandas as pd
import pytest
import torch

from edutools.engine.experiments import self_stabilization as ss
from edutools.engine.sharpness.operators.hessian import exact_hessian
from edutools.engine.training import TrainState
from edutools.ground.data import Dataset
from edutools.ground.models import half_mse


def linear_problem():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=generator) * torch.tensor([3.0, 1.0, 1.0, 0.5, 0.5])
    y = torch.randn(64, 1, generator=generator)  # one output: a simple top eigenvalue
    model = torch.nn.Linear(5, 1, bias=False)
    torch.nn.init.normal_(model.weight, generator=generator)
    data = Dataset(name="linear", X_train=X, y_train=y, X_val=X[:8], y_val=y[:8])
    return model, data


def test_meter_reads_the_top_eigenvalue_and_the_displacement_along_it():
    model, data = linear_problem()
    state = TrainState(step=0, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                       loss_fn=half_mse, data=data, lr=0.1, momentum=0.0, nesterov=False,
                       batch_size=64)
    meter = ss.EdgeOscillationMeter(seed=0)
    values = meter(state)
    hessian = exact_hessian(model, half_mse, data.X_train, data.y_train)
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian.double())
    assert values["sharpness"] == pytest.approx(float(eigenvalues[-1]), rel=1e-4)
    model.zero_grad()
    half_mse(model(data.X_train), data.y_train).backward()
    gradient = model.weight.grad.reshape(-1).double()
    top = eigenvectors[:, -1]
    expected = float(top @ gradient) / float(eigenvalues[-1])
    assert abs(values["displacement"]) == pytest.approx(abs(expected), rel=1e-3)


def synthetic_cycle(lr=0.2, onset_size=1e-8):
    """S·η/2 rising 0.99 → 1.06 over 300 steps, then falling once x is large; x as the quadratic
    model has it."""
    ratio = np.concatenate([np.linspace(0.99, 1.06, 300), np.linspace(1.06, 0.93, 40),
                            np.linspace(0.93, 0.97, 60)])
    size = np.empty_like(ratio)
    size[0] = onset_size
    for t in range(1, len(ratio)):
        size[t] = size[t - 1] * abs(1 - 2 * ratio[t - 1])
    sign = np.where(np.arange(len(ratio)) % 2 == 0, 1.0, -1.0)
    record = pd.DataFrame({"step": np.arange(1000, 1000 + len(ratio)),
                           "train_loss": np.full(len(ratio), 0.05),
                           "sharpness": ratio * 2 / lr, "displacement": sign * size})
    return ss.StabilizationCycle(record=record, config={"lr": lr, "seed": 0, "start_step": 1000})


def test_summary_reads_the_quadratic_model_back():
    cycle = synthetic_cycle()
    facts = ss.cycle_summary(cycle)
    assert facts.growth_error < 1e-9  # the record *is* the model
    assert facts.sharpness_peak_step == 1299
    assert facts.sharpness_peak_step < facts.displacement_peak_step
    assert facts.ratio_at_displacement_peak == pytest.approx(1.0, abs=0.01)
    assert facts.trough_ratio == pytest.approx(0.93)
    assert facts.drop_when_large < 0 < facts.rise_when_small
    predicted = ss.predicted_size(cycle, facts)
    measured = cycle.record.set_index("step")["displacement"].abs()
    assert np.allclose(predicted, measured.loc[predicted.index], rtol=1e-9)


def test_summary_refuses_a_cycle_that_has_not_peaked():
    cycle = synthetic_cycle()
    unfinished = ss.StabilizationCycle(record=cycle.record.iloc[:300], config=cycle.config)
    with pytest.raises(ValueError, match="had not peaked"):
        ss.cycle_summary(unfinished)


def test_cycle_start_is_the_last_measurement_below_the_edge():
    record = pd.DataFrame({"step": [0, 100, 200, 300, 400],
                           "lambda_max": [4.0, 8.0, 9.9, 10.2, 9.8]})
    assert ss.cycle_start(record, lr=0.2) == 200
    with pytest.raises(ValueError, match="never reached"):
        ss.cycle_start(record.iloc[:3], lr=0.2)
