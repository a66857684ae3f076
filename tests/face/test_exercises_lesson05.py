"""The power-iteration check: passes correct code, names the specific mistake otherwise."""

import numpy as np
import pytest
import torch

from edutools.face.exercises.lesson05 import check_power_iteration, make_eigenproblem


def unit(v):
    return v / torch.linalg.vector_norm(v)


def plain_run(hvp_fn, v, num_iters):
    v = unit(v)
    eigenvalue = float("nan")
    for _ in range(num_iters):
        w = hvp_fn(v)
        eigenvalue = float(torch.dot(v, w))
        v = unit(w)
    return eigenvalue, v


def correct(hvp_fn, v0, num_iters):
    eigenvalue, v = plain_run(hvp_fn, v0, num_iters)
    if eigenvalue < 0:
        shift = eigenvalue
        top, v = plain_run(lambda u: hvp_fn(u) - shift * u, v0, num_iters)
        eigenvalue = top + shift
    return eigenvalue, v


def plain(hvp_fn, v0, num_iters):
    return plain_run(hvp_fn, v0, num_iters)


def norm_instead_of_rayleigh(hvp_fn, v0, num_iters):
    v = unit(v0)
    for _ in range(num_iters):
        w = hvp_fn(v)
        eigenvalue = float(torch.linalg.vector_norm(w))
        v = unit(w)
    return eigenvalue, v


def returns_unnormalized(hvp_fn, v0, num_iters):
    eigenvalue, v = correct(hvp_fn, v0, num_iters)
    return eigenvalue, hvp_fn(v)  # w = Hv, not w/‖w‖


def rayleigh_of_start(hvp_fn, v0, num_iters):
    _, v = correct(hvp_fn, v0, num_iters)
    start = unit(v0)
    return float(torch.dot(start, hvp_fn(start))), v


def forgets_shift(hvp_fn, v0, num_iters):
    eigenvalue, v = plain_run(hvp_fn, v0, num_iters)
    if eigenvalue < 0:
        shift = eigenvalue
        eigenvalue, v = plain_run(lambda u: hvp_fn(u) - shift * u, v0, num_iters)
    return eigenvalue, v


def never_updates(hvp_fn, v0, num_iters):
    v = unit(v0)
    for _ in range(num_iters):
        w = hvp_fn(v)
        eigenvalue = float(torch.dot(v, w))
    return eigenvalue, v


def modifies_v0(hvp_fn, v0, num_iters):
    v0 /= torch.linalg.vector_norm(v0)
    return correct(hvp_fn, v0, num_iters)


def ignores_v0(hvp_fn, v0, num_iters):
    start = torch.randn(v0.shape, generator=torch.Generator().manual_seed(7), dtype=v0.dtype)
    return correct(hvp_fn, start, num_iters)


def ignores_num_iters(hvp_fn, v0, num_iters):
    return correct(hvp_fn, v0, 3)


def swapped(hvp_fn, v0, num_iters):
    eigenvalue, v = correct(hvp_fn, v0, num_iters)
    return v, eigenvalue


def returns_nothing(hvp_fn, v0, num_iters):
    correct(hvp_fn, v0, num_iters)


def wasteful(hvp_fn, v0, num_iters):
    for _ in range(5):
        result = correct(hvp_fn, v0, num_iters)
    return result


def two_hvps_per_iteration(hvp_fn, v0, num_iters):
    def twice(u):
        hvp_fn(u)
        return hvp_fn(u)

    return correct(twice, v0, num_iters)


def squared(hvp_fn, v0, num_iters):
    eigenvalue, v = correct(hvp_fn, v0, num_iters)
    return eigenvalue**2, v


def numpy_result(hvp_fn, v0, num_iters):
    eigenvalue, v = correct(hvp_fn, v0, num_iters)
    return np.float64(eigenvalue), v.numpy()


def with_tolerance(hvp_fn, v0, num_iters, tol=1e-8):
    def run(apply):
        v, previous = unit(v0), None
        for _ in range(num_iters):
            w = apply(v)
            eigenvalue = float(torch.dot(v, w))
            v = unit(w)
            if previous is not None and abs(eigenvalue - previous) < tol * abs(eigenvalue):
                break
            previous = eigenvalue
        return eigenvalue, v

    eigenvalue, v = run(hvp_fn)
    if eigenvalue < 0:
        shift = eigenvalue
        top, v = run(lambda u: hvp_fn(u) - shift * u)
        eigenvalue = top + shift
    return eigenvalue, v


def not_written(hvp_fn, v0, num_iters):
    raise NotImplementedError


def crashes(hvp_fn, v0, num_iters):
    return 1 / 0


def wrong_shape(hvp_fn, v0, num_iters):
    return correct(hvp_fn, v0, num_iters)[0], v0[:, None]


@pytest.mark.parametrize("implementation", [correct, numpy_result, with_tolerance])
def test_correct_implementations_pass(implementation):
    feedback = check_power_iteration(implementation)
    assert feedback.passed, feedback.message
    assert "λ_max = 10" in feedback.message and "not −10" in feedback.message
    assert "Note" not in feedback.message
    assert str(feedback).startswith("✅")


def test_two_hvps_per_iteration_passes_with_a_note():
    feedback = check_power_iteration(two_hvps_per_iteration)
    assert feedback.passed
    assert "one per iteration suffices" in feedback.message


@pytest.mark.parametrize(
    ("implementation", "expected"),
    [
        (plain, "largest *magnitude*"),
        (norm_instead_of_rayleigh, "loses the sign"),
        (returns_unnormalized, "not 1: divide by its norm"),
        (rayleigh_of_start, "*start* vector"),
        (forgets_shift, "add the shift σ back"),
        (never_updates, "start vector unchanged"),
        (modifies_v0, "in place"),
        (ignores_v0, "start from the v0 you are given"),
        (ignores_num_iters, "not an eigenvector yet"),
        (swapped, "order is `(eigenvalue, eigenvector)`"),
        (returns_nothing, "returned None"),
        (wasteful, "HVPs are the cost"),
        (squared, "λ_max²"),
        (not_written, "not written yet"),
        (crashes, "raised ZeroDivisionError"),
        (wrong_shape, "flat tensor of shape (12,)"),
    ],
)
def test_mistakes_are_named(implementation, expected):
    feedback = check_power_iteration(implementation)
    assert not feedback.passed
    assert expected in feedback.message, feedback.message
    assert str(feedback).startswith("❌")


def test_plain_power_iteration_feedback_teaches_the_shift():
    message = check_power_iteration(plain).message
    assert "Shift trick" in message and "hvp_fn(v) - σ * v" in message
    assert "λ_max = 5" in message


def test_eigenproblem_has_the_requested_spectrum():
    values = [3.0, -7.0, 1.0, 0.5]
    problem = make_eigenproblem(values, seed=4)
    assert torch.allclose(torch.linalg.eigvalsh(problem.matrix),
                          torch.tensor(sorted(values), dtype=torch.float64), atol=1e-12)
    assert problem.lambda_max == 3.0
    assert float(problem.eigenvalues[problem.dominant_index]) == -7.0
    for i, value in enumerate(problem.eigenvalues):
        q = problem.eigenvectors[:, i]
        assert torch.allclose(problem.hvp(q), value * q, atol=1e-12)


def test_hvp_fn_rejects_wrong_inputs():
    problem = make_eigenproblem([2.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        problem.hvp(torch.ones(3, 1, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch tensor"):
        problem.hvp(np.ones(3))
    with pytest.raises(ValueError, match="at least two"):
        make_eigenproblem([1.0])
