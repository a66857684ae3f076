"""The lr_for_batch check: passes the right rule, names each typical mistake."""

import math

import pytest

from edutools.face.exercises import check_lr_for_batch, implemented


def correct(lr, batch_size, new_batch_size, momentum=0.0, new_momentum=0.0):
    return lr * (new_batch_size / batch_size) * (1 - new_momentum) / (1 - momentum)


def stub(lr, batch_size, new_batch_size, momentum=0.0, new_momentum=0.0):
    raise NotImplementedError


WRONG = {
    "unchanged": (lambda lr, b, nb, m=0.0, nm=0.0: lr, "unchanged"),
    "inverse": (lambda lr, b, nb, m=0.0, nm=0.0: lr * b / nb * (1 - nm) / (1 - m), "inverse"),
    "sqrt": (lambda lr, b, nb, m=0.0, nm=0.0: lr * math.sqrt(nb / b), "square-root"),
    "no momentum": (lambda lr, b, nb, m=0.0, nm=0.0: lr * nb / b, "forgot the momentum"),
    "upside down": (lambda lr, b, nb, m=0.0, nm=0.0: lr * nb / b * (1 - m) / (1 - nm),
                    "upside down"),
    "beta not 1-beta": (lambda lr, b, nb, m=0.0, nm=0.0: lr * nb / b * nm / m, "1−β belongs"),
    "returns a string": (lambda lr, b, nb, m=0.0, nm=0.0: "0.2", None),
    "off by a factor": (lambda lr, b, nb, m=0.0, nm=0.0: 2 * correct(lr, b, nb, m, nm),
                        "must stay the same"),
}


def test_correct_rule_passes():
    feedback = check_lr_for_batch(correct)
    assert feedback.passed, feedback.message
    assert "η·(B'/B)·(1−β')/(1−β)" in feedback.message


def test_stub_is_reported_as_not_written_and_implemented_tells_stubs_apart():
    feedback = check_lr_for_batch(stub)
    assert not feedback.passed and "not written yet" in feedback.message
    assert not implemented(stub) and implemented(correct)


@pytest.mark.parametrize("name", list(WRONG))
def test_each_mistake_gets_its_own_message(name):
    function, phrase = WRONG[name]
    feedback = check_lr_for_batch(function)
    assert not feedback.passed
    if phrase is not None:
        assert phrase in feedback.message, feedback.message
    else:
        assert "return the new η as a number" in feedback.message
