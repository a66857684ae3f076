"""Schedules in the one training loop: η and β as functions of the step or a torch LRScheduler,
one optimizer for the whole run, and per-epoch phases against a hand-rolled reference."""

import math

import numpy as np
import pytest
import torch

from edutools.engine.training import Phase, train
from edutools.ground.models import cross_entropy, mlp

WARMUP, TARGET, BETA = 5, 0.4, 0.9


def small_model(teacher, seed=0, **kwargs):
    return mlp([teacher.input_dim, 16, teacher.num_classes], seed=seed, **kwargs)


def ramp(step):
    """Linear warm-up to TARGET over WARMUP steps, then TARGET."""
    return TARGET * min(step + 1, WARMUP) / WARMUP


def full_batch_grads(model, data):
    params = [p for p in model.parameters() if p.requires_grad]
    loss = cross_entropy(model(data.X_train), data.y_train)
    return [g.detach() for g in torch.autograd.grad(loss, params)]


def test_warmup_with_momentum_keeps_one_optimizer_and_its_velocity(teacher):
    seen = []

    def snapshot(state):
        opt = state.optimizer
        params = list(state.model.parameters())
        seen.append(dict(step=state.step, opt=opt, lr=opt.param_groups[0]["lr"],
                         buffers=[opt.state[p]["momentum_buffer"].clone()
                                  if "momentum_buffer" in opt.state[p] else None
                                  for p in params],
                         grads=full_batch_grads(state.model, state.data)))
        return {}

    result = train(small_model(teacher), teacher, lr=ramp, momentum=BETA, num_steps=WARMUP + 3,
                   measure_every=1, callbacks=[snapshot], progress=False)
    assert len({id(s["opt"]) for s in seen}) == 1  # one optimizer object for the whole run
    assert [s["step"] for s in seen] == list(range(WARMUP + 4))
    # The η in force: the ramp's, the last one written being the target.
    assert [s["lr"] for s in seen[1:]] == [ramp(t) for t in range(WARMUP + 3)]
    assert result.record["lr"].tolist() == [ramp(0)] + [ramp(t) for t in range(WARMUP + 3)]
    # Across the switch (the first step at the target η and the one after): v ← βv + g, where g
    # is the full-batch gradient at the parameters the previous measurement saw.
    for k in (WARMUP - 1, WARMUP, WARMUP + 1):
        before, after = seen[k], seen[k + 1]
        for v_prev, g, v in zip(before["buffers"], before["grads"], after["buffers"],
                                strict=True):
            expected = g if v_prev is None else BETA * v_prev + g
            assert torch.allclose(v, expected, rtol=1e-5, atol=1e-7)
            if v_prev is not None:  # a reset velocity would be g alone
                assert not torch.allclose(v, g, rtol=1e-3, atol=1e-5)
    assert callable(result.config["lr"]) and result.config["lr"] is ramp


def test_warmup_with_momentum_equals_a_hand_rolled_loop_not_chained_runs(teacher):
    steps = WARMUP + 4
    model = small_model(teacher)
    train(model, teacher, lr=ramp, momentum=BETA, num_steps=steps, measure_every=steps,
          progress=False)
    reference = small_model(teacher)
    opt = torch.optim.SGD(reference.parameters(), lr=ramp(0), momentum=BETA)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = ramp(step)
        opt.zero_grad(set_to_none=True)
        cross_entropy(reference(teacher.X_train), teacher.y_train).backward()
        opt.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    # Chaining one train call per η (what warm-up did for plain GD) restarts the velocity.
    chained = small_model(teacher)
    for step in range(steps):
        train(chained, teacher, lr=ramp(step), momentum=BETA, num_steps=1, progress=False)
    assert not all(torch.allclose(a, b) for a, b in zip(model.parameters(),
                                                        chained.parameters(), strict=True))


def factor(step):
    return min(step + 1, 4) / 4 * (0.5 if step >= 12 else 1.0)


@pytest.mark.parametrize("batch_size", [None, 40])
def test_a_function_and_a_torch_scheduler_give_identical_records(teacher, batch_size):
    common = dict(num_steps=20, measure_every=3, batch_size=batch_size, seed=2, progress=False)
    by_function = train(small_model(teacher), teacher, lr=lambda s: 0.3 * factor(s),
                        momentum=0.8, **common)
    by_factory = train(small_model(teacher), teacher, lr=0.3, momentum=0.8,
                       lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, factor),
                       **common)
    model = small_model(teacher)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.8)
    by_instance = train(model, teacher, lr=torch.optim.lr_scheduler.LambdaLR(opt, factor),
                        **common)
    assert "lr" in by_function.record
    for other in (by_factory, by_instance):
        assert by_function.record.equals(other.record)
        assert np.array_equal(by_function.step_losses, other.step_losses)
    assert by_factory.config["lr"] == 0.3
    assert isinstance(by_factory.config["lr_scheduler"], torch.optim.lr_scheduler.LambdaLR)
    assert isinstance(by_instance.config["lr"], torch.optim.lr_scheduler.LambdaLR)
    # The η actually in force differs from a constant run's: the schedule was applied.
    constant = train(small_model(teacher), teacher, lr=0.3, momentum=0.8, **common)
    assert not np.array_equal(constant.step_losses, by_function.step_losses)


def test_a_momentum_schedule_is_written_and_recorded(teacher):
    beta = lambda step: 0.0 if step < 3 else 0.9  # noqa: E731
    result = train(small_model(teacher), teacher, lr=0.1, momentum=beta, num_steps=6,
                   measure_every=1, progress=False)
    assert result.record["momentum"].tolist() == [0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.9]
    reference = small_model(teacher)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.0)
    for step in range(6):
        opt.param_groups[0]["momentum"] = beta(step)
        opt.zero_grad(set_to_none=True)
        cross_entropy(reference(teacher.X_train), teacher.y_train).backward()
        opt.step()
    for a, b in zip(result.model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def hand_rolled_phases(model, data, phases, *, momentum, seed):
    """The documented semantics of train(phases=...), written out: one SGD; phase i seeds the
    dropout (torch's global generator) and the batch order with seed + i; a fresh permutation
    each epoch, N // B steps, the rest dropped (full batch: the data in order, no permutation);
    one measurement per epoch."""
    opt = torch.optim.SGD(model.parameters(), lr=phases[0].lr, momentum=momentum)
    losses, rows, step, epoch = [], [], 0, 0.0
    rows.append(dict(step=0, epoch=0.0, train_loss=eval_loss(model, data), phase=0,
                     lr=phases[0].lr, batch_size=phases[0].batch_size))
    for index, phase in enumerate(phases):
        torch.manual_seed(seed + index)
        generator = torch.Generator().manual_seed(seed + index)
        for group in opt.param_groups:
            group["lr"] = phase.lr
        per_epoch = data.num_train // phase.batch_size
        for _ in range(phase.epochs):
            model.train()
            full = phase.batch_size == data.num_train
            order = (torch.arange(data.num_train) if full
                     else torch.randperm(data.num_train, generator=generator))
            for position in range(per_epoch):
                index_ = order[position * phase.batch_size:(position + 1) * phase.batch_size]
                X, y = ((data.X_train, data.y_train) if full
                        else (data.X_train[index_], data.y_train[index_]))
                opt.zero_grad(set_to_none=True)
                loss = cross_entropy(model(X), y)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
            epoch += 1
            rows.append(dict(step=step, epoch=epoch, train_loss=eval_loss(model, data),
                             phase=index, lr=phase.lr, batch_size=phase.batch_size))
    return rows, np.asarray(losses)


def eval_loss(model, data):
    model.eval()
    with torch.no_grad():
        value = float(cross_entropy(model(data.X_train), data.y_train))
    model.train()
    return value


def test_phases_with_momentum_match_the_hand_rolled_reference(teacher):
    n = teacher.num_train
    phases = [Phase(0.1, 16, 2), Phase(0.05, 64, 1), Phase(0.02, n, 2)]
    result = train(small_model(teacher, dropout=0.2), teacher, phases=phases, momentum=0.9,
                   seed=5, progress=False)
    rows, losses = hand_rolled_phases(small_model(teacher, dropout=0.2), teacher, phases,
                                      momentum=0.9, seed=5)
    record = result.record
    assert np.array_equal(result.step_losses, losses)  # dropout and batch order seeded alike
    for column in ("step", "epoch", "train_loss", "phase", "lr", "batch_size"):
        assert record[column].tolist() == [row[column] for row in rows], column
    assert result.config["phases"] == tuple(phases) and result.config["momentum"] == 0.9
    # Without momentum carried over, the numbers differ: the reference is not trivially equal.
    rows0, losses0 = hand_rolled_phases(small_model(teacher, dropout=0.2), teacher, phases,
                                        momentum=0.0, seed=5)
    assert not np.array_equal(losses0, losses)


def test_phases_take_callbacks_on_the_global_clock(teacher):
    n = teacher.num_train
    steps = []
    result = train(small_model(teacher), teacher, phases=[Phase(0.1, n, 3), Phase(0.2, n, 2)],
                   callbacks=[lambda state: steps.append(state.step) or {"seen": state.step}],
                   measure_every=2, progress=False)
    # Each phase starts with a measurement (step 3 twice: the end of phase 0, the start of
    # phase 1, which is not recorded); measured every 2 steps from each phase's start.
    assert steps == [0, 2, 3, 3, 5]
    assert result.record["step"].tolist() == [0, 2, 3, 5]
    assert result.record["seen"].tolist() == [0, 2, 3, 5]
    assert result.record["lr"].tolist() == [0.1, 0.1, 0.1, 0.2]


def test_bad_schedules_name_the_step_and_the_value(teacher):
    def run(**kwargs):
        args = dict(num_steps=6, measure_every=6, progress=False, **kwargs)
        args.setdefault("lr", 0.1)
        return train(small_model(teacher), teacher, **args)

    with pytest.raises(ValueError, match=r"lr schedule at step 3.*got nan"):
        run(lr=lambda s: math.nan if s == 3 else 0.1)
    with pytest.raises(ValueError, match=r"lr schedule at step 0.*got -0.1"):
        run(lr=lambda s: -0.1)
    with pytest.raises(ValueError, match=r"momentum schedule at step 2.*got 1.0"):
        run(momentum=lambda s: 1.0 if s == 2 else 0.5)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0.*step 4"):
        run(momentum=lambda s: 0.0 if s == 4 else 0.5, nesterov=True)
    with pytest.raises(TypeError, match="batch_size must be a whole number.*phases"):
        run(batch_size=lambda s: 16)
    with pytest.raises(ValueError, match="lr_scheduler needs a constant lr"):
        run(lr=lambda s: 0.1, lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2))
    with pytest.raises(TypeError, match="must return a torch LRScheduler, got float"):
        run(lr_scheduler=lambda opt: 0.5)
    with pytest.raises(TypeError, match="scheduler class"):
        run(lr=torch.optim.lr_scheduler.StepLR)
    with pytest.raises(ValueError, match="got 'fast'"):
        run(lr="fast")
    with pytest.raises(ValueError, match="no 'momentum'"):
        run(momentum=lambda s: 0.5, optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    with pytest.raises(ValueError, match=r"lr from ExponentialLR at step \d+.*got 0.0"):
        run(lr=1.0, lr_scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.0))
    other = torch.optim.SGD(small_model(teacher).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="drives another optimizer"):
        run(lr=torch.optim.lr_scheduler.StepLR(other, 2),
            optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(ValueError, match="does not hold all"):
        run(lr=torch.optim.lr_scheduler.StepLR(other, 2))
    with pytest.raises(ValueError, match="either phases or"):
        train(small_model(teacher), teacher, phases=[Phase(0.1, 16, 1)],
              lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2))
    with pytest.raises(TypeError, match=r"phases\[1\] must be a Phase"):
        train(small_model(teacher), teacher, phases=[Phase(0.1, 16, 1), (0.1, 16, 1)])
