"""ResultCache: stable keys, hits, stale and corrupt entries, atomic writes, code versions."""

import functools
import importlib
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edutools.ground.cache import (
    CACHE_ENV_VAR,
    MISS,
    ResultCache,
    cache_key,
    code_version,
    default_cache_dir,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path):
    return ResultCache("unit", version="v1", directory=tmp_path)


def test_key_ignores_order_and_float_noise_but_not_values():
    assert cache_key({"lr": 0.1, "momentum": 0.9}) == cache_key({"momentum": 0.9, "lr": 0.1})
    assert cache_key({"momentum": 0.9000000000000001}) == cache_key({"momentum": 0.9})
    assert cache_key({"lr": 0.1 + 0.2}) == cache_key({"lr": 0.3})
    assert cache_key({"batch_size": 32.0}) == cache_key({"batch_size": np.int64(32)})
    assert cache_key({"lr": 1e-13}) != cache_key({"lr": 0.0})  # relative, not absolute rounding
    assert cache_key({"lr": 0.1}) != cache_key({"lr": 0.11})
    assert cache_key({"seed": 123456789012345}) != cache_key({"seed": 123456789012346})
    assert cache_key({"flag": True}) != cache_key({"flag": 1})
    assert cache_key({"x": "1"}) != cache_key({"x": 1})
    assert cache_key({"a": {"b": [1, 2.0]}}) == cache_key({"a": {"b": (1.0, 2)}})
    assert len(cache_key({"a": 1})) == 32


def test_key_rejects_values_without_a_stable_text():
    with pytest.raises(TypeError, match="'model'"):
        cache_key({"model": object()})
    with pytest.raises(TypeError, match="mapping"):
        cache_key([("lr", 0.1)])


def test_put_then_get_and_miss(cache):
    params = {"lr": 0.1, "momentum": 0.9}
    assert cache.get(params) is MISS
    assert cache.put(params, {"loss": 0.25, "curve": [1.0, 0.5]})
    assert cache.get({"momentum": 0.9000000000000001, "lr": 0.1}) == {"loss": 0.25,
                                                                       "curve": [1.0, 0.5]}
    assert cache.get({"lr": 0.2, "momentum": 0.9}) is MISS
    assert cache.put({"x": 1}, None) and cache.get({"x": 1}) is None  # None is a value, not MISS
    assert cache.stats.hits == 2 and cache.stats.misses == 2 and cache.stats.writes == 2
    assert len(cache) == 2
    assert not list(cache.directory.glob(".tmp-*")), "temporary files left behind"


def test_other_version_is_stale_and_removed(tmp_path):
    ResultCache("unit", version="v1", directory=tmp_path).put({"a": 1}, 1.0)
    newer = ResultCache("unit", version="v2", directory=tmp_path)
    assert newer.get({"a": 1}) is MISS
    assert newer.stats.removed == 1 and not newer.path({"a": 1}).exists()


def test_entry_under_another_key_is_stale(cache):
    cache.put({"a": 1}, "for a=1")
    cache.path({"a": 1}).rename(cache.path({"a": 2}))  # e.g. a file copied by hand
    assert cache.get({"a": 2}) is MISS and cache.stats.removed == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "payload", "header"])
def test_corrupt_entry_is_a_miss_and_removed(cache, damage):
    params = {"lr": 0.1}
    cache.put(params, {"loss": np.arange(1000.0)})
    path = cache.path(params)
    blob = path.read_bytes()
    damaged = {
        "garbage": b"\x00\xffnot a pickle at all" * 10,
        "truncated": blob[: len(blob) // 2],
        "empty": b"",
        "payload": blob[:-20] + bytes(20),  # whole file, flipped tail: checksum catches it
        "header": blob[:17] + b"\x80\x05garbage" + blob[40:],
    }[damage]
    path.write_bytes(damaged)
    with pytest.warns(UserWarning, match=f"refused cache entry {path}"):
        assert cache.get(params) is MISS
    assert cache.stats.removed == 1 and not path.exists()
    cache.put(params, 3.0)
    assert cache.get(params) == 3.0


def test_concurrent_writers_never_expose_half_a_file(cache):
    params = {"shared": True}
    big = {"values": list(range(20_000))}
    errors = []

    def write():
        for _ in range(30):
            cache.put(params, big)

    def read():
        for _ in range(200):
            value = cache.get(params)
            if value is not MISS and value != big:
                errors.append(value)

    threads = [threading.Thread(target=write) for _ in range(2)] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert cache.stats.removed == 0, "a reader saw a partly written entry"
    assert cache.get(params) == big


def test_clear_removes_every_entry(cache):
    for i in range(3):
        cache.put({"i": i}, i)
    assert cache.clear() == 3 and len(cache) == 0 and cache.get({"i": 0}) is MISS
    assert ResultCache("never-used", version="v", directory=cache.directory).clear() == 0


def test_failed_write_warns_and_returns_false(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = ResultCache("unit", version="v1", directory=blocker)
    with pytest.warns(UserWarning, match="could not write"):
        assert cache.put({"a": 1}, 1) is False
    assert cache.get({"a": 1}) is MISS


def test_bad_constructor_arguments(tmp_path):
    with pytest.raises(ValueError, match="namespace"):
        ResultCache(" ", version="v", directory=tmp_path)
    with pytest.raises(TypeError, match="version"):
        ResultCache("x", version=3, directory=tmp_path)
    odd = ResultCache("../lessons/x y", version="v", directory=tmp_path)
    assert odd.directory.parent == tmp_path  # cannot escape the cache directory


def test_default_directory_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert ResultCache("ns", version="v").directory == tmp_path / "mine" / "ns"
    monkeypatch.delenv(CACHE_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == tmp_path / "xdg" / "edutools"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert REPO not in default_cache_dir().parents  # never inside the course's own files


def test_code_version_follows_the_source(tmp_path, monkeypatch):
    module_file = tmp_path / "experiment_v.py"
    module_file.write_text("def run(x):\n    return helper(x)\n\ndef helper(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("experiment_v")
    try:
        before = code_version(module.run)
        assert code_version(module.run) == before and len(before) == 16
        assert code_version(module.run, module) != before
        # Editing a helper the run calls (same module, not the run itself) changes the version.
        module_file.write_text("def run(x):\n    return helper(x)\n\n"
                               "def helper(x):\n    return 2 * x  # changed\n")
        module = importlib.reload(module)
        assert code_version(module.run) != before
    finally:
        sys.modules.pop("experiment_v", None)


def test_code_version_of_code_without_a_file_and_bad_objects():
    namespace = {}
    exec("def f(x):\n    return x + 1\n", namespace)  # like a function typed at a prompt
    exec("def g(x):\n    return x + 2\n", namespace)
    assert code_version(namespace["f"]) != code_version(namespace["g"])
    with pytest.raises(TypeError, match="partial"):
        code_version(functools.partial(namespace["f"], 1))
    with pytest.raises(ValueError, match="at least one"):
        code_version()
    with pytest.raises(TypeError, match="modules, classes or functions"):
        code_version(3)


def test_miss_survives_pickling():
    import pickle

    assert pickle.loads(pickle.dumps(MISS)) is MISS and not MISS and repr(MISS) == "MISS"


def test_sliders_panels_cache_and_grid_share_one_rounding_rule():
    from edutools.face.widgets import clean_value
    from edutools.ground.canonical import canonical_float

    for noisy, short in ((0.1 + 0.2, 0.3), (0.5 * (1 - 0.9), 0.05), (0.9000000000000001, 0.9)):
        assert canonical_float(noisy) == clean_value(noisy) == short
        assert cache_key({"lr": noisy}) == cache_key({"lr": short})
    # Two values apart in their 11th significant digit stay apart everywhere (one rule, 12 digits)
    near, far = 0.123456789012, 0.123456789112
    assert clean_value(near) != clean_value(far)
    assert cache_key({"lr": near}) != cache_key({"lr": far})
