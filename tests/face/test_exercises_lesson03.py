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


# ---- Polyak's setting and the mean-square edge --------------------------------------------

from edutools.face.exercises.lesson03 import (  # noqa: E402
    check_mean_square_lr,
    check_polyak_setting,
)


def polyak(mu, big_l):
    root = (big_l / mu) ** 0.5
    return 4 / (big_l**0.5 + mu**0.5) ** 2, ((root - 1) / (root + 1)) ** 2


@pytest.mark.parametrize(("setting", "says"), [
    (lambda mu, big_l: (2 / (big_l + mu), polyak(mu, big_l)[1]), "GD's best step"),
    (lambda mu, big_l: (polyak(mu, big_l)[0], polyak(mu, big_l)[1] ** 0.5), "square of the rate"),
    (lambda mu, big_l: (polyak(mu, big_l)[0], ((big_l / mu - 1) / (big_l / mu + 1)) ** 2),
     "√κ belongs"),
    (lambda mu, big_l: (4 / (big_l + mu), polyak(mu, big_l)[1]), "not 4/(L+μ)"),
    (lambda mu, big_l: (3.9 / big_l, 0.5), "diverges"),
    (lambda mu, big_l: (1 / big_l, 0.5), "worst contraction factor"),
    (lambda mu, big_l: 0.5, "return a pair"),
])
def test_polyak_check_names_the_mistake(setting, says):
    feedback = check_polyak_setting(setting)
    assert not feedback.passed and says in feedback.message, feedback.message


def test_polyak_check_passes_the_right_setting_and_reports_stubs():
    assert check_polyak_setting(polyak).passed

    def stub(mu, big_l):
        raise NotImplementedError

    assert "not written yet" in check_polyak_setting(stub).message


def mean_square(beta, m, var):
    return 2 / (m / (1 + beta) + var / ((1 - beta) * m))


@pytest.mark.parametrize(("function", "says"), [
    (lambda beta, m, var: 2 * (1 + beta) / m, "noise-free edge"),
    (lambda beta, m, var: 2 * m / (m * m + var), "without momentum"),
    (lambda beta, m, var: 2 / (m / (1 - beta) + var / ((1 + beta) * m)), "swapped"),
    (lambda beta, m, var: 2 / (m / (1 + beta) + var**0.5 / ((1 - beta) * m)), "standard deviation"),
    (lambda beta, m, var: 1.1 * mean_square(beta, m, var), "too high"),
    (lambda beta, m, var: 0.9 * mean_square(beta, m, var), "too low"),
    (lambda beta, m, var: "fast", "return a number"),
])
def test_mean_square_check_names_the_mistake(function, says):
    feedback = check_mean_square_lr(function)
    assert not feedback.passed and says in feedback.message, feedback.message


def test_mean_square_check_passes_the_formula():
    assert check_mean_square_lr(mean_square).passed
