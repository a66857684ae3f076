"""The seed's own Keras starter script, as facts, on the course's data split.

Run as ``python -m tests.keras.seed_recipe --seeds 0 1 2 --epochs 1 10``: for each seed it
builds the seed's network in Keras 3 (torch backend, no TensorFlow) and trains it with the
seed's recipe on the course's 4,000 / 1,000 split of the shipped MNIST subset, then prints one
JSON line per seed with the validation accuracy after each requested epoch. It runs in its own
process because Keras picks its backend at import time (``KERAS_BACKEND=torch`` must be set
first) and must not change the torch settings of the test process.

The recipe (the seed's script): ``Sequential`` of ``Flatten(28×28) → Dense(128, relu) →
Dropout(0.2) → Dense(10, softmax)``; ``SGD(learning_rate=0.01, momentum=0.9)``; sparse
categorical cross-entropy; ``fit(epochs=1, batch_size=64)`` on pixels scaled to [0, 1], printing
the validation accuracy. Keras' defaults apply: glorot-uniform kernels, zero biases, a fresh
shuffle every epoch, the last partial batch kept (⌈4000/64⌉ = 63 steps per epoch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "torch"


def run_recipe(seed: int, epochs: list[int]) -> dict[str, object]:
    """Train the seed's Keras network once; validation accuracy after each epoch in ``epochs``."""
    import keras
    import numpy as np
    import torch

    from edutools.engine.experiments.seed_network import mnist_data

    torch.set_num_threads(1)
    data = mnist_data(seed)
    images = data.X_train.cpu().numpy().reshape(-1, 28, 28)
    labels = data.y_train.cpu().numpy()
    val_images = data.X_val.cpu().numpy().reshape(-1, 28, 28)
    val_labels = data.y_val.cpu().numpy()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(images, labels, epochs=max(epochs), batch_size=64, verbose=0,
                        validation_data=(val_images, val_labels))
    val_acc = np.asarray(history.history["val_accuracy"], dtype=float)
    return {"seed": seed, "keras": keras.__version__, "backend": keras.backend.backend(),
            "steps_per_epoch": int(np.ceil(len(labels) / 64)),
            "val_acc": {str(e): float(val_acc[e - 1]) for e in epochs}}


def momentum_path(*, schedule: list[float], momentum: float, theta0: list[float],
                  curvatures: list[float], optimum: list[float]) -> list[list[float]]:
    """Iterates of real ``keras.optimizers.SGD(momentum=...)`` on the quadratic
    ½·Σ c_i (θ_i − θ*_i)², float64, with the learning rate set to ``schedule[t]`` before step t:
    the path the course's conventions table says is the velocity form."""
    import keras
    import numpy as np

    keras.config.set_floatx("float64")
    theta = keras.Variable(np.array(theta0, dtype=np.float64), dtype="float64")
    optimizer = keras.optimizers.SGD(learning_rate=float(schedule[0]), momentum=momentum)
    c, star = np.array(curvatures), np.array(optimum)
    path = [np.array(theta0, dtype=np.float64).tolist()]
    for lr in schedule:
        optimizer.learning_rate.assign(float(lr))
        grad = c * (keras.ops.convert_to_numpy(theta) - star)
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad, dtype="float64"), theta)])
        path.append(keras.ops.convert_to_numpy(theta).tolist())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1])
    parser.add_argument("--momentum-path", metavar="JSON",
                        help="instead: print momentum_path(**json.loads(JSON)) as JSON")
    args = parser.parse_args(argv)
    if args.momentum_path:
        print(json.dumps(momentum_path(**json.loads(args.momentum_path))), flush=True)
        return 0
    for seed in args.seeds:
        print(json.dumps(run_recipe(seed, args.epochs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
