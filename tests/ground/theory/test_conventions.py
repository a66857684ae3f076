"""The momentum convention converter: conversions checked by running the three update rules."""

import dataclasses

import numpy as np
import pytest
import torch

from edutools.ground.theory.conventions import (
    CONVENTIONS,
    USED_BY,
    conversion_table,
    from_pytorch,
    momentum_step,
    momentum_trajectory,
    to_pytorch,
    velocity_buffer_rescale,
)

CURVATURES = np.array([3.0, 1.0, 0.2, 0.01])
OPTIMUM = np.array([1.0, -2.0, 0.5, 3.0])


def quadratic_grad(theta):
    return CURVATURES * (theta - OPTIMUM)


@pytest.mark.parametrize("lr, momentum", [(0.1, 0.9), (0.3, 0.5), (0.05, 0.0), (0.5, 0.99)])
def test_converted_settings_make_identical_trajectories(lr, momentum):
    theta0 = np.array([0.3, 0.7, -1.0, 2.0])
    reference = momentum_trajectory("pytorch", quadratic_grad, theta0, lr=lr, momentum=momentum,
                                    num_steps=200)
    for convention in CONVENTIONS:
        setting = from_pytorch(convention, lr, momentum)
        assert setting.pytorch_lr == pytest.approx(lr)
        path = momentum_trajectory(convention, quadratic_grad, theta0, lr=setting.lr,
                                   momentum=momentum, num_steps=200)
        np.testing.assert_allclose(path, reference, rtol=1e-9, atol=1e-10)


def test_same_numbers_in_other_conventions_differ():
    theta0 = np.ones(4)
    paths = {c: momentum_trajectory(c, quadratic_grad, theta0, lr=0.1, momentum=0.9,
                                    num_steps=50) for c in CONVENTIONS}
    # averaged with α = 0.1 is PyTorch with η = 0.01: a ten times smaller effective step
    assert not np.allclose(paths["averaged"], paths["pytorch"])
    np.testing.assert_allclose(paths["velocity"], paths["pytorch"], rtol=1e-9)
    averaged_as_pytorch = momentum_trajectory("pytorch", quadratic_grad, theta0, lr=0.01,
                                              momentum=0.9, num_steps=50)
    np.testing.assert_allclose(paths["averaged"], averaged_as_pytorch, rtol=1e-9)


def test_velocity_factor_relates_the_velocities_at_every_step():
    lr, momentum = 0.2, 0.7
    state = {c: (np.ones(4), np.zeros(4)) for c in CONVENTIONS}
    settings = {c: from_pytorch(c, lr, momentum) for c in CONVENTIONS}
    for _ in range(20):
        for c in CONVENTIONS:
            theta, velocity = state[c]
            state[c] = momentum_step(c, theta, velocity, quadratic_grad(theta),
                                     lr=settings[c].lr, momentum=momentum)
        v_torch = state["pytorch"][1]
        for c in CONVENTIONS:
            np.testing.assert_allclose(state[c][1], settings[c].velocity_factor * v_torch,
                                       rtol=1e-9, atol=1e-12)


def test_pytorch_convention_matches_torch_sgd():
    lr, momentum = 0.15, 0.8
    theta = torch.tensor([0.3, 0.7, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=lr, momentum=momentum)
    curvatures = torch.as_tensor(CURVATURES)
    optimum = torch.as_tensor(OPTIMUM)
    torch_path = [theta.detach().numpy().copy()]
    for _ in range(30):
        optimizer.zero_grad()
        (0.5 * (curvatures * (theta - optimum) ** 2).sum()).backward()
        optimizer.step()
        torch_path.append(theta.detach().numpy().copy())
    averaged = from_pytorch("averaged", lr, momentum)
    ours = momentum_trajectory("averaged", quadratic_grad, torch_path[0], lr=averaged.lr,
                               momentum=momentum, num_steps=30)
    np.testing.assert_allclose(ours, np.asarray(torch_path), rtol=1e-9, atol=1e-12)


def test_edges_and_effective_step_of_the_averaged_form():
    setting = to_pytorch("averaged", 1.0, 0.9)
    assert setting.pytorch_lr == pytest.approx(0.1)
    assert setting.effective_lr == pytest.approx(1.0)
    assert setting.full_batch_edge == pytest.approx(2 * 1.9 / 0.1)
    assert setting.small_batch_edge == pytest.approx(2 * 0.1 / 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setting.lr = 2.0  # type: ignore[misc]


def test_full_batch_edge_separates_convergence_from_divergence():
    # On a 1-D quadratic heavy ball converges iff η·λ < 2(1+β), in whatever convention it is
    # written: stay 2% inside / outside the converted edge.
    for convention in CONVENTIONS:
        setting = to_pytorch(convention, 0.4, 0.6)
        for factor, grows in ((0.98, False), (1.02, True)):
            curvature = factor * setting.full_batch_edge
            path = momentum_trajectory(convention, lambda t, c=curvature: c * t, np.ones(1),
                                       lr=setting.lr, momentum=0.6, num_steps=3000)
            assert (abs(path[-1, 0]) > 1.0) == grows, (convention, factor, path[-1, 0])


def test_conversion_table_has_one_row_per_convention():
    table = conversion_table(0.1, 0.9)
    assert list(table.index) == list(CONVENTIONS)
    assert table.loc["averaged", "PyTorch lr η"] == pytest.approx(0.01)
    assert table.loc["velocity", "effective step η/(1−β)"] == pytest.approx(1.0)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="convention"):
        to_pytorch("adam", 0.1, 0.9)
    with pytest.raises(ValueError, match="momentum"):
        to_pytorch("pytorch", 0.1, 1.0)
    with pytest.raises(ValueError, match="lr"):
        from_pytorch("averaged", -0.1, 0.5)


def test_keras_is_the_velocity_form_not_pytorchs():
    assert "keras" in USED_BY["velocity"].lower()
    assert "keras" not in USED_BY["pytorch"].lower()
    table = conversion_table(0.1, 0.9)
    assert "keras" in table.loc["velocity", "used by"].lower()
    assert to_pytorch("velocity", 0.1, 0.9).used_by == USED_BY["velocity"]


STEP_DECAY = np.array([0.2] * 30 + [0.05] * 30 + [0.1] * 20)  # a decay, then a warm-up


def test_under_a_schedule_keras_and_pytorch_differ_unless_the_buffer_is_rescaled():
    theta0 = np.array([0.3, 0.7, -1.0, 2.0])
    kwargs = dict(momentum=0.9, num_steps=len(STEP_DECAY))
    torch_path = momentum_trajectory("pytorch", quadratic_grad, theta0, lr=STEP_DECAY, **kwargs)
    keras_path = momentum_trajectory("velocity", quadratic_grad, theta0, lr=STEP_DECAY, **kwargs)
    # Identical while η is constant (the first 30 steps), apart afterwards.
    np.testing.assert_allclose(keras_path[:31], torch_path[:31], rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(keras_path - torch_path)) > 1e-2
    rescaled = momentum_trajectory("pytorch", quadratic_grad, theta0, lr=STEP_DECAY,
                                   rescale_buffer=True, **kwargs)
    np.testing.assert_allclose(rescaled, keras_path, rtol=1e-9, atol=1e-12)
    # The averaged form has no η in its buffer: α_t = η_t/(1−β) matches PyTorch under any
    # schedule.
    averaged = momentum_trajectory("averaged", quadratic_grad, theta0, lr=STEP_DECAY / 0.1,
                                   **kwargs)
    np.testing.assert_allclose(averaged, torch_path, rtol=1e-9, atol=1e-12)


def test_torch_sgd_with_rescaled_buffers_follows_keras_under_a_schedule():
    momentum = 0.8
    theta = torch.tensor([0.3, 0.7, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=float(STEP_DECAY[0]), momentum=momentum)
    curvatures, optimum = torch.as_tensor(CURVATURES), torch.as_tensor(OPTIMUM)
    path = [theta.detach().numpy().copy()]
    for step, lr in enumerate(STEP_DECAY):
        if step > 0 and STEP_DECAY[step - 1] != lr:
            factor = velocity_buffer_rescale(STEP_DECAY[step - 1], lr)
            optimizer.state[theta]["momentum_buffer"].mul_(factor)
        optimizer.param_groups[0]["lr"] = float(lr)
        optimizer.zero_grad()
        (0.5 * (curvatures * (theta - optimum) ** 2).sum()).backward()
        optimizer.step()
        path.append(theta.detach().numpy().copy())
    # Keras's documented update: velocity = momentum * velocity - lr * g; w = w + velocity.
    w, velocity, keras = np.array(path[0]), np.zeros(4), [np.array(path[0])]
    for lr in STEP_DECAY:
        velocity = momentum * velocity - lr * quadratic_grad(w)
        w = w + velocity
        keras.append(w.copy())
    np.testing.assert_allclose(np.asarray(path), np.asarray(keras), rtol=1e-9, atol=1e-12)


def test_buffer_rescale_factor_and_schedule_checks():
    assert velocity_buffer_rescale(0.1, 0.05) == pytest.approx(2.0)
    assert velocity_buffer_rescale(0.3, 0.3) == 1.0
    with pytest.raises(ValueError, match="lr"):
        velocity_buffer_rescale(0.1, 0.0)
    with pytest.raises(ValueError, match="num_steps=5"):
        momentum_trajectory("pytorch", quadratic_grad, np.ones(4), lr=[0.1, 0.2], momentum=0.5,
                            num_steps=5)
    with pytest.raises(ValueError, match="rescale_buffer"):
        momentum_trajectory("velocity", quadratic_grad, np.ones(4), lr=0.1, momentum=0.5,
                            num_steps=5, rescale_buffer=True)
