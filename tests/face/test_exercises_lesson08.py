"""Lesson 08's exercise check: right answers pass, typical mistakes get a message naming them."""

from edutools.engine.monitor import EdgeMonitor
from edutools.face.exercises import check_train_with_monitor
from edutools.ground.models import half_mse


def _loop(*, zero=True, measure_before=False, extra_steps=0, give_back=True):
    def train_with_monitor(model, optimizer, X, y, *, num_steps, every):
        monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                              every=every)
        for _ in range(num_steps):
            if zero:
                optimizer.zero_grad()
            half_mse(model(X), y).backward()
            if measure_before:
                monitor.step()
            optimizer.step()
            if not measure_before:
                monitor.step()
            for _ in range(extra_steps):
                monitor.step()
        return monitor if give_back else None
    return train_with_monitor


def test_the_plain_loop_with_the_monitor_after_the_step_passes():
    feedback = check_train_with_monitor(_loop())
    assert feedback.passed, feedback.message
    assert "exactly as without the monitor" in feedback.message


def test_each_typical_mistake_is_named():
    cases = {
        "before": (_loop(measure_before=True), "*before* step 4"),
        "no zero_grad": (_loop(zero=False), "zero the gradients"),
        "two monitor steps": (_loop(extra_steps=1), "counted 24 steps for 12"),
        "no return": (_loop(give_back=False), "return monitor"),
    }
    for name, (answer, hint) in cases.items():
        feedback = check_train_with_monitor(answer)
        assert not feedback.passed, name
        assert hint in feedback.message, (name, feedback.message)


def test_a_stub_and_a_crash_become_feedback():
    def stub(*args, **kwargs):
        raise NotImplementedError

    def crash(*args, **kwargs):
        raise RuntimeError("shapes do not match")

    assert "not written yet" in check_train_with_monitor(stub).message
    assert "RuntimeError: shapes do not match" in check_train_with_monitor(crash).message
