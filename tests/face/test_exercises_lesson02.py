"""Lesson 02's exercise check: passes a correct batch ratio, names each typical mistake."""

import math

import pytest
import torch

from edutools.face.exercises import implemented
from edutools.face.exercises.lesson02 import check_batch_ratio


def correct(gradient, hvp):
    return float(gradient @ hvp(gradient) / (gradient @ gradient))


def no_division(gradient, hvp):
    return float(gradient @ hvp(gradient))


def divides_by_norm(gradient, hvp):
    return float(gradient @ hvp(gradient) / gradient.norm())


def returns_hg(gradient, hvp):
    return hvp(gradient) / (gradient @ gradient)


def norm_of_hg(gradient, hvp):
    return float(hvp(gradient).norm() / gradient.norm())


def wrong_sign(gradient, hvp):
    return -correct(gradient, hvp)


def absolute(gradient, hvp):
    return abs(correct(gradient, hvp))


def squared_hessian(gradient, hvp):
    hg = hvp(gradient)
    return float(hg @ hg / (gradient @ gradient))


def in_place(gradient, hvp):
    gradient /= gradient.norm()
    return float(gradient @ hvp(gradient))


def never_calls_hvp(gradient, hvp):
    return 1.0


def python_division(gradient, hvp):
    return float(gradient @ hvp(gradient)) / float(gradient @ gradient)


def stub(gradient, hvp):
    raise NotImplementedError


def test_correct_answer_passes_and_a_torch_zero_division_gives_nan():
    feedback = check_batch_ratio(correct)
    assert feedback.passed, feedback.message
    assert "correct" in str(feedback)


@pytest.mark.parametrize("wrong, phrase", [
    (no_division, "divide by ‖g‖²"),
    (divides_by_norm, "not by ‖g‖"),
    (returns_hg, "take the dot product"),
    (norm_of_hg, "‖Hg‖/‖g‖"),
    (wrong_sign, "wrong sign"),
    (absolute, "keep the sign"),
    (squared_hessian, "one H too many"),
    (in_place, "in place"),
    (never_calls_hvp, "never called"),
    (python_division, "ZeroDivisionError"),
    (stub, "not written yet"),
])
def test_each_mistake_is_named(wrong, phrase):
    feedback = check_batch_ratio(wrong)
    assert not feedback.passed
    assert phrase in feedback.message, feedback.message


def test_errors_inside_the_learners_function_become_feedback():
    def broken(gradient, hvp):
        return hvp(gradient[:3])

    feedback = check_batch_ratio(broken)
    assert not feedback.passed and "shape" in feedback.message


def test_implemented_tells_a_stub_from_a_written_function():
    def documented_stub(x):
        """Docstring."""
        # YOUR CODE HERE
        raise NotImplementedError("write me")

    assert not implemented(stub) and not implemented(documented_stub)
    assert implemented(correct) and implemented(math.sqrt)

    def raises_other(x):
        raise ValueError("no")

    assert implemented(raises_other)
    assert torch.isnan(torch.tensor(0.0) / torch.tensor(0.0))
