"""The seed's Keras script against the course's PyTorch port, and the course's statements about
Keras' momentum checked against real Keras (Keras 3, torch backend, in a subprocess).

Keras is a test dependency (requirements.txt, "tests"); without it these tests skip with a
message, but the README test command installs it, so CI runs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edutools.engine.experiments.seed_network import FAST_EPOCHS, train_seed_network
from edutools.ground.theory.conventions import momentum_trajectory

# Not imported here: Keras picks its backend at import time, so only the subprocess imports it.
if importlib.util.find_spec("keras") is None:
    pytest.skip("Keras 3 is not installed: pip install -r requirements.txt",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (0, 1, 2, 3, 4)
EPOCHS = (1, FAST_EPOCHS)  # after the seed's single epoch, and after lesson 00's FAST epochs


def _keras(*args: str) -> list[dict]:
    env = {**os.environ, "KERAS_BACKEND": "torch", "EDUTOOLS_QUIET": "1"}
    done = subprocess.run([sys.executable, "-m", "tests.keras.seed_recipe", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith(("{", "["))]


@pytest.fixture(scope="module")
def keras_runs() -> list[dict]:
    return _keras("--seeds", *map(str, SEEDS), "--epochs", *map(str, EPOCHS))


@pytest.fixture(scope="module")
def port_runs() -> list[np.ndarray]:
    return [train_seed_network(momentum=0.9, batch_size=64, lr=0.01, epochs=max(EPOCHS),
                               seed=seed).record["val_acc"].to_numpy(dtype=float)
            for seed in SEEDS]


def test_keras_runs_the_recipe_on_the_torch_backend(keras_runs):
    assert [run["seed"] for run in keras_runs] == list(SEEDS)
    assert {run["backend"] for run in keras_runs} == {"torch"}
    # Keras keeps the last partial batch; the port drops it (62 steps of 64 per epoch).
    assert {run["steps_per_epoch"] for run in keras_runs} == {63}


@pytest.mark.parametrize("epoch", EPOCHS)
def test_port_matches_keras_validation_accuracy_within_the_seed_spread(keras_runs, port_runs,
                                                                       epoch):
    keras_acc = np.array([run["val_acc"][str(epoch)] for run in keras_runs])
    port_acc = np.array([curve[epoch] for curve in port_runs])  # row k = after epoch k
    spread = np.sqrt(keras_acc.var(ddof=1) / len(SEEDS) + port_acc.var(ddof=1) / len(SEEDS))
    gap = port_acc.mean() - keras_acc.mean()
    # Measured (seeds 0-4, glorot kernels and zero biases): epoch 1 Keras 0.838, port 0.844,
    # 2·spread 0.021; epoch 10 0.921 vs 0.924. PyTorch's default init (the port before) was
    # 0.050 below Keras after epoch 1: outside this band.
    assert abs(gap) < 2 * spread, (epoch, keras_acc.round(3), port_acc.round(3))
    assert 0.75 < keras_acc.mean() < 0.97 and 0.75 < port_acc.mean() < 0.97


STEP_DECAY = [0.2] * 30 + [0.05] * 30 + [0.1] * 20  # a decay, then a warm-up
QUADRATIC = {"curvatures": [3.0, 1.0, 0.2, 0.01], "optimum": [1.0, -2.0, 0.5, 3.0],
             "theta0": [0.3, 0.7, -1.0, 2.0]}


def test_real_keras_sgd_is_the_velocity_form_and_differs_from_pytorch_under_a_schedule():
    momentum = 0.9
    spec = {"schedule": STEP_DECAY, "momentum": momentum, **QUADRATIC}
    keras_path = np.asarray(_keras("--momentum-path", json.dumps(spec))[0])
    c, star = np.array(QUADRATIC["curvatures"]), np.array(QUADRATIC["optimum"])

    def grad(theta):
        return c * (theta - star)

    kwargs = dict(lr=np.array(STEP_DECAY), momentum=momentum, num_steps=len(STEP_DECAY))
    velocity = momentum_trajectory("velocity", grad, np.array(QUADRATIC["theta0"]), **kwargs)
    pytorch = momentum_trajectory("pytorch", grad, np.array(QUADRATIC["theta0"]), **kwargs)
    np.testing.assert_allclose(keras_path, velocity, rtol=1e-9, atol=1e-12)
    # Identical to PyTorch's heavy ball while η is constant, not after the schedule changes it.
    np.testing.assert_allclose(keras_path[:31], pytorch[:31], rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(keras_path - pytorch)) > 1e-2
