"""Session fixtures: a private unpack cache, tiny data. Shared helpers live in tests/helpers.py."""

import os

import pytest

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


# ------------------------------------------------------------- no silent skips under CI (issue 22)
#: what the default run's skip helpers look for: (import name, pip name). Without them the Java
#: core / backend tests turn into skips, which is fine on a laptop but not in CI.
CI_MODULES = (("executorch", "executorch"), ("ai_edge_litert", "ai-edge-litert"),
              ("litert_torch", "litert-torch"), ("onnxruntime", "onnxruntime"), ("onnx", "onnx"),
              ("timm", "timm"))


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
