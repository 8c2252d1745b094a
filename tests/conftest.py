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


# ------------------------------------------------------------- no silent skips under CI (issue 22)
#: what the default run's skip helpers look for: (import name, pip name). Without them the Java
#: core / backend tests turn into skips, which is fine on a laptop but not in CI.
CI_MODULES = (("executorch", "executorch"), ("ai_edge_litert", "ai-edge-litert"),
              ("litert_torch", "litert-torch"), ("onnxruntime", "onnxruntime"), ("onnx", "onnx"))


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def ci_missing() -> str | None:
    """One line naming what the default run lacks and how to install it, or None if nothing.
    Looks the packages up the way the skip helpers do (``find_spec``: nothing is imported here)."""
    import importlib.util
    import shutil
    needs = []
    tools = [t for t in ("javac", "java") if shutil.which(t) is None]
    if tools:
        needs.append(f"{'/'.join(tools)} (install a JDK: apt-get install -y default-jdk-headless)")
    mods = [pip for mod, pip in CI_MODULES if importlib.util.find_spec(mod) is None]
    if mods:
        needs.append(f"Python package(s) {', '.join(mods)} (pip install -e '.[all,dev]')")
    if not needs:
        return None
    return "CI=true, so no test may skip for lack of: " + "; ".join(needs)


def pytest_configure(config):
    """Under CI (CI=true) a missing JDK or backend fails the run at once with one line."""
    if under_ci():
        msg = ci_missing()
        if msg:
            raise pytest.UsageError(msg)
