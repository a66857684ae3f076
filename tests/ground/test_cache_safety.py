"""The cache holds data, never code: crafted files are refused, values round-trip exactly,
entries are shared like their folder, and versions follow every module the run imports."""

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from edutools.engine.experiments import cohen_eos
from edutools.engine.experiments.eoss import SGDRun
from edutools.face.precompute_registry import SLIDER_GRIDS
from edutools.face.widgets.panel import disk_cache_for
from edutools.ground import cache_format
from edutools.ground.cache import MISS, ResultCache
from edutools.ground.code_version import import_closure
from edutools.ground.theory.quadratic import QuadraticRun

REPO = Path(__file__).resolve().parents[2]


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: the proof that a pickle would execute."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _lesson01_first_point():
    grid = next(g for g in SLIDER_GRIDS if g.lesson == "01")
    return disk_cache_for(grid.run), grid.points()[0]


def _entry_with_payload(header: dict, payload: bytes) -> bytes:
    header = {**header, "sha256": hashlib.sha256(payload).hexdigest()}
    head = json.dumps(header).encode()
    return cache_format.MAGIC + len(head).to_bytes(8, "big") + head + payload


def _crafted_files(cache: ResultCache, params: dict, marker: Path) -> dict[str, bytes]:
    key = cache.key(params)
    header = {"key": key, "version": cache.version,
              "params": json.loads(json.dumps(params))}
    bomb = pickle.dumps(_Payload(marker))
    object_array = np.empty(1, dtype=object)
    object_array[0] = _Payload(marker)
    npz = __import__("io").BytesIO()
    np.savez(npz, a0=object_array)  # allow_pickle=True by default when saving
    tree = json.dumps({"$": "array", "ref": "a0"}).encode()
    evil_type = json.dumps({"$": "dataclass", "type": "os:system", "fields": {}}).encode()
    return {
        "old pickle format": b"EDUTOOLS-CACHE 1\n" + pickle.dumps(header) + bomb,
        "pickle after the tag": cache_format.MAGIC + bomb,
        "pickled payload": _entry_with_payload(header, bomb),
        "pickled npz array": _entry_with_payload(
            header, len(tree).to_bytes(8, "big") + tree + npz.getvalue()),
        "named callable": _entry_with_payload(
            header, len(evil_type).to_bytes(8, "big") + evil_type),
        "malformed": cache_format.MAGIC + b"\x00\x00\x00\x00\x00\x00\x00\x05{oops" + bytes(40),
    }


@pytest.mark.parametrize("kind", ["old pickle format", "pickle after the tag", "pickled payload",
                                  "pickled npz array", "named callable", "malformed"])
def test_a_crafted_file_at_a_real_key_is_refused_and_runs_nothing(tmp_path, kind):
    cache, params = _lesson01_first_point()
    marker = tmp_path / "pwned"
    path = cache.path(params)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_crafted_files(cache, params, marker)[kind])
    with pytest.warns(UserWarning, match=f"refused cache entry {path}"):
        assert cache.get(params) is MISS
    assert not marker.exists(), "loading the entry ran code"
    assert not path.exists()


def test_legacy_pickle_files_are_never_read_and_cleared(tmp_path):
    cache = ResultCache("legacy", version="v", directory=tmp_path)
    cache.directory.mkdir(parents=True)
    marker = tmp_path / "pwned"
    legacy = cache.directory / f"{cache.key({'a': 1})}.pkl"
    legacy.write_bytes(b"EDUTOOLS-CACHE 1\n" + pickle.dumps(_Payload(marker)))
    assert cache.get({"a": 1}) is MISS and not marker.exists()
    assert cache.clear() == 1 and not legacy.exists()


@dataclasses.dataclass(frozen=True)
class _NotOurs:
    x: int


def _sample_values():
    record = pd.DataFrame({"step": np.arange(4), "train_loss": [1.0, np.nan, np.inf, 0.5],
                           "label": ["a", "b", None, "d"], "ok": [True, False, True, True]})
    record.attrs["note"] = {"lr": 0.1}
    quad = QuadraticRun(curvatures=np.array([1.0, 2.0]), positions=np.zeros((3, 2)),
                        losses=np.array([1.0, 0.5, 0.25]), lr=0.1, momentum=0.0, nesterov=False)
    return [
        None, True, 3, -2.5, float("nan"), "text", [1, 2.0, None], (1, (2, 3)), {},
        {0.05: "rho", (1, "a"): [1], "k": {"nested": np.float32(1.5)}},
        np.arange(6, dtype=np.int16).reshape(2, 3), np.array(["x", "yz"]), np.float64(2.0),
        np.array([np.nan, 1.0]), torch.tensor([1.0, 2.0]), Path("a/b"),
        pd.Series([1.5, 2.5], index=["u", "v"], name="s"), record,
        pd.DataFrame([[1, 2]], columns=["same", "same"]),
        SGDRun(record=record, step_losses=np.ones(3), config={"lr": 0.1}),
        {"run": quad, "runs": [quad, quad]},
    ]


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
        return a.attrs == b.attrs
    if isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
        return True
    if isinstance(a, np.ndarray | np.generic):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, float) and np.isnan(a):
        return np.isnan(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name))
                   for f in dataclasses.fields(a))
    return a == b


@pytest.mark.parametrize("value", _sample_values(), ids=lambda v: type(v).__name__)
def test_values_round_trip_exactly(tmp_path, value):
    cache = ResultCache("roundtrip", version="v", directory=tmp_path)
    assert cache.put({"p": 1}, value)
    assert _same(value, cache.get({"p": 1}))


def test_types_the_format_cannot_hold_are_not_stored_and_say_why(tmp_path):
    cache = ResultCache("odd", version="v", directory=tmp_path)
    with pytest.warns(UserWarning, match="_NotOurs"):
        assert cache.put({"p": 1}, {"x": _NotOurs(1)}) is False
    assert cache.put({"p": 2}, torch.nn.Linear(1, 1)) is False  # warned once per cache already
    assert cache.get({"p": 1}) is MISS


def test_a_lesson_result_round_trips(tmp_path):
    run = cohen_eos.gd_edge_run(lr=0.05, num_steps=20, measure_every=10, seed=0)
    cache = ResultCache("edge", version="v", directory=tmp_path)
    assert cache.put({"lr": 0.05}, run)
    assert _same(run, cache.get({"lr": 0.05}))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(("folder_mode", "file_mode"), [(0o700, 0o600), (0o750, 0o640),
                                                         (0o755, 0o644)])
def test_entries_are_readable_exactly_where_their_folder_is(tmp_path, folder_mode, file_mode):
    cache = ResultCache("shared", version="v", directory=tmp_path)
    cache.directory.mkdir(parents=True)
    cache.directory.chmod(folder_mode)
    assert cache.put({"p": 1}, 1.0)
    assert stat.S_IMODE(cache.path({"p": 1}).stat().st_mode) == file_mode


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores permissions")
def test_a_read_only_shared_cache_serves_hits_and_warns_once_on_a_miss(tmp_path):
    ResultCache("shared", version="v", directory=tmp_path).put({"p": 1}, 1.0)
    reader = ResultCache("shared", version="v", directory=tmp_path)
    reader.directory.chmod(0o555)
    try:
        assert reader.get({"p": 1}) == 1.0
        with pytest.warns(UserWarning, match="could not write"):
            assert reader.put({"p": 2}, 2.0) is False
    finally:
        reader.directory.chmod(0o755)


def test_the_closure_of_an_experiment_reaches_the_training_loop_and_not_the_plots():
    closure = import_closure(cohen_eos.__name__)
    assert "edutools.engine.training.loop" in closure
    assert "edutools.ground.data" in closure
    assert not any(name.startswith("edutools.face") for name in closure)


_VERSIONS = textwrap.dedent("""
    import json, sys
    from edutools.engine.experiments import capstone, cohen_eos
    from edutools.engine.grid import grid_cache
    from edutools.face.widgets.panel import disk_cache_for
    from edutools.ground.cache import MISS
    slider = disk_cache_for(cohen_eos.gd_edge_run)
    grid = grid_cache(capstone.capstone_run)
    if sys.argv[1] == "put":
        slider.put({"lr": 0.01}, 1.0); grid.put({"lr": 0.01}, 1.0)
    found = [slider.get({"lr": 0.01}) is not MISS, grid.get({"lr": 0.01}) is not MISS]
    print(json.dumps([slider.version, grid.version, found]))
""")


def test_editing_the_training_loop_in_a_copy_makes_both_caches_miss(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "edutools", copy / "edutools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(copy), "EDUTOOLS_CACHE_DIR": str(tmp_path / "cache")}

    def versions(action: str):
        done = subprocess.run([sys.executable, "-c", _VERSIONS, action], env=env, cwd=copy,
                              capture_output=True, text=True, timeout=300, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    before = versions("put")
    assert before[2] == [True, True]
    plots = copy / "edutools" / "face" / "plots" / "lesson01.py"
    plots.write_text(plots.read_text() + "\n# a comment in a plotting module\n")
    assert versions("get") == before  # the plots are not part of a run: still hits
    loop = copy / "edutools" / "engine" / "training" / "measure.py"  # what a record row holds
    text = loop.read_text()
    edited = text.replace('row["train_loss"] = train_metrics["loss"]',
                          'row["train_loss"] = 2 * train_metrics["loss"]')
    assert edited != text
    loop.write_text(edited)
    after = versions("get")
    assert after[0] != before[0] and after[1] != before[1]
    assert after[2] == [False, False]
