"""edutools.ground.threads: CPU budget from fake cgroup files, the policy, the env override."""

import os
from pathlib import Path

import pytest
import torch

from edutools.ground import threads
from edutools.ground.threads import (
    CpuBudget,
    ThreadChoice,
    available_cpus,
    cgroup_quota,
    choose_threads,
    configure_threads,
    init_worker,
    single_thread,
    thread_reason,
)


@pytest.fixture
def no_proc(tmp_path: Path) -> Path:
    """A /proc/self/cgroup stand-in that puts the process at the root of every hierarchy."""
    path = tmp_path / "proc_self_cgroup"
    path.write_text("0::/\n")
    return path


@pytest.fixture
def fixed_machine(monkeypatch):
    """Pretend the machine has 16 logical cores and an affinity mask of 12."""
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(12)),
                        raising=False)


@pytest.fixture
def restore_torch_threads():
    """Put torch's thread count and edutools' record of it back after the test."""
    before, choice = torch.get_num_threads(), threads._last_choice
    yield
    torch.set_num_threads(before)
    threads._last_choice = choice


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_fractional_quota_rounds_up(tmp_path, no_proc, fixed_machine):
    write(tmp_path / "cg" / "cpu.max", "150000 100000\n")
    budget = available_cpus(cgroup_root=tmp_path / "cg", proc_cgroup=no_proc)
    assert budget.quota == pytest.approx(1.5)
    assert budget.effective == 2
    assert "cpu.max" in budget.source


def test_v2_max_means_no_quota(tmp_path, no_proc, fixed_machine):
    write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    budget = available_cpus(cgroup_root=tmp_path / "cg", proc_cgroup=no_proc)
    assert budget.quota is None
    assert budget.effective == 12  # the affinity mask is then the tightest limit


def test_v2_parent_quota_limits_a_child_cgroup(tmp_path, fixed_machine):
    proc = tmp_path / "proc"
    write(proc, "0::/user.slice/job.scope\n")
    write(tmp_path / "cg" / "user.slice" / "cpu.max", "300000 100000")
    write(tmp_path / "cg" / "user.slice" / "job.scope" / "cpu.max", "400000 100000")
    assert cgroup_quota(cgroup_root=tmp_path / "cg", proc_cgroup=proc)[0] == pytest.approx(3.0)
    assert available_cpus(cgroup_root=tmp_path / "cg", proc_cgroup=proc).effective == 3


@pytest.mark.parametrize("folder", ["cpu", "cpu,cpuacct"])
def test_v1_quota_and_period(tmp_path, no_proc, fixed_machine, folder):
    write(tmp_path / "cg" / folder / "cpu.cfs_quota_us", "250000\n")
    write(tmp_path / "cg" / folder / "cpu.cfs_period_us", "100000\n")
    budget = available_cpus(cgroup_root=tmp_path / "cg", proc_cgroup=no_proc)
    assert budget.quota == pytest.approx(2.5)
    assert budget.effective == 3


def test_v1_minus_one_means_no_quota(tmp_path, no_proc, fixed_machine):
    write(tmp_path / "cg" / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cg" / "cpu" / "cpu.cfs_period_us", "100000\n")
    quota, where = cgroup_quota(cgroup_root=tmp_path / "cg", proc_cgroup=no_proc)
    assert quota is None
    assert "unlimited" in where


def test_missing_files_mean_no_quota(tmp_path, fixed_machine):
    budget = available_cpus(cgroup_root=tmp_path / "nothing",
                            proc_cgroup=tmp_path / "no_proc_file")
    assert budget.quota is None
    assert (budget.logical_cores, budget.affinity, budget.effective) == (16, 12, 12)
    assert "no cgroup quota files" in budget.source


def test_unknown_affinity_falls_back_to_cores_and_a_tiny_quota_gives_one(
        tmp_path, no_proc, monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    monkeypatch.delattr(threads.os, "sched_getaffinity", raising=False)
    write(tmp_path / "cg" / "cpu.max", "20000 100000")
    budget = available_cpus(cgroup_root=tmp_path / "cg", proc_cgroup=no_proc)
    assert budget.affinity is None
    assert budget.quota == pytest.approx(0.2)
    assert budget.effective == 1


def test_real_machine_budget_is_consistent():
    budget = available_cpus()
    assert 1 <= budget.effective <= budget.logical_cores
    if budget.affinity is not None:
        assert budget.effective <= budget.affinity


@pytest.mark.parametrize("effective", [1, 2, 4, 16, 64])
def test_policy_uses_one_thread_and_says_why(effective):
    budget = CpuBudget(logical_cores=64, affinity=64, quota=float(effective),
                       effective=effective, source="test")
    choice = choose_threads(budget)
    assert isinstance(choice, ThreadChoice)
    assert choice.threads == 1
    assert "EDUTOOLS_THREADS unset" in choice.reason and "64 cores" in choice.reason


def test_policy_rejects_a_non_budget():
    with pytest.raises(TypeError, match="budget"):
        choose_threads(4)


def test_configure_sets_torch_threads(monkeypatch, restore_torch_threads):
    monkeypatch.delenv(threads.THREADS_ENV_VAR, raising=False)
    torch.set_num_threads(2)
    choice = configure_threads()
    assert torch.get_num_threads() == choice.threads == 1
    assert thread_reason() == choice.reason
    assert configure_threads() == choice  # a second call changes nothing


def test_env_override_is_applied(monkeypatch, restore_torch_threads):
    monkeypatch.setenv(threads.THREADS_ENV_VAR, " 3 ")
    choice = configure_threads()
    assert choice.threads == 3 and torch.get_num_threads() == 3
    assert "EDUTOOLS_THREADS=3" in thread_reason()
    torch.set_num_threads(2)
    assert "set outside edutools" in thread_reason()


@pytest.mark.parametrize("value", ["0", "abc", "-2", "1.5"])
def test_bad_env_override_names_the_value(monkeypatch, restore_torch_threads, value):
    monkeypatch.setenv(threads.THREADS_ENV_VAR, value)
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match=f"EDUTOOLS_THREADS='{value}'"):
        configure_threads()
    assert torch.get_num_threads() == before


def test_environment_report_shows_the_reason(monkeypatch, restore_torch_threads):
    from edutools.ground.device import environment_report

    monkeypatch.delenv(threads.THREADS_ENV_VAR, raising=False)
    choice = configure_threads()
    row = dict(environment_report().rows())["CPU threads used by torch"]
    assert row == f"{choice.threads} ({choice.reason})"


def test_init_worker_and_single_thread(monkeypatch, restore_torch_threads):
    for name in threads.WORKER_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(2)
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    init_worker()
    assert torch.get_num_threads() == 1
    assert all(os.environ[name] == "1" for name in threads.WORKER_ENV_VARS)


def test_import_leaves_torch_alone_and_first_use_applies_one_thread(tmp_path):
    # A fresh interpreter: import edutools (and a lesson's modules), then the first get_device.
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(2); import edutools; "
            "import edutools.engine.experiments.cohen_eos; a = torch.get_num_threads(); "
            "edutools.get_device(); b = torch.get_num_threads(); print(a, b)")
    import edutools

    env = {k: v for k, v in os.environ.items() if k != "EDUTOOLS_THREADS"}
    env["PYTHONPATH"] = str(Path(edutools.__file__).resolve().parents[1])  # this edutools
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out == ["2", "1"]
    env["EDUTOOLS_THREADS"] = "2"
    code = ("import torch; import edutools; edutools.seed_everything(0); "
            "print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out == ["2"]


def test_ensure_threads_applies_the_policy_once(monkeypatch, restore_torch_threads):
    monkeypatch.delenv("EDUTOOLS_THREADS", raising=False)
    monkeypatch.setattr(threads, "_last_choice", None)
    torch.set_num_threads(2)
    first = threads.ensure_threads()
    assert first.threads == 1 and torch.get_num_threads() == 1
    torch.set_num_threads(2)  # a learner's own choice after the first use is kept
    assert threads.ensure_threads() is first and torch.get_num_threads() == 2
