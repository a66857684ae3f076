"""Every bad input of issue 18's probe gets a ValueError/TypeError naming the argument and the
value, where it enters; divergence messages name the setting in force."""

import math
import warnings

import pytest
import torch
from torch import nn

from edutools.engine.sam import SAM
from edutools.engine.sharpness import batch_sharpness, lambda_max, top_eigenvalues
from edutools.engine.training import train
from edutools.engine.training.result import TrainingDivergedWarning
from edutools.ground.data import Dataset, teacher_task
from edutools.ground.models import mlp
from edutools.ground.theory.edges import momentum_edge

NAN = float("nan")


def _task() -> Dataset:
    return teacher_task(num_train=64, num_val=32, input_dim=5, num_classes=3, seed=0)


def _model(data: Dataset, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return mlp([data.input_dim, 8, data.output_dim]).to(dtype)


def _with(data: Dataset, **tensors) -> Dataset:
    fields = dict(X_train=data.X_train, y_train=data.y_train, X_val=data.X_val, y_val=data.y_val)
    return Dataset(data.name, **{**fields, **tensors}, num_classes=data.num_classes)


def _nan_at_first(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    tensor.view(-1)[0] = NAN
    return tensor


def _train(data=None, model=None, **kwargs):
    data = _task() if data is None else data
    return train(_model(data) if model is None else model, data,
                 **{"lr": 0.1, "num_steps": 5, "progress": False, **kwargs})


def _sam(**base):
    return SAM(_model(_task()).parameters(), torch.optim.SGD, rho=0.05, **base)


def _measure(fn, X=None, **kwargs):
    data = _task()
    return fn(_model(data), nn.functional.cross_entropy, data.X_train if X is None else X,
              data.y_train, **kwargs)


CASES = [
    ("NaN in X_train", ValueError, r"X_train contains 1 non-finite",
     lambda: _with(_task(), X_train=_nan_at_first(_task().X_train))),
    ("NaN in X_val", ValueError, r"X_val contains 1 non-finite",
     lambda: _with(_task(), X_val=_nan_at_first(_task().X_val))),
    ("SAM lr=nan through train", ValueError, r"SAM's SGD lr .* got nan",
     lambda: _train(optimizer=lambda p: SAM(p, torch.optim.SGD, rho=0.05, lr=NAN))),
    ("SAM lr=inf", ValueError, r"SAM's SGD lr .* got inf", lambda: _sam(lr=math.inf)),
    ("SAM lr=0", ValueError, r"SAM's SGD lr .* got 0", lambda: _sam(lr=0.0)),
    ("SAM momentum=1", ValueError, r"SAM's SGD momentum .* got 1", lambda: _sam(lr=0.1,
                                                                               momentum=1.0)),
    ("SAM momentum=1.5", ValueError, r"SAM's SGD momentum .* got 1.5",
     lambda: _sam(lr=0.1, momentum=1.5)),
    ("empty training set", ValueError, r"X_train must contain at least one sample, got 0",
     lambda: _with(_task(), X_train=_task().X_train[:0], y_train=_task().y_train[:0])),
    ("float64 model, float32 data", TypeError, r"torch.float64 but data.X_train is "
     r"torch.float32", lambda: _train(model=_model(_task(), torch.float64))),
    ("X/y length mismatch", ValueError, r"X_train and y_train .* got 64 and 10",
     lambda: _with(_task(), y_train=_task().y_train[:10])),
    ("nn.MSELoss as a class", TypeError, r"loss_fn=MSELoss is a class",
     lambda: _train(loss_fn=nn.MSELoss)),
    ("top_eigenvalues(max_hvps=2.5)", ValueError, r"max_hvps must be a whole number .* 2.5",
     lambda: _measure(top_eigenvalues, max_hvps=2.5)),
    ("batch_sharpness(batch_size=8.0)", ValueError, r"batch_size must be a whole number .* 8.0",
     lambda: _measure(batch_sharpness, batch_size=8.0, num_batches=2)),
    ("lambda_max with NaN X", ValueError, r"X contains 1 non-finite",
     lambda: _measure(lambda_max, X=_nan_at_first(_task().X_train))),
    ("batch_sharpness with NaN X", ValueError, r"X contains 1 non-finite",
     lambda: _measure(batch_sharpness, X=_nan_at_first(_task().X_train), batch_size=8)),
    ("lambda_max with an unknown loss name", ValueError, r"loss_fn must be one of .*'hinge'",
     lambda: lambda_max(_model(_task()), "hinge", _task().X_train, _task().y_train)),
    ("momentum_edge(nesterov='no')", TypeError, r"nesterov must be True or False, got 'no'",
     lambda: momentum_edge(0.1, 0.9, nesterov="no")),
    ("train(nesterov='no')", TypeError, r"nesterov must be True or False, got 'no'",
     lambda: _train(momentum=0.9, nesterov="no")),
]


@pytest.mark.parametrize(("error", "pattern", "call"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_is_rejected_naming_the_argument_and_value(error, pattern, call):
    with pytest.raises(error, match=pattern):
        call()


def test_a_model_with_nan_weights_is_blamed_not_the_learning_rate():
    data = _task()
    model = _model(data)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = NAN
    with pytest.raises(ValueError, match="the model's parameters contains? 1 non-finite"):
        _train(data=data, model=model)
    with pytest.raises(ValueError, match="the model's parameter .* non-finite"):
        lambda_max(model, "cross_entropy", data.X_train, data.y_train)


def test_lambda_max_accepts_the_loss_names_train_accepts():
    data = _task()
    by_name = lambda_max(_model(data), "cross_entropy", data.X_train, data.y_train)
    by_function = lambda_max(_model(data), nn.functional.cross_entropy, data.X_train,
                             data.y_train)
    assert by_name == pytest.approx(by_function, rel=1e-6) and by_name > 0


def test_an_empty_validation_set_warns_that_val_loss_is_nan():
    data = _with(_task(), X_val=_task().X_val[:0], y_val=_task().y_val[:0])
    with pytest.warns(UserWarning, match="validation set is empty"):
        result = _train(data=data)
    assert math.isnan(result.record.val_loss.iloc[-1])


def test_cross_entropy_blow_up_is_detected_and_names_the_lr():
    with pytest.warns(TrainingDivergedWarning, match=r"not falling .* lr=100 is too large"):
        result = _train(lr=100.0, num_steps=50)
    assert result.diverged and result.diverged_at <= 50
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingDivergedWarning)
        assert not _train(lr=1.0, num_steps=50).diverged  # a good run is not flagged


def test_divergence_names_the_optimizers_lr_not_trains():
    def sam(params):
        return SAM(params, torch.optim.SGD, rho=0.05, lr=100.0, momentum=0.9)

    with pytest.warns(TrainingDivergedWarning, match=r"lr=100 is too large .*SAM lr=100, "
                                                     r"momentum=0.9") as caught:
        _train(lr=0.1, num_steps=60, optimizer=sam)
    assert "lr=0.1" not in str(caught[0].message)
