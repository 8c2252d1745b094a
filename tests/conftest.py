"""Session fixtures: a private unpack cache, tiny data. Shared helpers live in tests/helpers.py."""

import os

import pytest

from helpers import ROOT, subprocess_env  # noqa: F401  (re-exported for older test modules)
from training.synthetic import generate


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
