"""The Android app's pure-Java core and its Android layer, checked on the JVM in the normal run.

* android_demo/core/run_tests.sh compiles core + JUnit4 tests with javac and runs them; its
  PolicyVectorsTest reads the SAME tests/data/policy_vectors.json as tests/test_policy.py.
* A vector mutated so that the Python policy decides differently makes BOTH suites fail.
* The manifest fixture the Java ManifestTest parses is what the Python schema writes today.
* API conformance (issue 13): every app source compiles against signature-only stubs of the real
  ExecuTorch / Android / AndroidX / CameraX APIs (android_demo/apistubs, test doubles); a call that
  does not match (e.g. ``int err = module.loadMethod(...)``) fails the compile.
* Shared manifest-refusal vectors (issue 10 item 8): Python and Java give the same one line.
* Shared preprocessing vectors (issue 12 item 3): Java's tensor = Python's within 1/255.
* RSFOLD (issues 9, 20, 21): Java unpacks Python's containers (version 2: one program per
  resolution, each by its entry point or all into a folder; version 1) to the same bytes / sha256
  and refuses bad ones, the new bounds included, with Python's messages, writing nothing, in
  bounded memory.
* copy_assets.sh (issue 10 item 13): recorded name, samples across classes, quoting, refusals.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "android_demo" / "core" / "run_tests.sh"
DATA = Path(__file__).parent / "data"
VECTORS = DATA / "policy_vectors.json"

needs_jvm = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None,
                               reason="javac/java not installed (JDK 17 needed for the Java core tests)")


@functools.lru_cache(maxsize=None)
def java_jars() -> dict[str, str]:
    """The Gson / JUnit 4 / Hamcrest jars, as run_tests.sh finds them: the one place that locates them
    (GSON_JAR / JUNIT_JAR / HAMCREST_JAR, else /usr/share/java, installed with apt-get when missing
    and root). When one cannot be found the calling test fails with run_tests.sh's line saying what
    to install."""
    p = subprocess.run(["bash", str(SCRIPT), "--jars"], cwd=ROOT, text=True, capture_output=True,
                       timeout=600)
    if p.returncode != 0:
        pytest.fail((p.stderr.strip().splitlines() or [f"{SCRIPT} --jars failed"])[-1], pytrace=False)
    jars = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert set(jars) == {"gson", "junit", "hamcrest"} and all(map(os.path.isfile, jars.values())), p.stdout
    return jars


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


# ------------------------------------------------ no silent skips under CI (issue 22 item 3)
NO_JDK_LINE = ("CI=true, so no test may skip for lack of: javac/java (install a JDK: apt-get install -y "
               "default-jdk-headless)")


def test_ci_fails_the_run_instead_of_skipping_without_a_jdk(tmp_path):
    """A whole pytest run under CI=true with no javac/java on PATH stops at once (nothing runs, so
    nothing is skipped) with one line saying what to install."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", CI="true", PATH=str(tmp_path))
    code = ("import sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
            "'tests/test_policy.py::test_policy_module_is_stdlib_only']))")
    p = subprocess.run([os.path.realpath(sys.executable), "-c", code], cwd=ROOT, env=env, text=True,
                       capture_output=True, timeout=300)
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 4, out[-3000:]                 # pytest's usage error
    assert len(out.splitlines()) == 1 and out.startswith(f"ERROR: {NO_JDK_LINE}"), out[-3000:]


def test_ci_check_names_what_is_missing(tmp_path, monkeypatch):
    """The check behind it (tests/conftest.py): JDK and backends, only under CI."""
    import conftest
    monkeypatch.setenv("PATH", str(tmp_path))                # no javac / java
    for mod, _ in conftest.CI_MODULES:                        # find_spec -> None: not installed
        monkeypatch.setitem(sys.modules, mod, None)
    assert conftest.ci_missing() == (
        f"{NO_JDK_LINE}; Python package(s) executorch, ai-edge-litert, litert-torch, onnxruntime, "
        "onnx, timm (pip install -e '.[all,dev]')")
    for value, ci in (("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False)):
        monkeypatch.setenv("CI", value)
        assert conftest.under_ci() is ci
    monkeypatch.delenv("CI")
    assert not conftest.under_ci()


@needs_jvm
def test_the_gson_path_comes_from_run_tests_sh(tmp_path):
    """java_jars() asks run_tests.sh (the one place); an override is honoured, a bad one refused."""
    gson = Path(java_jars()["gson"])
    assert gson.is_file() and "gson" in gson.name
    mine = tmp_path / "my-gson.jar"
    shutil.copy(gson, mine)
    env = dict(os.environ, GSON_JAR=str(mine))
    p = subprocess.run(["bash", str(SCRIPT), "--jars"], env=env, text=True, capture_output=True, timeout=600)
    assert p.returncode == 0 and f"gson={mine}" in p.stdout.splitlines(), p.stdout + p.stderr
    env["GSON_JAR"] = str(tmp_path / "nope.jar")
    p = subprocess.run(["bash", str(SCRIPT), "--jars"], env=env, text=True, capture_output=True, timeout=600)
    assert p.returncode == 2 and p.stderr.strip() == f"run_tests.sh: GSON_JAR={tmp_path / 'nope.jar'} is not a file"


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


# ------------------------------------------------------------- app API conformance (issue 13)
APP = ROOT / "android_demo" / "app" / "src" / "main"
STUBS = ROOT / "android_demo" / "apistubs" / "java"
CORE_MAIN = ROOT / "android_demo" / "core" / "src" / "main" / "java"


def _app_r_java(res: Path) -> str:
    """The app's R class as AAPT would name it: ids from @+id/ in layouts, layouts, strings."""
    import re
    ids = sorted({m for f in (res / "layout").glob("*.xml") for m in re.findall(r"@\+id/(\w+)", f.read_text())})
    layouts = sorted(f.stem for f in (res / "layout").glob("*.xml"))
    strings = sorted(set(re.findall(r'<string\s+name="(\w+)"', (res / "values" / "strings.xml").read_text())))
    def block(kind, names):
        return f"  public static final class {kind} {{\n" + "".join(
            f"    public static final int {n} = 0x7f0{i:05x};\n" for i, n in enumerate(names)) + "  }\n"
    return ("package org.rsnetedge.demo;\n// generated by tests/test_android_core.py from app/src/main/res\n"
            "public final class R {\n" + block("id", ids) + block("layout", layouts) + block("string", strings) + "}\n")


def compile_app_against_stubs(app_java: Path, out: Path) -> subprocess.CompletedProcess:
    """javac every app source + the core + the API stubs (test doubles) + a generated R."""
    gson = java_jars()["gson"]
    gen = out / "gen" / "org" / "rsnetedge" / "demo"
    gen.mkdir(parents=True)
    (gen / "R.java").write_text(_app_r_java(APP / "res"))
    sources = sorted(map(str, [*app_java.rglob("*.java"), *CORE_MAIN.rglob("*.java"),
                               *STUBS.rglob("*.java"), gen / "R.java"]))
    (out / "sources.txt").write_text("\n".join(sources) + "\n")
    (out / "classes").mkdir()
    return subprocess.run(["javac", "--release", "8", "-Xlint:-options", "-encoding", "UTF-8",
                           "-cp", str(gson), "-d", str(out / "classes"), f"@{out / 'sources.txt'}"],
                          cwd=ROOT, text=True, capture_output=True, timeout=300)


@needs_jvm
def test_app_compiles_against_the_real_api_signatures(tmp_path):
    app_files = sorted((APP / "java").rglob("*.java"))
    assert {f.name for f in app_files} >= {"MainActivity.java", "ModelRunner.java", "Frames.java"}
    p = compile_app_against_stubs(APP / "java", tmp_path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-6000:]
    classes = {str(c.relative_to(tmp_path / "classes")) for c in (tmp_path / "classes").rglob("*.class")}
    for f in app_files:                                      # every app file really compiled
        assert f"org/rsnetedge/demo/{f.stem}.class" in classes


# (what the broken call looks like, what javac must say): the issue-13 regression and its kin
API_BREAKS = [
    ("module.loadMethod(method);", "int err = module.loadMethod(method);", "incompatible types"),
    ("module = Module.load(program.getAbsolutePath());",
     "module = Module.load(program.getAbsolutePath(), \"x\");", "String cannot be converted to int"),
    ("out[0].toTensor().getDataAsFloatArray()", "out[0].toTensor().dataAsFloatArray", "cannot find symbol"),
]


@needs_jvm
@pytest.mark.parametrize("good, bad, error", API_BREAKS)
def test_a_call_that_does_not_match_the_api_fails_the_compile(tmp_path, good, bad, error):
    app = tmp_path / "app"
    shutil.copytree(APP / "java", app)
    runner = app / "org" / "rsnetedge" / "demo" / "ModelRunner.java"
    text = runner.read_text()
    assert good in text
    runner.write_text(text.replace(good, bad, 1))
    p = compile_app_against_stubs(app, tmp_path / "out")
    assert p.returncode != 0
    assert error in p.stderr and "ModelRunner.java" in p.stderr, p.stderr[-3000:]


def test_api_stubs_are_signature_only_test_doubles():
    import re
    files = sorted(STUBS.rglob("*.java"))
    assert len(files) > 40
    for f in files:
        text = f.read_text()
        assert text.startswith("// TEST DOUBLE") and "Mirrors: " in text.splitlines()[1], f
        for body in re.findall(r"\)\s*(?:throws [\w., ]+)?\{([^{}]*)\}", text):
            body = body.strip()
            assert body in ("", 'throw new UnsupportedOperationException("stub");') or (
                body.startswith("super(") and body.endswith('throw new UnsupportedOperationException("stub");')), (f, body)
    gradle = (ROOT / "android_demo" / "settings.gradle").read_text() + (ROOT / "android_demo" / "app" / "build.gradle").read_text()
    assert "apistubs" not in gradle                          # never part of the app build


# --------------------------------------------- manifest rule, shared with Java (issue 10 item 8)
BAD_MANIFESTS = DATA / "bad_manifest_vectors.json"


def _apply_case(case: dict) -> dict:
    d = json.loads((DATA / "manifest_fixture.json").read_text())
    node = d
    for k in case["path"][:-1]:
        node = node[k]
    node[case["path"][-1]] = case["value"]
    return d


@pytest.mark.parametrize("case", json.loads(BAD_MANIFESTS.read_text())["cases"], ids=lambda c: c["name"])
def test_shared_manifest_vectors_python(case):
    from rsnet_edge.manifest import Manifest, ManifestError
    d = _apply_case(case)
    if case["error"] is None:
        Manifest.from_dict(d)
    else:
        with pytest.raises(ManifestError) as e:
            Manifest.from_dict(d)
        assert str(e.value) == case["error"]


@pytest.mark.parametrize("case", json.loads(BAD_MANIFESTS.read_text())["json_cases"], ids=lambda c: c["name"])
def test_shared_manifest_json_vectors_python(case):
    """Raw manifest texts (issue 21 item 8): too deep, a number too long, too large -> the same one
    line as the Java reader (ManifestVectorsTest.sharedJsonVectors), never a RecursionError."""
    from rsnet_edge.manifest import Manifest, ManifestError
    text = "".join(piece * times for piece, times in case["text"])
    with pytest.raises(ManifestError) as e:
        Manifest.from_json(text)
    assert str(e.value) == case["error"]
    with pytest.raises(ManifestError) as e:                  # the same from UTF-8 bytes
        Manifest.from_json(text.encode())
    assert str(e.value) == case["error"]


@needs_jvm
def test_shared_manifest_vectors_java_and_a_mutated_vector_fails(tmp_path):
    p = run_java("ManifestVectorsTest")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert f"cases from {BAD_MANIFESTS}" in out and f"json cases from {BAD_MANIFESTS}" in out
    # the Java test really compares: an expectation the code does not produce fails it
    root = tmp_path / "repo"
    (root / "tests" / "data").mkdir(parents=True)
    shutil.copy(DATA / "manifest_fixture.json", root / "tests" / "data")
    data = json.loads(BAD_MANIFESTS.read_text())
    data["cases"][2]["error"] = data["cases"][2]["error"].replace("'foo'", "'bar'")
    (root / "tests" / "data" / BAD_MANIFESTS.name).write_text(json.dumps(data))
    gson_etc = ":".join(java_jars()[k] for k in ("gson", "junit", "hamcrest"))
    build = ROOT / "android_demo" / "core" / "build"
    q = subprocess.run(["java", f"-Drsnet.root={root}", "-cp",
                        f"{build / 'classes'}:{build / 'test-classes'}:{gson_etc}",
                        "org.junit.runner.JUnitCore", "org.rsnetedge.core.ManifestVectorsTest"],
                       text=True, capture_output=True, timeout=120)
    assert q.returncode != 0 and "unknown key in input" in q.stdout + q.stderr


# ------------------------------------- fold-at-load unpacker, Java vs Python (issues 9, 20, 21)
@pytest.fixture(scope="module")
def java_core_cp():
    """Classpath of the compiled Java core (compiled by run_tests.sh, which also runs its JUnit)."""
    p = run_java("FoldUnpackerTest")                      # its JUnit result is checked elsewhere
    classes = ROOT / "android_demo" / "core" / "build" / "classes"
    assert (classes / "org" / "rsnetedge" / "core" / "FoldUnpacker.class").is_file(), p.stderr[-4000:]
    return f"{classes}:{java_jars()['gson']}"


def java_unpack(cp: str, src: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", cp, "org.rsnetedge.core.FoldUnpacker", str(src), str(out), *args],
                          text=True, capture_output=True, timeout=120)


def _random_programs(seed: int = 0, n: int = 3):
    """``n`` programs, one per resolution (the first also serves ``forward``), written by Python's
    rsfold.pack as a version-2 container: each folds the SAME conv weight W (inner 27) and the same
    channels-last weight (inner 1) with scales of its own, holds the same 4 KB constant block
    (declared shared: stored once) and random bytes of its own at odd and even offsets."""
    import numpy as np
    from rsnet_edge import rsfold
    rng = np.random.default_rng(seed)
    w_conv = rng.standard_normal(8 * 27).astype("<f4")       # [Cout=8, 27]: inner = 27
    w_fc = rng.standard_normal(6 * 5).astype("<f4")           # channels last: inner = 1
    const = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    programs = []
    for k in range(n):
        parts, holes, shared, pos = [], [], [], 0

        def put(b, hole=None, share=False):
            nonlocal pos
            if hole is not None:
                holes.append(rsfold.Hole(pos, *hole))
            if share:
                shared.append((pos, len(b)))
            parts.append(b)
            pos += len(b)

        def fold(w, inner, c):
            s = rng.uniform(-2, 2, c).astype("<f4")
            put(rsfold.fold(w, s, inner).tobytes(), hole=(w, s, inner))

        put(rng.integers(0, 256, 101 + k, dtype=np.uint8).tobytes())
        fold(w_conv, 27, 8)
        put(rng.integers(0, 256, 3, dtype=np.uint8).tobytes())
        put(const, share=True)
        fold(w_fc, 1, 5)
        put(rng.integers(0, 256, 17 + 2 * k, dtype=np.uint8).tobytes())
        r = 64 - 16 * k
        programs.append(rsfold.Program((f"forward_{r}", "forward") if k == 0 else (f"forward_{r}",),
                                       b"".join(parts), holes, shared))
    return programs, rsfold.pack(programs, inner="pte")


def _rewrite(blob: bytes, fn=None, payload: bytes | None = None, text=None) -> bytes:
    """The container with its header JSON edited by ``fn(head)`` (or its text by ``text(str)``)."""
    import struct
    hlen = struct.unpack_from("<Q", blob, 8)[0]
    head = json.loads(blob[16:16 + hlen])
    if fn is not None:
        fn(head)
    hb = json.dumps(head, separators=(",", ":"))
    hb = (text(hb) if text is not None else hb).encode("utf-8")
    return b"RSFOLD01" + struct.pack("<Q", len(hb)) + hb + (blob[16 + hlen:] if payload is None else payload)


def _v1(blob: bytes) -> bytes:
    """A one-program container as version 1 (``output`` + ``ops`` at the top level)."""
    def fn(h):
        (o,) = h.pop("outputs")
        h.update(version=1, output={"size": o["size"], "sha256": o["sha256"]}, ops=o["ops"])
    return _rewrite(blob, fn)


def _v1_container(seed: int = 0):
    """(program bytes, version-1 container) of the first program of ``_random_programs``."""
    from rsnet_edge import rsfold
    programs, _ = _random_programs(seed, 1)
    prog = rsfold.Program(None, programs[0].data, programs[0].holes, programs[0].shared)
    return prog.data, _v1(rsfold.pack([prog], inner="pte"))


def _python_unpacks(blob: bytes, name: str) -> list[bytes]:
    """Every program, in order, as Python unpacks them (raises RsfoldError at the first refusal)."""
    from rsnet_edge import rsfold
    box = rsfold.Container.from_bytes(blob, name)
    return [box.unpack(k) for k in range(len(box.outputs))]


@needs_jvm
def test_java_unpacks_python_containers_byte_for_byte(tmp_path, java_core_cp):
    """Version 2: each program alone (``--entry``; the top one by ``forward`` too) and all of them
    into a folder, named as Python's CLI names them; version 1: the one-program form."""
    import hashlib
    from rsnet_edge import rsfold
    for seed in (0, 1):
        programs, blob = _random_programs(seed)
        src = tmp_path / f"m{seed}.pte.rsfold"
        src.write_bytes(blob)
        (at, n), = programs[0].shared
        assert blob.count(programs[0].data[at:at + n]) == 1 and n == 4096    # the shared constants: once
        py = _python_unpacks(blob, src.name)
        assert py == [p.data for p in programs]
        for k, prog in enumerate(programs):
            for entry in prog.entries:
                out = tmp_path / f"m{seed}_{entry}.pte"
                p = java_unpack(java_core_cp, src, out, "--entry", entry)
                assert p.returncode == 0, p.stderr
                want = hashlib.sha256(prog.data).hexdigest()
                assert p.stdout.split() == [want, str(out)]
                assert out.read_bytes() == prog.data
        java_dir, py_dir = tmp_path / f"java{seed}", tmp_path / f"py{seed}"
        p = java_unpack(java_core_cp, src, java_dir)
        assert p.returncode == 0, p.stderr
        q = subprocess.run([sys.executable, "-m", "rsnet_edge.rsfold", str(src), str(py_dir)], cwd=ROOT,
                           text=True, capture_output=True, timeout=300)
        assert q.returncode == 0, q.stderr
        assert sorted(p.stdout.splitlines()) == sorted(q.stdout.replace(str(py_dir), str(java_dir)).splitlines())
        files = {f.name: f.read_bytes() for f in java_dir.iterdir()}
        assert files == {f.name: f.read_bytes() for f in py_dir.iterdir()}
        assert files == {f"{prog.entries[0]}.pte": prog.data for prog in programs}
        (tmp_path / "one.pte").write_bytes(b"mine")                 # several: OUT must be a folder
        p = java_unpack(java_core_cp, src, tmp_path / "one.pte")
        assert p.returncode == 2 and "is an existing file, not a folder" in p.stderr
        assert (tmp_path / "one.pte").read_bytes() == b"mine"
        p = java_unpack(java_core_cp, src, tmp_path / "x.pte", "--entry", "forward_8")
        with pytest.raises(rsfold.RsfoldError) as e:
            rsfold.Container.from_bytes(blob, src.name).output_for("forward_8")
        assert p.returncode == 2 and p.stderr.strip() == f"error: {e.value}"
        # version 1, the existing command line
        program, v1 = _v1_container(seed)
        src1 = tmp_path / f"v1_{seed}.pte.rsfold"
        src1.write_bytes(v1)
        out = tmp_path / f"v1_{seed}.pte"
        p = java_unpack(java_core_cp, src1, out)
        assert p.returncode == 0, p.stderr
        assert _python_unpacks(v1, src1.name) == [program] and out.read_bytes() == program
        assert p.stdout.split()[0] == hashlib.sha256(program).hexdigest()
    left = [x.name for x in tmp_path.rglob(".*")]
    assert left == []                                                       # no temp file left anywhere


def _amplified(blob: bytes, op: dict) -> bytes:
    """One program re-reading the same 4 KB of payload 400 times (1.6 MB from 4 KB): valid-looking,
    refused before any work, by the overlap rule (copies) or the 64x bound (folds)."""
    def fn(h):
        h["outputs"] = [dict(h["outputs"][0], ops=[dict(op) for _ in range(400)], size=400 * op["size"])]
    return _rewrite(blob, fn, payload=b"\0" * 4096)


def _bound_cases(blob: bytes):
    """(name, bytes): the bounds of issue 21 item 2 (the same rows as tests/test_fold_at_load.py)."""
    import struct
    o0 = json.loads(blob[16:16 + struct.unpack_from("<Q", blob, 8)[0]])["outputs"][0]["ops"]
    k = next(i for i, op in enumerate(o0) if op["op"] == "scale_f32")
    c = [i for i, op in enumerate(o0) if op["op"] == "copy"]
    return [
        ("amplified copies", _amplified(blob, {"op": "copy", "src": 0, "size": 4000})),
        ("amplified folds", _amplified(blob, {"op": "scale_f32", "src": 0, "size": 4000, "scale": 4000,
                                              "channels": 1, "inner": 1000})),
        ("copies overlap", _rewrite(blob, lambda h: h["outputs"][0]["ops"][c[1]].update(
            src=h["outputs"][0]["ops"][c[0]]["src"]))),
        ("partial channel", _rewrite(blob, lambda h: h["outputs"][0]["ops"][k].update(inner=5))),
        ("deep header", blob[:8] + struct.pack("<Q", 200_000) + b"[" * 200_000),
        ("deep header in a key", _rewrite(blob, text=lambda t: t[:-1] + ',"x":' + "[" * 5000 + "]" * 5000 + "}")),
        # within the Java parser's own limits, over the JSON rule both sides apply (rsnet_edge.jsonio)
        ("header nested 100 deep in a key", _rewrite(blob, text=lambda t: t[:-1] + ',"x":' + "[" * 100 + "]" * 100 + "}")),
        ("a 150-digit number in a key", _rewrite(blob, text=lambda t: t[:-1] + ',"x":' + "7" * 150 + "}")),
        ("huge header", blob[:8] + struct.pack("<Q", 1 << 40) + blob[16:]),
        ("header of 2^64-1 bytes", blob[:8] + b"\xff" * 8 + blob[16:]),
        ("header just over 64 MiB", blob[:8] + struct.pack("<Q", (1 << 26) + 1) + blob[16:]),
    ]


def _corrupt_cases(blob: bytes):
    """(name, corrupted version-2 bytes) - each refused by Python's rsfold with one line."""
    import struct
    hlen = struct.unpack_from("<Q", blob, 8)[0]
    head = json.loads(blob[16:16 + hlen])
    k = next(i for i, op in enumerate(head["outputs"][0]["ops"]) if op["op"] == "scale_f32")
    w_at = 16 + hlen + head["outputs"][0]["ops"][k]["src"] + 5
    flip = bytearray(blob)
    flip[w_at] ^= 0x40                                          # the shared W: program 0 fails first
    out1 = lambda fn: _rewrite(blob, lambda h: fn(h["outputs"][1]))  # noqa: E731
    return [
        ("bad magic", b"RSFOLD02" + blob[8:]),
        ("truncated header", blob[:16 + hlen // 2]),
        ("truncated payload", blob[:-7]),
        ("not utf-8", blob[:16] + b"\xff" + blob[17:]),
        ("trailing data", _rewrite(blob, text=lambda t: t + " x")),
        ("leading zero", _rewrite(blob, text=lambda t: t.replace('"version":2', '"version":02'))),
        ("a 5000-digit int", _rewrite(blob, text=lambda t: t.replace('"version":2', '"version":' + "9" * 5000))),
        ("version 3", _rewrite(blob, lambda h: h.update(version=3))),
        ("version 2.5", _rewrite(blob, lambda h: h.update(version=2.5))),
        ("version NaN", _rewrite(blob, text=lambda t: t.replace('"version":2', '"version":NaN'))),
        ("version 1e400", _rewrite(blob, text=lambda t: t.replace('"version":2', '"version":1e400'))),
        ("version a list", _rewrite(blob, lambda h: h.update(version=["x'", None, True, {"k": 1e16}]))),
        ("version 2.0 is 2", _rewrite(blob, lambda h: (h.update(version=2.0), h["outputs"][0].update(size=1)))),
        ("unknown inner", _rewrite(blob, lambda h: h.update(inner="p\u00e9te\u200b\n"))),
        ("no outputs", _rewrite(blob, lambda h: h.update(outputs=[]))),
        ("outputs not objects", _rewrite(blob, lambda h: h["outputs"].append(3))),
        ("entries a path", out1(lambda o: o.update(entries=["../../evil"]))),
        ("entries empty", out1(lambda o: o.update(entries=[]))),
        ("entry served twice", out1(lambda o: o.update(entries=["forward"]))),
        ("entries null beside others", out1(lambda o: o.update(entries=None))),
        ("sha256 upper case", out1(lambda o: o.update(sha256=o["sha256"].upper()))),
        ("no size", out1(lambda o: o.pop("size"))),
        ("size true", out1(lambda o: o.update(size=True))),
        ("ops not a list", out1(lambda o: o.update(ops={}))),
        ("unknown op", out1(lambda o: o["ops"][0].update(op="xor"))),
        ("op an object", out1(lambda o: o["ops"][0].update(op={"a": [1.5, None]}))),
        ("op not an object", out1(lambda o: o["ops"].__setitem__(0, "copy"))),
        ("negative src", out1(lambda o: o["ops"][0].update(src=-1))),
        ("float size", out1(lambda o: o["ops"][0].update(size=1.5))),
        ("scale past payload", out1(lambda o: o["ops"][k].update(scale=len(blob)))),
        ("zero channels", out1(lambda o: o["ops"][k].update(channels=0))),
        ("bad inner", out1(lambda o: o["ops"][k].update(inner=0))),
        ("size mismatch", out1(lambda o: o.update(size=o["size"] + 1))),
        ("payload bit flip", bytes(flip)),
        ("wrong sha256 of program 1", out1(lambda o: o.update(sha256="0" * 64))),
    ]


def _corrupt_cases_v1(blob: bytes):
    """(name, corrupted version-1 bytes): the cases the Java unpacker was first tested on."""
    import struct
    hlen = struct.unpack_from("<Q", blob, 8)[0]
    head = json.loads(blob[16:16 + hlen])
    payload = blob[16 + hlen:]
    edit = lambda fn: _rewrite(blob, fn)  # noqa: E731
    flip = bytearray(blob)
    flip[16 + hlen + 5] ^= 0xFF                                  # a payload byte: sha256 differs
    k = next(i for i, op in enumerate(head["ops"]) if op["op"] == "scale_f32")
    return [
        ("v1 empty file", b""),
        ("v1 corrupt header json", blob[:16] + b"X" + blob[17:]),
        ("v1 not rsfold format", edit(lambda h: h.update(format="other"))),
        ("v1 layout as version 2", edit(lambda h: h.update(version=2))),
        ("v1 no output sha", edit(lambda h: h["output"].pop("sha256"))),
        ("v1 ops not a list", edit(lambda h: h.update(ops={}))),
        ("v1 unknown op", edit(lambda h: h["ops"][0].update(op="xor"))),
        ("v1 scale past payload", edit(lambda h: h["ops"][k].update(scale=len(payload)))),
        ("v1 size mismatch", edit(lambda h: h["output"].update(size=h["output"]["size"] + 1))),
        ("v1 payload bit flip", bytes(flip)),
        ("v1 wrong sha256", edit(lambda h: h["output"].update(sha256="0" * 64))),
    ]


@needs_jvm
def test_java_refuses_bad_containers_like_python_and_writes_nothing(tmp_path, java_core_cp):
    """Every refused container: Java's CLI (a folder OUT for several programs, all or nothing) exits 2
    with exactly Python's one line, leaving nothing beside the input (no file, no folder, no temp)."""
    from rsnet_edge import rsfold
    _, blob = _random_programs(3)
    _, v1 = _v1_container(3)
    cases = _corrupt_cases(blob) + _bound_cases(blob) + _corrupt_cases_v1(v1)
    assert len({name for name, _ in cases}) == len(cases)
    for name, bad in cases:
        d = tmp_path / name.replace(" ", "_")
        d.mkdir()
        src = d / "x.pte.rsfold"
        src.write_bytes(bad)
        with pytest.raises(rsfold.RsfoldError) as e:
            _python_unpacks(bad, src.name)
        assert "\n" not in str(e.value), name
        p = java_unpack(java_core_cp, src, d / "out")
        assert p.returncode == 2, (name, p.stdout, p.stderr)
        assert p.stderr.strip() == f"error: {e.value}", name      # the same one line as Python
        assert [f.name for f in d.iterdir()] == ["x.pte.rsfold"], name  # nothing written, no temp


@needs_jvm
def test_java_bounds_memory_on_an_amplified_container(tmp_path, java_core_cp):
    """Issue 21 item 2 on the JVM: a 1.6 MB container whose 2 programs re-read one 1 MiB payload
    (3 GiB of output, every header rule but the bound satisfied) is refused at once under a 64 MB
    heap with Python's line, nothing written."""
    from rsnet_edge import rsfold
    programs, blob = _random_programs(4, 1)
    ops = [{"op": "scale_f32", "src": 0, "size": 1 << 20, "scale": 0, "channels": 1, "inner": 1}] * 1536
    bad = _rewrite(blob, lambda h: h.update(outputs=[
        {"entries": [f"forward_{r}"], "size": 1536 << 20, "sha256": "0" * 64, "ops": ops} for r in (64, 32)]),
        payload=bytes(1 << 20))
    assert len(bad) < 2_000_000
    src = tmp_path / "amp.pte.rsfold"
    src.write_bytes(bad)
    with pytest.raises(rsfold.RsfoldError, match="more than 64x") as e:
        _python_unpacks(bad, src.name)
    p = subprocess.run(["java", "-Xmx64m", "-cp", java_core_cp, "org.rsnetedge.core.FoldUnpacker", str(src),
                        str(tmp_path / "out")], text=True, capture_output=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == f"error: {e.value}"
    assert [f.name for f in tmp_path.iterdir()] == ["amp.pte.rsfold"]


@needs_jvm
def test_java_unpacks_in_bounded_memory(tmp_path, java_core_cp):
    """Streaming, op by op: a valid program 60x its payload (one 256 KB weight folded 60 times,
    15.7 MB) unpacks byte-exactly in a JVM whose whole heap is 24 MB."""
    import numpy as np
    from rsnet_edge import rsfold
    rng = np.random.default_rng(9)
    w = rng.standard_normal(1 << 16).astype("<f4")
    holes, parts = [], []
    for k in range(60):
        s = rng.uniform(0.5, 2, 64).astype("<f4")
        holes.append(rsfold.Hole(k * w.nbytes, w, s, 1024))
        parts.append(rsfold.fold(w, s, 1024).tobytes())
    program = b"".join(parts)
    blob = rsfold.pack([rsfold.Program(("forward_64",), program, holes)], inner="pte")
    assert len(program) > 55 * len(blob)
    src = tmp_path / "big.pte.rsfold"
    src.write_bytes(blob)
    out = tmp_path / "big.pte"
    p = subprocess.run(["java", "-Xmx24m", "-cp", java_core_cp, "org.rsnetedge.core.FoldUnpacker", str(src),
                        str(out)], text=True, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == program


@needs_jvm
def test_java_unpacker_refuses_output_onto_its_input(tmp_path, java_core_cp):
    program, blob = _v1_container(4)
    src = tmp_path / "m.pte.rsfold"
    src.write_bytes(blob)
    p = java_unpack(java_core_cp, src, src)
    assert p.returncode == 2 and "is the input artifact" in p.stderr
    assert src.read_bytes() == blob
    p = java_unpack(java_core_cp, src, tmp_path)
    assert p.returncode == 2 and "is a directory" in p.stderr
    side = tmp_path / "m.pte.rsfold.manifest.json"
    side.write_text("{}")
    p = java_unpack(java_core_cp, src, side)
    assert p.returncode == 2 and "is the input's manifest" in p.stderr and side.read_text() == "{}"
    programs, multi = _random_programs(4, 2)                   # a folder OUT holding the input
    src2 = tmp_path / "d" / "forward_64.pte"
    src2.parent.mkdir()
    src2.write_bytes(multi)
    p = java_unpack(java_core_cp, src2, src2.parent)
    assert p.returncode == 2 and "is the input artifact" in p.stderr and src2.read_bytes() == multi
    assert sorted(f.name for f in src2.parent.iterdir()) == ["forward_64.pte"]


# ------------------------------------------- Java preprocessing == Python's (issue 12 item 3)
PRE_VECTORS = DATA / "preprocess_vectors.json"


def test_preprocess_vectors_are_what_python_computes_today():
    import numpy as np
    gen = _load("_make_preprocess_vectors", DATA / "make_preprocess_vectors.py")
    doc = json.loads(PRE_VECTORS.read_text())
    ims = gen.images()
    assert set(doc["images"]) == set(ims)
    for name, im in ims.items():                      # the pixels follow the documented rule
        assert doc["images"][name]["pixels"] == np.clip(im, 0, 255).astype(np.uint8).reshape(-1).tolist()
    assert {(c["image"], c["resolution"], c["crop_pct"]) for c in doc["cases"]} == set(gen.CASES)
    for c in doc["cases"]:
        im = np.clip(ims[c["image"]], 0, 255).astype(np.uint8)
        now = gen.expected(im, c["resolution"], c["crop_pct"]).reshape(-1)
        assert np.abs(now - np.asarray(c["expected"])).max() < 2e-6, (
            f"{PRE_VECTORS.name} is stale for {c['image']} @{c['resolution']}: "
            "run python tests/data/make_preprocess_vectors.py")


def test_preprocess_vectors_tell_antialiasing_apart():
    """Resizing the noisy image WITHOUT antialiasing (the Java core's old behaviour) misses the
    stored tensor by far more than the 1/255 the Java test allows, so that test can fail."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    doc = json.loads(PRE_VECTORS.read_text())
    c = next(c for c in doc["cases"] if c["image"].startswith("noisy") and c["resolution"] == 16)
    im = doc["images"][c["image"]]
    x = torch.tensor(im["pixels"], dtype=torch.float32).reshape(im["height"], im["width"], 3)
    x = x.permute(2, 0, 1)[None]
    s = int(round(c["resolution"] / c["crop_pct"]))
    h, w = im["height"], im["width"]
    size = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False).round() / 255
    r = c["resolution"]
    top, left = int(round((size[0] - r) / 2)), int(round((size[1] - r) / 2))
    y = y[0, :, top:top + r, left:left + r].reshape(3, -1)
    mean = torch.tensor(doc["mean"])[:, None]
    std = torch.tensor(doc["std"])[:, None]
    want = torch.tensor(c["expected"]).reshape(3, -1) * std + mean
    assert float((y - want).abs().max()) > 10 * doc["tolerance"]


@needs_jvm
def test_java_preprocessing_matches_python_vectors():
    p = run_java("PreprocessVectorsTest")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert f"cases from {PRE_VECTORS}" in out


# ----------------------------------------------------- copy_assets.sh (issue 10 item 13)
COPY_ASSETS = ROOT / "android_demo" / "copy_assets.sh"


def _fake_artifact(folder: Path, disk_name: str, recorded: str) -> Path:
    """A stand-in artifact (bytes) on disk as ``disk_name`` with a valid sidecar recording
    ``recorded`` as its file name and the bytes' sha256."""
    import hashlib
    folder.mkdir(parents=True, exist_ok=True)
    art = folder / disk_name
    art.write_bytes(b"not a real program, only its sha256 matters here " * 10)
    d = json.loads((DATA / "manifest_fixture.json").read_text())
    d["artifact"] = {"file": recorded, "sha256": hashlib.sha256(art.read_bytes()).hexdigest(),
                     "size_bytes": art.stat().st_size}
    Path(str(art) + ".manifest.json").write_text(json.dumps(d))
    return art


def _copy_assets(assets: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, RSNET_ASSETS_DIR=str(assets), MAX_SAMPLES="5")
    return subprocess.run(["bash", str(COPY_ASSETS), *map(str, args)], env=env, text=True,
                          capture_output=True, timeout=120)


def test_copy_assets_uses_the_recorded_name_and_samples_across_classes(tmp_path):
    src = tmp_path / "my runs; $(touch INJECTED)"                   # quoting is exercised
    art = _fake_artifact(src, "model (copy 1).pte", "rs_mbv2_x035.pte")
    samples = src / "samples"
    for c in ("cat", "dog", "ship"):
        (samples / c).mkdir(parents=True)
        for i in range(4):
            (samples / c / f"{i:02d}.png").write_bytes(f"{c}{i}".encode())
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "old.pte").write_bytes(b"old")                       # an earlier copy goes away
    (assets / "old.pte.manifest.json").write_text("{}")
    p = _copy_assets(assets, art)
    assert p.returncode == 0, p.stderr
    names = sorted(x.name for x in assets.iterdir())
    assert names == ["rs_mbv2_x035.pte", "rs_mbv2_x035.pte.manifest.json", "samples"]
    assert (assets / "rs_mbv2_x035.pte").read_bytes() == art.read_bytes()
    picked = sorted((assets / "samples").iterdir())
    assert [x.read_bytes().decode() for x in picked] == ["cat0", "dog0", "ship0", "cat1", "dog1"]
    assert not list(tmp_path.rglob("INJECTED")) and not (Path.cwd() / "INJECTED").exists()
    # the app's own rule finds exactly this manifest
    from_java = [n for n in names if n.endswith(".manifest.json")]
    assert from_java == ["rs_mbv2_x035.pte.manifest.json"]


@pytest.mark.parametrize("case, error", [
    ("sha256 differs", "manifest does not match"),
    ("no sidecar", "manifest.json not found"),
    ("a folder", "pass the artifact file itself"),
    ("coreml manifest", "describes a coreml artifact"),
    ("path in artifact.file", "no usable artifact.file"),
])
def test_copy_assets_refuses_bad_input_and_copies_nothing(tmp_path, case, error):
    art = _fake_artifact(tmp_path / "a", "rs_mbv2.pte", "rs_mbv2.pte")
    side = Path(str(art) + ".manifest.json")
    arg = art
    if case == "sha256 differs":
        art.write_bytes(b"changed after conversion")
    elif case == "no sidecar":
        side.unlink()
    elif case == "a folder":
        arg = art.parent
    else:
        d = json.loads(side.read_text())
        if case == "coreml manifest":
            d["backend"] = "coreml"
        else:
            d["artifact"]["file"] = "../../evil.pte"
        side.write_text(json.dumps(d))
    assets = tmp_path / "assets"
    p = _copy_assets(assets, arg)
    assert p.returncode == 2
    assert error in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not assets.exists() or not any(assets.iterdir())


@needs_jvm
def test_java_unpacks_a_real_converted_rsfold_like_python(tmp_path, java_core_cp):
    """A real compact artifact from the project's ExecuTorch converter (the cached tiny RS-Net of
    tests/fakes/artifacts.py, 2 resolutions, the same file test_runtime and test_bench use, so the
    default run converts it once): one program per resolution; Java unpacks each by its entry point
    and all of them into a folder with Python's bytes and the sha256 the manifest records for it;
    copy_assets.sh takes it under its recorded name."""
    import hashlib
    from fakes import artifacts as A
    from rsnet_edge import rsfold
    if importlib.util.find_spec("executorch") is None:   # under CI=true conftest fails the run instead
        pytest.skip("executorch not installed")
    art = A.copy_with_sidecar(A.artifact("executorch", "shared"), tmp_path)
    assert art.name.endswith(".pte.rsfold")
    side = json.loads(Path(str(art) + ".manifest.json").read_text())
    box = rsfold.Container.open(art)
    unpacked = side["artifact"]["unpacked"]
    assert len(box.outputs) == len(unpacked) == len(side["entries"]) >= 2     # one program per resolution
    folder = tmp_path / "java_all"
    q = java_unpack(java_core_cp, art, folder)
    assert q.returncode == 0, q.stderr
    for k, o in enumerate(box.outputs):
        program = box.unpack(k)
        want = hashlib.sha256(program).hexdigest()
        assert want == o.sha256 == unpacked[k]["sha256"] and list(o.entries) == unpacked[k]["entries"]
        for entry in o.entries:                               # forward_<r>, and forward for the top one
            out = tmp_path / f"java_{entry}.pte"
            p = java_unpack(java_core_cp, art, out, "--entry", entry)
            assert p.returncode == 0, p.stderr
            assert p.stdout.split()[0] == want and out.read_bytes() == program
        assert (folder / f"{o.entries[0]}.pte").read_bytes() == program
        assert f"{want}  {folder / f'{o.entries[0]}.pte'}" in q.stdout.splitlines()
    box.close()
    assets = tmp_path / "assets"
    r = _copy_assets(assets, art)
    assert r.returncode == 0, r.stderr
    assert (assets / side["artifact"]["file"]).read_bytes() == art.read_bytes()
