"""The EdgeMonitor on plain loops reproduces the lessons' own claims (issue 21's acceptance):
lesson 01's λ_max → 2/η under full-batch GD and lesson 03's batch-sharpness plateau at
2(1−β)/η with B = 100, each within that lesson's asserted tolerance, in FAST-sized runs."""

from __future__ import annotations

import numpy as np
import torch

from edutools.engine.experiments import cohen_eos
from edutools.engine.monitor import EdgeMonitor
from edutools.ground.data import random_labels_task
from edutools.ground.models import half_mse, mlp


def test_lesson_01_gd_sharpens_to_two_over_lr_in_a_plain_loop():
    lr, num_steps = 0.2, cohen_eos.FAST_NUM_STEPS  # lesson 01's η and FAST length
    data = cohen_eos.teacher_data(0)
    model = mlp(list(cohen_eos.WIDTHS), activation="tanh", init="lecun", seed=0,
                device=data.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer,
                          probe=(data.X_train, data.y_train), every=cohen_eos.MEASURE_EVERY)
    for _ in range(num_steps):
        optimizer.zero_grad()
        half_mse(model(data.X_train), data.y_train).backward()
        optimizer.step()
        monitor.step()
    summary = cohen_eos.gd_edge_summary(monitor.record, lr=lr, num_steps=num_steps)
    # lesson 01's three asserts, same tolerances
    assert summary.start < 0.7, summary
    assert summary.crossing is not None and summary.crossing < 0.6 * num_steps, summary
    assert 0.9 <= summary.late_mean <= 1.15, summary
    assert np.allclose(monitor.record["edge"], 2 / lr)


def test_lesson_03_batch_sharpness_settles_on_the_small_batch_edge_in_a_dataloader_loop():
    lr, momentum, batch_size, num_steps = 0.3, 0.5, 100, 6000  # lesson 03's B = 100, FAST
    task = random_labels_task(num_train=1000, seed=0)
    model = mlp([32, 64, 64, 10], activation="tanh", init="lecun", init_scale=0.3, seed=0,
                device=task.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(task.X_train, task.y_train), batch_size=batch_size,
        shuffle=True, generator=torch.Generator().manual_seed(0))
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=loader,
                          every=num_steps // 20, num_batches=100, seed=0)
    steps = 0
    while steps < num_steps:
        for X, y in loader:
            optimizer.zero_grad()
            half_mse(model(X), y).backward()
            optimizer.step()
            monitor.step()
            steps += 1
            if steps == num_steps:
                break
    record = monitor.record
    late = record[record["step"] >= num_steps * 2 / 3]  # lesson 03's settled(): last third
    lower, upper = late["small_batch_edge"].iloc[0], late["full_batch_edge"].iloc[0]
    assert np.isclose(lower, 2 * (1 - momentum) / lr) and np.isclose(upper, 2 * 1.5 / lr)
    # lesson 03: "0.8 <= BS / lower edge <= 1.4" and "λ_max / upper edge < 0.8" for B = 100
    assert 0.8 <= late["batch_sharpness"].mean() / lower <= 1.4, late["batch_sharpness"]
    assert late["lambda_max"].mean() / upper < 0.8, late["lambda_max"]
