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
* RSFOLD (issue 9): Java unpacks Python's containers to the same bytes / sha256 and refuses bad
  ones with Python's messages, writing nothing.
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
    ("module.loadMethod(e.entry);", "int err = module.loadMethod(e.entry);", "incompatible types"),
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


@needs_jvm
def test_shared_manifest_vectors_java_and_a_mutated_vector_fails(tmp_path):
    p = run_java("ManifestVectorsTest")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert f"cases from {BAD_MANIFESTS}" in out
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


# ------------------------------------------------ fold-at-load unpacker, Java vs Python (issue 9)
@pytest.fixture(scope="module")
def java_core_cp():
    """Classpath of the compiled Java core (compiled by run_tests.sh, which also runs its JUnit)."""
    p = run_java("FoldUnpackerTest")                      # its JUnit result is checked elsewhere
    classes = ROOT / "android_demo" / "core" / "build" / "classes"
    assert (classes / "org" / "rsnetedge" / "core" / "FoldUnpacker.class").is_file(), p.stderr[-4000:]
    return f"{classes}:{java_jars()['gson']}"


def java_unpack(cp: str, src: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", cp, "org.rsnetedge.core.FoldUnpacker", str(src), str(out)],
                          text=True, capture_output=True, timeout=120)


def _random_container(seed: int = 0):
    """(program bytes, rsfold bytes): random program bytes with folded float32 holes at odd and
    even offsets; one weight shared by two holes (stored once), inner=1 and inner>1 layouts."""
    import numpy as np
    from rsnet_edge import rsfold
    rng = np.random.default_rng(seed)
    w_conv = rng.standard_normal(4 * 3 * 3 * 3).astype("<f4")   # [Cout=4, 27]: inner = 27
    w_fc = rng.standard_normal(6 * 5).astype("<f4")              # channels last: inner = 1
    w_dw = rng.standard_normal(2 * 8).astype("<f4")              # [H*W=2, C=8] NHWC-like: inner 1
    s = [rng.uniform(-2, 2, n).astype("<f4") for n in (4, 4, 5, 8)]
    holes, parts, pos = [], [], 0

    def gap(n):
        nonlocal pos
        parts.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        pos += n

    def hole(w, sc, inner):
        nonlocal pos
        holes.append(rsfold.Hole(pos, w, sc, inner))
        b = rsfold.fold(w, sc, inner).tobytes()
        parts.append(b)
        pos += len(b)

    gap(101); hole(w_conv, s[0], 27); gap(3); hole(w_conv, s[1], 27); hole(w_fc, s[2], 1)
    gap(64); hole(w_dw, s[3], 1); gap(17)
    program = b"".join(parts)
    return program, rsfold.pack(program, holes, "pte")


@needs_jvm
def test_java_unpacks_python_containers_byte_for_byte(tmp_path, java_core_cp):
    import hashlib
    from rsnet_edge import rsfold
    for seed in (0, 1):
        program, blob = _random_container(seed)
        src = tmp_path / f"m{seed}.pte.rsfold"
        src.write_bytes(blob)
        out = tmp_path / f"m{seed}.pte"
        p = java_unpack(java_core_cp, src, out)
        assert p.returncode == 0, p.stderr
        py_bytes, head = rsfold.unpack_bytes(blob, src.name)
        want = hashlib.sha256(py_bytes).hexdigest()
        assert py_bytes == program
        assert p.stdout.split()[0] == want == head["output"]["sha256"]
        assert hashlib.sha256(out.read_bytes()).hexdigest() == want
        assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(f"m{seed}")) == \
            [out.name, src.name]                                # no temp file left


def _corrupt_cases(blob: bytes):
    """(name, corrupted bytes) - each refused by Python's rsfold with one line."""
    import struct
    hlen = struct.unpack_from("<Q", blob, 8)[0]
    head = json.loads(blob[16:16 + hlen])
    payload = blob[16 + hlen:]

    def rebuilt(h, pl=payload):
        hb = json.dumps(h, separators=(",", ":")).encode()
        return b"RSFOLD01" + struct.pack("<Q", len(hb)) + hb + pl

    def edit(fn):
        h = json.loads(json.dumps(head))
        fn(h)
        return rebuilt(h)

    flip = bytearray(blob)
    flip[16 + hlen + 5] ^= 0xFF                                  # a payload byte: sha256 differs
    k = next(i for i, op in enumerate(head["ops"]) if op["op"] == "scale_f32")
    return [
        ("bad magic", b"RSFOLD02" + blob[8:]),
        ("empty file", b""),
        ("truncated header", blob[:16 + hlen // 2]),
        ("truncated payload", blob[:-7]),
        ("corrupt header json", blob[:16] + b"X" + blob[17:]),
        ("not rsfold format", edit(lambda h: h.update(format="other"))),
        ("future version", edit(lambda h: h.update(version=2))),
        ("unknown inner", edit(lambda h: h.update(inner="onnx"))),
        ("no output sha", edit(lambda h: h["output"].pop("sha256"))),
        ("ops not a list", edit(lambda h: h.update(ops={}))),
        ("unknown op", edit(lambda h: h["ops"][0].update(op="xor"))),
        ("negative src", edit(lambda h: h["ops"][0].update(src=-1))),
        ("float size", edit(lambda h: h["ops"][0].update(size=1.5))),
        ("scale past payload", edit(lambda h: h["ops"][k].update(scale=len(payload)))),
        ("zero channels", edit(lambda h: h["ops"][k].update(channels=0))),
        ("bad inner", edit(lambda h: h["ops"][k].update(inner=0))),
        ("size mismatch", edit(lambda h: h["output"].update(size=h["output"]["size"] + 1))),
        ("payload bit flip", bytes(flip)),
        ("wrong sha256", edit(lambda h: h["output"].update(sha256="0" * 64))),
    ]


@needs_jvm
def test_java_refuses_bad_containers_like_python_and_writes_nothing(tmp_path, java_core_cp):
    from rsnet_edge import rsfold
    _, blob = _random_container(3)
    cases = _corrupt_cases(blob)
    for name, bad in cases:
        d = tmp_path / name.replace(" ", "_")
        d.mkdir()
        src = d / "x.pte.rsfold"
        src.write_bytes(bad)
        with pytest.raises(rsfold.RsfoldError) as e:
            rsfold.unpack_bytes(bad, src.name)
        p = java_unpack(java_core_cp, src, d / "x.pte")
        assert p.returncode == 2, (name, p.stdout, p.stderr)
        assert p.stderr.strip() == f"error: {e.value}", name      # the same one line as Python
        assert [f.name for f in d.iterdir()] == ["x.pte.rsfold"], name  # nothing written, no temp


@needs_jvm
def test_java_unpacker_refuses_output_onto_its_input(tmp_path, java_core_cp):
    _, blob = _random_container(4)
    src = tmp_path / "m.pte.rsfold"
    src.write_bytes(blob)
    p = java_unpack(java_core_cp, src, src)
    assert p.returncode == 2 and "is the input artifact" in p.stderr
    assert src.read_bytes() == blob
    p = java_unpack(java_core_cp, src, tmp_path)
    assert p.returncode == 2 and "is a directory" in p.stderr


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
    default run converts it once): Java's unpack has Python's sha256 and the one the manifest
    records; copy_assets.sh takes it under its recorded name."""
    import hashlib
    from fakes import artifacts as A
    from rsnet_edge import rsfold
    if importlib.util.find_spec("executorch") is None:   # under CI=true conftest fails the run instead
        pytest.skip("executorch not installed")
    art = A.copy_with_sidecar(A.artifact("executorch", "shared"), tmp_path)
    assert art.name.endswith(".pte.rsfold")
    side = json.loads(Path(str(art) + ".manifest.json").read_text())
    program, head = rsfold.unpack_bytes(art.read_bytes(), art.name)
    want = hashlib.sha256(program).hexdigest()
    assert want == side["artifact"]["unpacked"]["sha256"] == head["output"]["sha256"]
    q = java_unpack(java_core_cp, art, tmp_path / "java.pte")
    assert q.returncode == 0, q.stderr
    assert q.stdout.split()[0] == want
    assert (tmp_path / "java.pte").read_bytes() == program
    assets = tmp_path / "assets"
    r = _copy_assets(assets, art)
    assert r.returncode == 0, r.stderr
    assert (assets / side["artifact"]["file"]).read_bytes() == art.read_bytes()
