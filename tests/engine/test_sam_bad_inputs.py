"""edutools.engine.sam: bad arguments and protocol misuse are named.
"""

from __future__ import annotations

import pytest
import torch

from edutools.engine.sam import (
    SAM,
    m_sharpness_gradient,
)
from tests.engine.sam_reference import (
    LR,
    loss_fn,
    make_data,
    make_model,
)

# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [-0.1, float("nan"), float("inf"), "0.05"])
def test_bad_rho(rho):
    with pytest.raises(ValueError, match="rho"):
        SAM(make_model().parameters(), rho=rho, lr=LR)


@pytest.mark.parametrize("base, match", [
    ("instance", "not an instance"), (int, "subclass of torch.optim.Optimizer"),
    (lambda params: None, "subclass of torch.optim.Optimizer"), (SAM, "SAM itself")])
def test_bad_base_optimizer(base, match):
    model = make_model()
    if base == "instance":
        base = torch.optim.SGD(model.parameters(), lr=LR)
    with pytest.raises(TypeError, match=match):
        SAM(model.parameters(), base, rho=0.05, lr=LR)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"adaptive": 1}, TypeError, "adaptive"), ({"asam_eta": -0.01}, ValueError, "asam_eta"),
    ({"ascent_every": 0}, ValueError, "ascent_every"),
    ({"ascent_every": 2.5}, ValueError, "ascent_every")])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        SAM(make_model().parameters(), rho=0.05, lr=LR, **kwargs)


def test_protocol_misuse():
    model, (X, y) = make_model(), make_data()
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    with pytest.raises(RuntimeError, match="before first_step"):
        sam.second_step()
    with pytest.raises(TypeError, match="closure"):
        sam.step()
    with pytest.raises(TypeError, match="callable"):
        sam.step(3)
    loss_fn(model(X), y).backward()
    sam.first_step()
    with pytest.raises(RuntimeError, match="twice"):
        sam.first_step()
    with pytest.raises(ValueError, match="SAM state_dict"):
        sam.load_state_dict(torch.optim.SGD(model.parameters(), lr=LR).state_dict())


def test_closure_returning_none_raises_and_leaves_theta():
    model, (X, y) = make_model(), make_data()
    sam = SAM(model.parameters(), rho=0.05, lr=LR)
    before = [p.detach().clone() for p in model.parameters()]

    def forgetful():
        loss_fn(model(X), y).backward()

    loss_fn(model(X), y).backward()
    with pytest.raises(TypeError, match="returned None"):
        sam.step(forgetful)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert not sam.perturbed


@pytest.mark.parametrize("m, match", [(0, "m must"), (25, "larger than the batch"),
                                      (2.0, "m must")])
def test_m_sharpness_bad_m(m, match):
    model, (X, y) = make_model(), make_data(n=24)
    with pytest.raises(ValueError, match=match):
        m_sharpness_gradient(model, loss_fn, X, y, rho=0.05, m=m)


def test_m_sharpness_bad_shapes():
    model, (X, y) = make_model(), make_data(n=24)
    with pytest.raises(ValueError, match="same number of samples"):
        m_sharpness_gradient(model, loss_fn, X, y[:10], rho=0.05, m=4)
    sam = SAM(model[0].parameters(), rho=0.05, lr=LR)
    with pytest.raises(ValueError, match="does not own"):
        sam.m_sharpness_step(model, loss_fn, X, y, m=4)
