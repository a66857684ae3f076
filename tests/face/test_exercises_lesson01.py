"""The contraction-factor check: passes the right formula, names each typical mistake."""

import numpy as np
import pytest

from edutools.face.exercises import implemented
from edutools.face.exercises.lesson01 import check_contraction_factor


def correct(lr, curvature):
    return abs(1 - lr * curvature)


def test_correct_answers_pass_in_any_numeric_form():
    assert check_contraction_factor(correct).passed
    assert check_contraction_factor(lambda lr, lam: np.abs(1 - lr * lam)).passed  # numpy float
    assert check_contraction_factor(lambda lr, lam: max(1 - lr * lam, lr * lam - 1)).passed


@pytest.mark.parametrize(("wrong", "names"), [
    (lambda lr, lam: 1 - lr * lam, "without the absolute value"),
    (lambda lr, lam: lr * lam - 1, "ηλ − 1"),
    (lambda lr, lam: abs(1 - 2 * lr * lam), "1 − 2ηλ"),
    (lambda lr, lam: 1 - 2 * lr * lam, "1 − 2ηλ"),
    (lambda lr, lam: abs(1 - lr * lam / 2), "ηλ/2"),
    (lambda lr, lam: lr * lam, "you returned ηλ"),
    (lambda lr, lam: 1 + lr * lam, "against"),
    (lambda lr, lam: (1 - lr * lam) ** 2, "(1 − ηλ)²"),
    (lambda lr, lam: min(abs(1 - lr * lam), 1.0), "capped"),
    (lambda lr, lam: 1 - lr, "curvature λ is missing"),
])
def test_each_typical_mistake_gets_its_own_message(wrong, names):
    feedback = check_contraction_factor(wrong)
    assert not feedback.passed
    assert names in feedback.message, feedback.message


def test_other_wrong_answers_name_the_case_and_the_expected_value():
    feedback = check_contraction_factor(lambda lr, lam: 2 / lr)
    assert not feedback.passed
    assert "lr=0.1, curvature=5.0" in feedback.message and "expected 0.5" in feedback.message


def test_stub_errors_and_non_numbers_are_explained():
    def stub(lr, curvature):
        raise NotImplementedError("write it")

    assert "not written yet" in check_contraction_factor(stub).message
    assert "ZeroDivisionError" in check_contraction_factor(lambda lr, lam: 1 / 0).message
    assert "forget `return`" in check_contraction_factor(lambda lr, lam: None).message
    assert "not whether" in check_contraction_factor(lambda lr, lam: lr * lam < 2).message
    assert "one number" in check_contraction_factor(lambda lr, lam: [1.0]).message


def test_implemented_tells_a_stub_from_a_written_function(capsys):
    def stub(lr, curvature):
        raise NotImplementedError("write it")

    assert not implemented(stub)
    assert "`stub` is not written yet" in capsys.readouterr().out
    assert implemented(correct) and capsys.readouterr().out == ""
    assert not implemented(stub, note=False) and capsys.readouterr().out == ""
    assert implemented(abs)  # a builtin is no stub
