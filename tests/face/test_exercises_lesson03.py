"""Lesson 03's exercise check: passes the right edges, names each typical confusion."""

import pytest

from edutools.face.exercises.lesson03 import check_stable_edge


def correct(lr, momentum, nesterov=False):
    if nesterov:
        return (2 + 2 * momentum) / (lr * (1 + 2 * momentum))
    return 2 * (1 + momentum) / lr


def gd_edge(lr, momentum, nesterov=False):
    return 2 / lr


def small_batch(lr, momentum, nesterov=False):
    return 2 * (1 - momentum) / lr


def over_effective(lr, momentum, nesterov=False):
    return 2 / (lr * (1 - momentum))


def dimensionless(lr, momentum, nesterov=False):
    return correct(lr, momentum, nesterov) * lr


def heavy_ball_only(lr, momentum, nesterov=False):
    return 2 * (1 + momentum) / lr


def nesterov_for_both(lr, momentum, nesterov=False):
    return correct(lr, momentum, True)


def no_nesterov_argument(lr, momentum):
    return 2 * (1 + momentum) / lr


def slightly_high(lr, momentum, nesterov=False):
    return 1.1 * correct(lr, momentum, nesterov)


def slightly_low(lr, momentum, nesterov=False):
    return 0.9 * correct(lr, momentum, nesterov)


def stub(lr, momentum, nesterov=False):
    raise NotImplementedError


def test_correct_edges_pass():
    feedback = check_stable_edge(correct)
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong, phrase", [
    (gd_edge, "plain GD's edge 2/η"),
    (small_batch, "small-batch plateau"),
    (over_effective, "2/(η(1−β))"),
    (dimensionless, "divide by η"),
    (heavy_ball_only, "but nesterov=True"),
    (nesterov_for_both, "that is Nesterov's edge"),
    (no_nesterov_argument, "signature"),
    (slightly_high, "too high"),
    (slightly_low, "too low"),
    (stub, "not written yet"),
])
def test_each_confusion_is_named(wrong, phrase):
    feedback = check_stable_edge(wrong)
    assert not feedback.passed
    assert phrase in feedback.message, feedback.message
