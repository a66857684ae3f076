"""The one-step condition: a step along g_B raises L_B iff η·gᵀHg/‖g‖² > 2 (to second order)."""

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine.experiments import eoss
from edutools.engine.experiments.one_step import memorise_one_step, one_step_test


def linear_model_and_data(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(4, 1, bias=False)
    X = torch.randn(64, 4) * torch.tensor([3.0, 1.0, 0.5, 0.1])
    return model, X, X @ torch.randn(4, 1)


def test_on_a_quadratic_loss_the_prediction_is_exact():
    model, X, y = linear_model_and_data()
    before = [p.detach().clone() for p in model.parameters()]
    test = one_step_test(model, X, y, lr=0.25, batch_size=4, num_batches=60)
    assert test.agreement == 1.0  # half-MSE of a linear model: no O(η³) term
    table = test.table
    np.testing.assert_allclose(table["actual change"], table["predicted change"], rtol=1e-3,
                               atol=1e-5)
    assert 0 < test.rise_fraction < 1, "the test should see both outcomes"
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_bad_batch_size_names_the_value():
    model, X, y = linear_model_and_data()
    with pytest.raises(ValueError, match="batch_size=100"):
        one_step_test(model, X, y, lr=0.1, batch_size=100)


def test_memorise_one_step_needs_kept_parameters():
    with pytest.raises(ValueError, match="final_params"):
        memorise_one_step(eoss.SGDRun(record=None, config={"seed": 0}))


def test_memorise_run_keeps_its_parameters_and_the_test_runs_there():
    run = eoss.run_memorise(seed=0, num_steps=200)
    assert run.final_params is not None and run.final_params.ndim == 1
    test = memorise_one_step(run, num_batches=20)
    assert len(test.table) == 20 and 0 <= test.agreement <= 1
