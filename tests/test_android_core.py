"""The Android app's pure-Java core, run on the JVM from the normal pytest run.

* android_demo/core/run_tests.sh compiles core + JUnit4 tests with javac and runs them; its
  PolicyVectorsTest reads the SAME tests/data/policy_vectors.json as tests/test_policy.py.
* A vector mutated so that the Python policy decides differently makes BOTH suites fail.
* The manifest fixture the Java ManifestTest parses is what the Python schema writes today.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "android_demo" / "core" / "run_tests.sh"
DATA = Path(__file__).parent / "data"
VECTORS = DATA / "policy_vectors.json"

needs_jvm = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None,
                               reason="javac/java not installed (JDK 17 needed for the Java core tests)")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_java(*classes: str, vectors: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("RSNET_POLICY_VECTORS", None)
    if vectors is not None:
        env["RSNET_POLICY_VECTORS"] = str(vectors)
    return subprocess.run(["bash", str(SCRIPT), *classes], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=300)


@needs_jvm
def test_java_core_suite_passes():
    p = run_java()
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "OK (" in out
    assert "PolicyVectorsTest: " in out                     # the shared vectors were really read
    assert str(VECTORS) in out


# (case index, step index, new expectation): each is a decision the Python policy makes otherwise
MUTATIONS = [
    (1, 3, 192),    # hysteresis: battery 57 after 224 keeps 224
    (4, 3, 160),    # thermal: severe caps at 128
    (7, 2, 224),    # latency budget: 29.9 ms does not fit 224's p90 of 30 ms
]


@needs_jvm
@pytest.mark.parametrize("case_i, step_i, wrong", MUTATIONS)
def test_a_mutated_vector_fails_both_suites(tmp_path, case_i, step_i, wrong):
    data = json.loads(VECTORS.read_text())
    step = data["cases"][case_i]["steps"][step_i]
    right = step["expect"]
    assert right != wrong
    step["expect"] = wrong
    bad = tmp_path / "policy_vectors.json"
    bad.write_text(json.dumps(data, indent=1))

    py = _load("_policy_vectors_runner", Path(__file__).with_name("test_policy.py"))
    problems = py.run_vectors(bad)
    assert len(problems) == 1 and f"expected {wrong}, got {right}" in problems[0]

    p = run_java("PolicyVectorsTest", vectors=bad)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out[-4000:]
    assert f"expected {wrong}, got {right}" in out
    assert str(bad) in out

    ok = run_java("PolicyVectorsTest")                     # the real file still passes
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-4000:]


@needs_jvm
def test_missing_vectors_file_is_an_error(tmp_path):
    p = run_java("PolicyVectorsTest", vectors=tmp_path / "nope.json")
    assert p.returncode != 0
    assert "does not exist" in p.stdout + p.stderr


def test_manifest_fixture_matches_the_python_schema():
    gen = _load("_make_manifest_fixture", DATA / "make_manifest_fixture.py")
    assert (DATA / "manifest_fixture.json").read_text() == gen.render(), (
        "tests/data/manifest_fixture.json is stale: run python tests/data/make_manifest_fixture.py")
    from rsnet_edge.manifest import Manifest
    from rsnet_edge.policy import Policy
    m = Manifest.from_json((DATA / "manifest_fixture.json").read_text())
    assert Policy.from_dict(m.policy).resolutions == m.resolutions


def test_java_core_has_no_android_imports():
    src = ROOT / "android_demo" / "core" / "src"
    files = list(src.rglob("*.java"))
    assert files
    for f in files:
        for line in f.read_text().splitlines():
            assert not line.startswith(("import android.", "import androidx.")), f"{f}: {line}"
