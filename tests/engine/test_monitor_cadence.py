"""EdgeMonitor's default cadence is a time budget: it measures when the loop has run 1/budget
times as long as the last measurement took (a fake clock makes the arithmetic exact)."""

from __future__ import annotations

import pytest
import torch

from edutools.engine.monitor import DEFAULT_BUDGET, EdgeMonitor
from edutools.engine.monitor import monitor as monitor_module
from edutools.ground.models import half_mse, mlp


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(monitor_module, "time", fake)
    return fake


def _monitor(clock, **settings):
    generator = torch.Generator().manual_seed(0)
    X, y = torch.randn(30, 5, generator=generator), torch.randint(0, 3, (30,), generator=generator)
    model = mlp([5, 6, 3], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # each measurement "costs" one second of the fake clock (the watch counts as measuring)
    return EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                       watch=lambda record: clock.advance(1.0), **settings)


def test_the_default_budget_spaces_measurements_by_ten_times_their_cost(clock):
    monitor = _monitor(clock)
    assert monitor.every is None and monitor.budget == DEFAULT_BUDGET == 0.1
    for _ in range(80):
        clock.advance(0.3)  # one optimizer step of the loop
        monitor.step()
    # first at step 1; then after 10 s of loop time: 34 steps of 0.3 s (33 make only 9.9 s)
    assert list(monitor.record["step"]) == [1, 35, 69]
    assert "budget=0.1" in repr(monitor)


def test_a_larger_budget_measures_more_often_and_every_overrides_it(clock):
    monitor = _monitor(clock, budget=0.5)
    for _ in range(20):
        clock.advance(0.3)
        monitor.step()
    assert list(monitor.record["step"]) == [1, 8, 15]  # 2 s of loop per 1 s measurement
    fixed = _monitor(clock, every=7, budget=0.5)
    for _ in range(20):
        clock.advance(0.3)
        fixed.step()
    assert list(fixed.record["step"]) == [7, 14]


def test_a_bad_budget_is_named(clock):
    for budget in (0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="budget"):
            _monitor(clock, budget=budget)
