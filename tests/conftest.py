"""Shared test helpers: the repo root, a clean environment for CLI subprocesses, tiny data."""

import os
from pathlib import Path

import pytest

from training.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict:
    """Environment for `python -m ...` subprocesses: one OpenMP thread (two cores, several
    processes: more threads only oversubscribe), the repo importable, no inherited torchrun rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


@pytest.fixture(autouse=True, scope="session")
def _private_unpack_cache(tmp_path_factory):
    """RSFOLD artifacts unpack into a cache (rsnet_edge.rsfold.cache_dir): keep the suite's out of
    the user's ~/.cache (subprocesses inherit the variable)."""
    os.environ.setdefault("RSNET_EDGE_CACHE", str(tmp_path_factory.mktemp("rsnet_cache")))
    yield


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """4 classes x 8 train / 2 val images of 64 px from the built-in generator."""
    return generate(tmp_path_factory.mktemp("tiny") / "ds", num_classes=4, train_per_class=8,
                    val_per_class=2, size=64, progress=False)
