"""rsnet_edge.load: one interface over .pt / .pte / .tflite; refusal of bad artifacts; predict CLI.

The .pte/.tflite files come from the project's converters (tests/fakes/artifacts.py builds them once
and caches them; the first run converts for about a minute)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fakes import artifacts as A
from helpers import hand_probabilities

import rsnet_edge
from rsnet_edge.runtime import RuntimeLoadError, load

ROOT = Path(__file__).resolve().parents[1]
HAVE = {"executorch": importlib.util.find_spec("executorch") is not None,
        "tflite": importlib.util.find_spec("ai_edge_litert") is not None
        and importlib.util.find_spec("litert_torch") is not None}


def need(backend: str) -> None:
    if not HAVE[backend]:
        pytest.skip(f"{backend} runtime/converter package not installed")


@pytest.fixture(scope="module")
def ckpt() -> Path:
    return A.checkpoint()


@pytest.fixture(scope="module")
def images() -> list[Path]:
    return A.images()


@pytest.fixture(scope="module")
def pte() -> Path:
    need("executorch")
    return A.artifact("executorch")


@pytest.fixture(scope="module")
def tfl() -> Path:
    need("tflite")
    return A.artifact("tflite")


def _copy(src: Path, tmp_path: Path, name: str | None = None) -> Path:
    return A.copy_with_sidecar(src, tmp_path, name)


# ----------------------------------------------------------------------------- same answers
def test_load_is_exported():
    assert rsnet_edge.load is load
    assert issubclass(RuntimeLoadError, ValueError)


@pytest.mark.parametrize("backend", ["executorch", "tflite"])
def test_same_top1_as_checkpoint(backend, ckpt, images):
    """The artifact through ``rsnet_edge.load`` against the checkpoint computed WITHOUT the runtime
    (helpers.hand_probabilities: PIL view with the checkpoint's mean/std/crop_pct, torch model,
    softmax), so a preprocessing bug shared by every backend cannot cancel out."""
    need(backend)
    art = A.artifact(backend)
    clf = load(art)
    assert clf.resolutions == list(A.RESOLUTIONS)
    assert clf.manifest.class_names == list(A.CLASSES) and clf.backend_name == backend
    compared = 0
    for r in clf.resolutions:
        p_ref = hand_probabilities(ckpt, images, r)
        p_art = clf.predict_proba(images, r)
        np.testing.assert_allclose(p_art, p_ref, atol=2e-4)
        top_ref = [A.CLASSES[i] for i in p_ref.argmax(1)]
        top_art = [x[0][0] for x in clf.predict(images, r, topk=2)]
        srt = np.sort(p_ref, axis=1)
        clear = srt[:, -1] - srt[:, -2] > 1e-3          # ties are not a backend difference
        assert clear.sum() >= len(images) - 2
        assert [a for a, c in zip(top_art, clear) if c] == [b for b, c in zip(top_ref, clear) if c]
        compared += int(clear.sum())
    assert compared > 0


def test_predict_shapes_and_inputs(ckpt, images):
    from PIL import Image

    clf = load(ckpt)
    out = clf.predict(images[:2], topk=3)
    assert len(out) == 2 and all(len(o) == 3 for o in out)
    assert all(isinstance(n, str) and 0.0 <= p <= 1.0 for o in out for n, p in o)
    assert abs(sum(p for _, p in clf.predict(images[0], topk=10)[0]) - 1.0) < 1e-5   # one path
    assert clf.predict([Image.open(images[0])], topk=1)[0][0][0] == out[0][0][0]     # PIL image
    assert clf.predict([], topk=1) == []


def test_checkpoint_serves_untrained_resolution(ckpt, images):
    clf = load(ckpt)
    clf.set_resolution(80)                                     # between 96 and 64: interpolated BN
    assert len(clf.predict(images[:2], topk=1)) == 2
    clf2 = load(ckpt, resolutions=[96, 80, 64])
    assert clf2.resolutions == [96, 80, 64]
    assert [e.trained for e in clf2.manifest.entries] == [True, False, True]
    assert clf2.manifest.backend == "torch" and clf2.manifest.input.crop_pct == 0.875


def test_artifact_refuses_unserved_resolution(tfl):
    clf = load(tfl)
    with pytest.raises(ValueError, match="not served"):
        clf.set_resolution(80)
    with pytest.raises(RuntimeLoadError, match="only checkpoints"):
        load(tfl, resolutions=[80])


# ---------------------------------------------------------------------------- switching
@pytest.mark.parametrize("backend", ["executorch", "tflite"])
def test_switching_never_reloads(backend, images, tmp_path, monkeypatch):
    need(backend)
    art = _copy(A.artifact(backend), tmp_path)
    opened = []
    real_open = open

    def spy_open(file, *a, **k):                    # any Python-level reopen of the artifact
        if str(file) == str(art):
            opened.append(file)
        return real_open(file, *a, **k)

    clf = load(art)
    assert clf.stats.file_loads == 1
    monkeypatch.setattr("builtins.open", spy_open)
    if backend == "executorch":
        from executorch.runtime import Runtime
        calls = []
        real = Runtime.load_program
        monkeypatch.setattr(Runtime, "load_program",
                            lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    first = {}
    for k in range(6):
        for r in clf.resolutions:
            clf.set_resolution(r)
            first.setdefault(r, clf.predict(images[:1], topk=1)[0][0][0])
            assert clf.predict(images[:1], topk=1)[0][0][0] == first[r]
    assert clf.stats.file_loads == 1
    assert clf.stats.entry_loads == {r: 1 for r in clf.resolutions}      # each entry loaded once
    assert clf.stats.switches == 2 * 6 - 1
    assert opened == []
    if backend == "executorch":
        assert calls == []
    # the file can even disappear: switching keeps working from what load() opened
    art.unlink()
    for r in clf.resolutions:
        clf.set_resolution(r)
        assert clf.predict(images[:1], topk=1)[0][0][0] == first[r]


def test_embedded_manifest_is_enough(pte, tfl, tmp_path):
    for src in (pte, tfl):
        dst = tmp_path / ("alone" + src.suffix)
        shutil.copy(src, dst)                                   # no sidecar
        clf = load(dst)
        assert clf.resolutions == list(A.RESOLUTIONS) and clf.manifest.class_names == list(A.CLASSES)


# -------------------------------------------------------------------------- refusals
def _bad(path, match, **kw):
    with pytest.raises(RuntimeLoadError, match=match) as ei:
        load(path, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


def test_truncated_and_corrupt_artifacts_refused(pte, tfl, ckpt, tmp_path):
    for src in (pte, tfl):
        data = src.read_bytes()
        t = _copy(src, tmp_path, "trunc" + src.suffix)
        t.write_bytes(data[: len(data) // 3])
        _bad(t, "sha256")                                        # sidecar says otherwise
        _bad(t, "truncated or corrupt", verify=False)            # the loader itself refuses
        c = _copy(src, tmp_path, "garbage" + src.suffix)
        c.write_bytes(os.urandom(4096))
        _bad(c, "truncated or corrupt", verify=False)
        e = _copy(src, tmp_path, "empty" + src.suffix)
        e.write_bytes(b"")
        _bad(e, "empty")
        alone = tmp_path / ("alone_trunc" + src.suffix)          # no sidecar: only the loader
        alone.write_bytes(data[: len(data) // 3])
        _bad(alone, "truncated or corrupt|no manifest")
    t = tmp_path / "trunc.pt"
    t.write_bytes(ckpt.read_bytes()[:5000])
    _bad(t, "truncated or corrupt")
    _bad(tmp_path / "missing.pte", "does not exist")
    (tmp_path / "model.bin").write_bytes(b"x")
    _bad(tmp_path / "model.bin", "unknown artifact type")


def test_manifest_disagreeing_with_artifact_refused(pte, tfl, tmp_path):
    # 1. sha256 recorded at conversion differs
    a = _copy(pte, tmp_path, "a.pte")
    side = a.with_name(a.name + ".manifest.json")
    d = json.loads(side.read_text())
    d["artifact"]["sha256"] = "0" * 64
    side.write_text(json.dumps(d))
    _bad(a, "does not match a.pte: sha256")
    # 2. an entry point the artifact does not have (sha removed so that check passes)
    d = json.loads(pte.with_name(pte.name + ".manifest.json").read_text())
    d["artifact"].pop("sha256")
    d["entries"].insert(1, dict(d["entries"][0], resolution=80, entry="forward_80"))
    d["policy"] = {}
    side.write_text(json.dumps(d))
    _bad(a, "forward_80", verify=False)
    # 3. the sidecar of another backend's artifact
    b = _copy(pte, tmp_path, "b.pte")
    shutil.copy(tfl.with_name(tfl.name + ".manifest.json"), b.with_name("b.pte.manifest.json"))
    _bad(b, "describes a tflite artifact")
    # 4. sidecar and embedded manifest describe different models
    for src in (pte, tfl):
        c = _copy(src, tmp_path, "c" + src.suffix)
        sc = c.with_name(c.name + ".manifest.json")
        d = json.loads(sc.read_text())
        d["class_names"] = list(reversed(d["class_names"]))
        sc.write_text(json.dumps(d))
        _bad(c, "disagrees with the manifest embedded")
    # 5. a broken sidecar
    e = _copy(tfl, tmp_path, "e.tflite")
    e.with_name("e.tflite.manifest.json").write_text("{not json")
    _bad(e, "not valid JSON")


def test_coreml_outside_macos_is_a_clear_error(tmp_path):
    import platform

    if platform.system() == "Darwin":
        pytest.skip("Core ML runs here")
    pkg = tmp_path / "m.mlpackage"
    pkg.mkdir()
    _bad(pkg, "only on macOS")


# ------------------------------------------------------------------------------- CLI
def test_predict_cli(tfl, images, capsys):
    from rsnet_edge import predict

    assert predict.main([str(tfl), str(images[0]), str(images[3]), "--topk", "2"]) == 0
    out = capsys.readouterr().out
    assert "resolution 96 (manifest default)" in out and out.count("%") == 4
    assert predict.main([str(tfl), str(images[0]), "--battery", "10", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["resolution"] == 64 and d["why"].startswith("policy")
    assert predict.main([str(tfl), str(images[0]), "--battery", "10", "--charging", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == 96           # charging lifts
    assert predict.main([str(tfl), str(images[0]), "--thermal", "critical", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == 64           # thermal cap
    assert predict.main([str(tfl), str(images[0]), "--resolution", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == 64
    for args, match in (([str(images[0]) + ".missing"], "does not exist"),
                        ([str(images[0]), "--resolution", "80"], "not served"),
                        ([str(images[0]), "--battery", "120"], "0..100")):
        assert predict.main([str(tfl), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and match in err[0]


def test_predict_cli_exit_code_on_corrupt_artifact(tfl, images, tmp_path):
    bad = _copy(tfl, tmp_path, "bad.tflite")
    bad.write_bytes(bad.read_bytes()[:1000])
    p = subprocess.run([sys.executable, "-m", "rsnet_edge.predict", str(bad), str(images[0])],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "sha256" in lines[0]


# ------------------------------------------------------------------------------- demo
def test_demo_default_trace(tfl, tmp_path, capsys):
    from rsnet_edge import demo

    t = demo.default_trace(30)
    assert len(t) == 30 and t[0]["battery"] == 100.0 and t[-1]["battery"] == 0.0
    assert any(s["charging"] for s in t) and any(s["thermal"] != "none" for s in t)
    summary_path = tmp_path / "s.json"
    assert demo.main([str(tfl), "--steps", "30", "--images", str(A.cache_dir() / "images"),
                      "--json", str(summary_path)]) == 0
    out = capsys.readouterr().out
    assert "switch 96 -> 64" in out and "switch 64 -> 96" in out          # drain, then charging
    s = json.loads(summary_path.read_text())
    assert s["file_loads"] == 1 and len(s["switches"]) >= 2
    # replay the printed steps: the estimate is the mean of the manifest's top-1 of the resolution
    # used at each step, the measured figure the share of steps whose image (files in sorted order,
    # cycled; label = folder) was predicted right
    steps = [m.groups() for m in re.finditer(r"^\s*(\d+)\s+[\d.]+%\s+(?:yes|no)\s+\S+\s+(\d+)\s+"
                                             r"[\d.]+ms\s+\S+\s+\S+\s+(\S+) \(", out, re.M)]
    assert [int(k) for k, _, _ in steps] == list(range(30))
    top1 = {e["resolution"]: e["top1"] for e in json.loads(
        (tfl.parent / (tfl.name + ".manifest.json")).read_text())["entries"]}
    used = [int(r) for _, r, _ in steps]
    assert {96, 64} <= set(used)
    assert s["estimated_top1"] == pytest.approx(sum(top1[r] for r in used) / 30)
    files = sorted(q for q in (A.cache_dir() / "images").rglob("*.jpg"))
    hits = [pred == files[k % len(files)].parent.name for k, (_, _, pred) in enumerate(steps)]
    assert s["measured_top1"] == pytest.approx(100.0 * sum(hits) / 30)


def test_demo_trace_file_and_errors(tfl, tmp_path, capsys):
    from rsnet_edge import demo

    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"steps": [{"battery": 90}, {"battery": 20},
                                           {"battery": 20, "charging": True},
                                           {"battery": 80, "thermal": "critical"}]}))
    assert demo.main([str(tfl), "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert out.count("-> switch") == 3
    trace.write_text(json.dumps([{"battery": 150}]))
    assert demo.main([str(tfl), "--trace", str(trace)]) == 2
    assert "battery must be a number in 0..100" in capsys.readouterr().err


def test_onnx_single_resolution(ckpt, images, tmp_path):
    """The converters write no ONNX; a plain single-resolution ONNX export (torch.onnx, legacy
    exporter) with a manifest beside it is served through the same interface."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx/onnxruntime not installed")
    import torch

    from rsnet_edge.checkpoint import load_checkpoint, manifest_for, model_from_checkpoint
    from rsnet_edge.manifest import sha256_file, write_sidecar
    from rsnet_edge.models import to_single_resolution

    ck = load_checkpoint(ckpt)
    single = to_single_resolution(model_from_checkpoint(ck), 64).eval()
    out = tmp_path / "tiny64.onnx"
    torch.onnx.export(single, (torch.randn(1, 3, 64, 64),), str(out), dynamo=False,
                      input_names=["input"], output_names=["logits"])
    m = manifest_for(ck, "onnx", resolutions=[64], weights="folded")
    m.artifact = {"file": out.name, "sha256": sha256_file(out), "size_bytes": out.stat().st_size}
    write_sidecar(m, out)
    clf = load(out)
    assert clf.resolutions == [64] and clf.backend_name == "onnx"
    np.testing.assert_allclose(clf.predict_proba(images), hand_probabilities(ckpt, images, 64), atol=2e-4)
    out.write_bytes(out.read_bytes()[:2000])
    _bad(out, "truncated or corrupt", verify=False)
