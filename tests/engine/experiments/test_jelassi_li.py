"""The Jelassi–Li patch data, the cubic network and the momentum-vs-GD measurements."""

import math

import pytest
import torch

from edutools.engine.experiments.jelassi_li import (
    CubicPatchNet,
    PatchResult,
    feature_alignment,
    logistic_loss,
    patch_task,
    run_patches,
    sign_accuracy,
    small_margin_accuracy,
)


@pytest.fixture(scope="module")
def task():
    return patch_task(dim=60, num_train=40, num_test=300, seed=3, device="cpu")


def test_data_has_one_feature_patch_and_orthogonal_noise(task):
    X, y = task.data.X_train, task.data.y_train
    assert X.shape == (40, 2, 60) and set(y.tolist()) == {-1.0, 1.0}
    along = X @ task.feature  # (n, patches): c·y on the feature patch, 0 on the noise patch
    margins = torch.where(task.train_small_margin, task.alpha, 1.0)
    feature_patch = along.abs().argmax(dim=1)
    torch.testing.assert_close(along[torch.arange(40), feature_patch], margins * y)
    noise = X[torch.arange(40), 1 - feature_patch]
    assert (noise @ task.feature).abs().max() < 1e-6
    assert noise.std().item() == pytest.approx(task.sigma, rel=0.1)
    assert int(task.train_small_margin.sum()) == 4  # 10% of 40
    assert int(task.test_small_margin.sum()) == 30
    # The feature patch is not always first.
    assert 0 < int(feature_patch.sum()) < 40


def test_same_seed_same_data_other_seed_other_data():
    a, b = (patch_task(dim=20, num_train=10, num_test=10, seed=s, device="cpu") for s in (1, 1))
    c = patch_task(dim=20, num_train=10, num_test=10, seed=2, device="cpu")
    assert torch.equal(a.data.X_train, b.data.X_train)
    assert not torch.equal(a.data.X_train, c.data.X_train)


def test_cubic_net_and_logistic_loss_match_their_formulas(task):
    model = CubicPatchNet(60, num_filters=3, init_std=0.5, seed=0)
    X = task.data.X_train[:5]
    expected = sum((X[:, p] @ model.weight[r]) ** 3 for r in range(3) for p in range(2))
    torch.testing.assert_close(model(X), expected)
    outputs, targets = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0])
    expected_loss = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2
    assert float(logistic_loss(outputs, targets)) == pytest.approx(expected_loss)


def test_a_filter_on_the_feature_classifies_everything(task):
    model = CubicPatchNet(60, num_filters=2, seed=0)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1] = 2.0 * task.feature
    # noise is orthogonal to w*, so f = 8 c³ y exactly: every example is classified by the feature
    assert small_margin_accuracy(model, task) == 1.0
    assert sign_accuracy(model, task.data.X_val, task.data.y_val) == 1.0
    assert feature_alignment(model, task) == pytest.approx(2.0)
    with torch.no_grad():
        model.weight[1] = -model.weight[1]
    assert small_margin_accuracy(model, task) == 0.0
    assert feature_alignment(model, task) == pytest.approx(0.0)


def test_run_patches_records_alignment_and_fits_the_training_set(task):
    result = run_patches(task, lr=1.0, num_steps=300, seed=0, measure_every=100, progress=False)
    assert isinstance(result, PatchResult)
    record = result.training.record
    assert {"alignment", "small_margin_acc"} <= set(record.columns)
    assert list(record["step"]) == [0, 100, 200, 300]
    assert record["alignment"].iloc[-1] > 10 * abs(record["alignment"].iloc[0])
    assert result.train_acc == 1.0


def test_momentum_learns_more_of_the_feature_than_gd_at_equal_averaged_step():
    # COURSE.md's setting, shortened: averaged α = 1, γ = 0.9 is PyTorch η = 0.1, β = 0.9.
    task = patch_task(num_test=400, seed=0, device="cpu")
    gd = run_patches(task, lr=1.0, num_steps=800, seed=0, measure_every=800, progress=False)
    gdm = run_patches(task, lr=0.1, momentum=0.9, num_steps=800, seed=0, measure_every=800,
                      progress=False)
    assert gdm.alignment > 1.5 * gd.alignment
    assert gdm.small_margin_test_acc >= gd.small_margin_test_acc + 0.08


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_patches=1), "num_patches"),
    (dict(alpha=0.0), "alpha"),
    (dict(sigma=-1.0), "sigma"),
    (dict(small_margin_fraction=1.5), "small_margin_fraction"),
    (dict(dim=0), "dim"),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        patch_task(**kwargs, device="cpu")


def test_run_patch_momentum_is_the_averaged_form_with_unit_step():
    from edutools.engine.experiments.jelassi_li import PatchCurve, run_patch_momentum

    seen = []
    curve = run_patch_momentum(momentum=0.8, seed=0, num_steps=4, measure_every=2,
                               watch=seen.append)
    assert isinstance(curve, PatchCurve) and curve.lr == pytest.approx(0.2)
    assert curve.record["step"].tolist() == [0, 2, 4]
    assert {"alignment", "small_margin_acc"} <= set(curve.record)
    assert math.isfinite(curve.alignment) and 0 <= curve.small_margin_test_acc <= 1
    assert len(seen) == 3 and math.isnan(seen[0].alignment)  # partial results while training
    assert run_patch_momentum(momentum=0.0, num_steps=2, measure_every=2).lr == 1.0


def test_compare_patch_rules_one_row_per_rule_and_seed():
    from edutools.engine.experiments.jelassi_li import compare_patch_rules

    rules = {"GD": dict(lr=1.0), "GD+M": dict(lr=0.1, momentum=0.9)}
    comparison = compare_patch_rules(rules, (0, 1), num_steps=3, measure_every=3)
    table = comparison.table
    assert len(table) == 4 and set(table["rule"]) == set(rules)
    assert set(comparison.runs) == {(r, s) for r in rules for s in (0, 1)}
    gdm = comparison.runs[("GD+M", 1)]
    assert gdm.momentum == 0.9 and not hasattr(gdm, "training")
    row = table[(table["rule"] == "GD+M") & (table["seed"] == 1)].iloc[0]
    assert row["feature alignment"] == pytest.approx(gdm.alignment)
