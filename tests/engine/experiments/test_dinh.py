"""Dinh et al.'s rescaling: same function, Hessian transformed as D⁻¹HD⁻¹."""

import pytest
import torch

from edutools.engine.experiments.dinh import parameter_slices, rescale_layers, rescaling_factors
from edutools.engine.sharpness import exact_hessian, flatten_params
from edutools.ground.models import cross_entropy, mlp


def small_relu(widths=(5, 6, 4, 3), **kwargs):
    return mlp(list(widths), activation="relu", seed=0, dtype=torch.float64, **kwargs)


def max_difference(model_a, model_b, X):
    with torch.no_grad():
        return float((model_a(X) - model_b(X)).abs().max())


def data(num=40, dim=5, classes=3):
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(num, dim, generator=generator, dtype=torch.float64)
    y = torch.randint(0, classes, (num,), generator=generator)
    return X, y


@pytest.mark.parametrize("alpha", [0.1, 7.0])
@pytest.mark.parametrize("layer", [0, 1])
def test_function_is_unchanged_and_original_untouched(alpha, layer):
    model = small_relu()
    with torch.no_grad():  # non-zero biases, so that scaling the bias matters
        for module in model:
            if isinstance(module, torch.nn.Linear):
                module.bias.normal_(generator=torch.Generator().manual_seed(2))
    before = flatten_params(model).clone()
    X, _ = data()
    rescaled = rescale_layers(model, alpha, layer=layer)
    assert torch.equal(flatten_params(model), before)
    assert max_difference(rescaled, model, X) < 1e-12
    assert not torch.allclose(flatten_params(rescaled), before)


def test_parameters_move_as_documented():
    model = small_relu()
    rescaled = rescale_layers(model, 3.0, layer=0)
    assert torch.allclose(rescaled[1].weight, 3.0 * model[1].weight)
    assert torch.allclose(rescaled[1].bias, 3.0 * model[1].bias)
    assert torch.allclose(rescaled[3].weight, model[3].weight / 3.0)
    assert torch.equal(rescaled[3].bias, model[3].bias)
    assert torch.equal(rescaled[5].weight, model[5].weight)


@pytest.mark.parametrize("layer", [0, 1])
def test_factors_map_old_parameters_to_new(layer):
    model = small_relu()
    factors = rescaling_factors(model, 2.5, layer=layer)
    rescaled = rescale_layers(model, 2.5, layer=layer)
    assert factors.shape == flatten_params(model).shape
    assert torch.allclose(flatten_params(rescaled), factors * flatten_params(model), rtol=1e-15)
    assert set(factors.unique().tolist()) == {1.0, 2.5, 1 / 2.5}


def test_hessian_transforms_as_d_inverse_h_d_inverse():
    model = small_relu()
    X, y = data()
    alpha = 4.0
    rescaled = rescale_layers(model, alpha)
    H = exact_hessian(model, cross_entropy, X, y)
    H_new = exact_hessian(rescaled, cross_entropy, X, y)
    factors = rescaling_factors(model, alpha)
    expected = H / torch.outer(factors, factors)
    assert float((H_new - expected).abs().max()) < 1e-12 * float(expected.abs().max())
    slices = parameter_slices(model)
    w2 = slices["3.weight"]
    assert torch.allclose(H_new[w2, w2], alpha**2 * H[w2, w2], rtol=1e-10, atol=0)
    # Same function, different sharpness.
    top_old, top_new = torch.linalg.eigvalsh(H)[-1], torch.linalg.eigvalsh(H_new)[-1]
    assert top_new > 2 * top_old


def test_parameter_slices_cover_the_flat_vector_in_order():
    model = small_relu()
    slices = parameter_slices(model)
    assert list(slices) == [name for name, _ in model.named_parameters()]
    stops = [s.stop for s in slices.values()]
    assert [s.start for s in slices.values()] == [0] + stops[:-1]
    assert stops[-1] == flatten_params(model).numel()


def test_dropout_between_layers_is_allowed():
    model = small_relu(dropout=0.3).eval()
    X, _ = data()
    assert max_difference(rescale_layers(model, 5.0), model, X) < 1e-12


def test_non_homogeneous_activation_is_refused():
    model = mlp([5, 6, 3], activation="tanh", seed=0, dtype=torch.float64)
    with pytest.raises(ValueError, match="Tanh.*not positively homogeneous"):
        rescale_layers(model, 2.0)
    with pytest.raises(ValueError, match="homogeneous"):
        rescaling_factors(model, 2.0)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf"), True])
def test_bad_alpha_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        rescale_layers(small_relu(), alpha)


@pytest.mark.parametrize("layer", [-1, 2, 1.0])
def test_bad_layer_is_refused(layer):
    with pytest.raises(ValueError, match="layer"):
        rescale_layers(small_relu(), 2.0, layer=layer)


def test_non_sequential_is_refused():
    with pytest.raises(ValueError, match="Sequential"):
        rescale_layers(torch.nn.Linear(3, 2), 2.0)


def test_rescaling_check_and_alpha_sweep():
    from edutools.engine.experiments.dinh import alpha_sweep, rescaling_check

    model = small_relu()
    X, y = data()
    check = rescaling_check(model, 4.0, cross_entropy, X, y, inputs=(X,), layer=0)
    assert check["max |Δ output| (train and validation)"] < 1e-12
    for key in ("first-layer weight block vs H/α²", "second-layer weight block vs α²·H",
                "whole Hessian vs D⁻¹HD⁻¹"):
        assert check[key] < 1e-10, key
    assert check["λ_max after"] != pytest.approx(check["λ_max before"], rel=1e-3)
    sweep = alpha_sweep(model, [0.5, 1.0, 2.0], cross_entropy, X, y)
    assert list(sweep.index) == [0.5, 1.0, 2.0]
    assert float(sweep["training loss"].max() - sweep["training loss"].min()) < 1e-12
    assert sweep.loc[1.0, "λ_max"] == pytest.approx(
        float(torch.linalg.eigvalsh(exact_hessian(model, cross_entropy, X, y))[-1]), rel=1e-6)
