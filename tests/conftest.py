"""Shared fixtures: small data on the CPU so unit tests are fast and deterministic."""

import os
import tempfile

import pytest
import torch

# Unit tests measure logic, not speed: one thread avoids oversubscribing a 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("EDUTOOLS_QUIET", "1")
# Unit tests never read or fill the learner's own result cache.
os.environ["EDUTOOLS_CACHE_DIR"] = tempfile.mkdtemp(prefix="edutools-test-cache-")


@pytest.fixture
def teacher():
    from edutools.ground.data import teacher_task

    return teacher_task(num_train=200, num_val=100, input_dim=6, num_classes=3, seed=0,
                        device="cpu")
