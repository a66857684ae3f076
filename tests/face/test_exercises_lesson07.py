"""The robust-score check: passes the correct score, names the typical mistake otherwise; and
``implemented`` tells a stub from a written function."""

import numpy as np
import pytest

from edutools.face.exercises import implemented
from edutools.face.exercises.lesson07 import check_robust_score


def correct(at_lr, half, double):
    return min(np.mean(half), np.mean(at_lr), np.mean(double)) - np.std(at_lr, ddof=1)


def stub(at_lr, half, double):
    raise NotImplementedError


WRONG = {  # a typical wrong answer → words its feedback must contain
    "population std": (lambda a, h, d: min(np.mean(h), np.mean(a), np.mean(d)) - np.std(a),
                       "ddof=1"),
    "no spread": (lambda a, h, d: min(np.mean(h), np.mean(a), np.mean(d)), "spread over seeds"),
    "no sensitivity": (lambda a, h, d: np.mean(a) - np.std(a, ddof=1), "learning-rate"),
    "plain mean": (lambda a, h, d: np.mean(a), "plain score"),
    "adds spread": (lambda a, h, d: min(np.mean(h), np.mean(a), np.mean(d))
                    + np.std(a, ddof=1), "added"),
    "best lr": (lambda a, h, d: max(np.mean(h), np.mean(a), np.mean(d)) - np.std(a, ddof=1),
                "*best*"),
    "variance": (lambda a, h, d: min(np.mean(h), np.mean(a), np.mean(d))
                 - np.var(a, ddof=1), "variance"),
    "worst run": (lambda a, h, d: min(h.min(), a.min(), d.min()) - np.std(a, ddof=1),
                  "worst single run"),
    "pooled spread": (lambda a, h, d: min(np.mean(h), np.mean(a), np.mean(d))
                      - np.std(np.concatenate([a, h, d]), ddof=1), "all runs"),
    "averaged lrs": (lambda a, h, d: np.mean([np.mean(h), np.mean(a), np.mean(d)])
                     - np.std(a, ddof=1), "averaged"),
}


def test_the_correct_score_passes():
    feedback = check_robust_score(correct)
    assert feedback.passed, feedback.message
    assert "correct" in feedback.message


@pytest.mark.parametrize("name", sorted(WRONG))
def test_each_typical_mistake_is_named(name):
    function, words = WRONG[name]
    feedback = check_robust_score(function)
    assert not feedback.passed
    assert words in feedback.message, feedback.message
    assert "expected" in feedback.message


def test_stub_errors_arrays_none_and_in_place_changes_are_explained():
    assert "not written yet" in check_robust_score(stub).message
    assert "raised ZeroDivisionError" in check_robust_score(lambda a, h, d: 1 / 0).message
    assert "returned None" in check_robust_score(lambda a, h, d: None).message
    assert "one number" in check_robust_score(lambda a, h, d: a - h.mean()).message

    def sorts_in_place(a, h, d):
        a.sort()
        return correct(a, h, d)

    assert "in place" in check_robust_score(sorts_in_place).message
    assert "NaN" not in check_robust_score(lambda a, h, d: float("nan")).message
    assert "returned nan" in check_robust_score(lambda a, h, d: float("nan")).message
    unknown = check_robust_score(lambda a, h, d: 0.5)
    assert not unknown.passed and "min(seed means" in unknown.message


def test_implemented_tells_a_stub_from_a_written_function():
    def stub_with_message(x):
        """Docstring."""
        # YOUR CODE HERE
        raise NotImplementedError("write me")

    def raises_later(x):
        if x:
            return x
        raise NotImplementedError

    assert not implemented(stub)
    assert not implemented(stub_with_message)
    assert implemented(correct)
    assert implemented(raises_later)
    assert implemented(np.mean)  # a builtin-like callable without a stub body
