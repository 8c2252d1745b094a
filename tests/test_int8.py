"""int8 RS artifacts (issue 11): canonical shared int8 weights, per-resolution calibration, parity
with the backend's own PT2E reference, verify and load. The CLI's bad calibration inputs are rows
of the table in tests/test_bad_inputs.py ("int8-*")."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from helpers import make_ckpt

RES = [64, 48]
CALIB_N = 16


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_data):
    d = tmp_path_factory.mktemp("int8")
    return {"dir": d, "ckpt": make_ckpt(d / "rs.pt", resolutions=RES), "data": tiny_data}


def _convert(work, name, weights, resolutions=RES, backend="executorch"):
    import importlib
    from converters.pipeline import convert
    out = work["dir"] / name
    if not out.exists():
        convert(backend, importlib.import_module(f"converters.{backend}").lower, work["ckpt"], out,
                resolutions=resolutions, weights=weights, dtype="int8", quiet=True,
                calib=work["data"] / "train", calib_images=CALIB_N)
    return out


@pytest.fixture(scope="module")
def shared(work):
    return _convert(work, "rs_int8.pte", "shared")


def _quantized(work, resolutions=RES, canonical=True, backend="executorch"):
    """What the converter quantized (deterministic: same images, same observers)."""
    from converters.prepare import prepare
    from converters.quantize import load_calibration, quantize_prepared
    from rsnet_edge.checkpoint import load_checkpoint
    prep = prepare(load_checkpoint(work["ckpt"]), resolutions, "shared")
    entries, facts = quantize_prepared(prep, load_calibration(work["data"] / "train", CALIB_N),
                                       canonical=canonical, progress=False, backend=backend)
    return prep, entries, facts


@pytest.fixture(scope="module")
def quantized(work):
    return _quantized(work)


# ------------------------------------------------------------------- canonical int8 weights
def test_canonical_int8_is_the_quantizer_applied_to_w_with_signs_and_scales_derived():
    from converters.quantize import CanonicalConv, check_canonical, quantize_weight
    from converters.prepare import ConversionError
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 4, 3, 3, generator=g) * 0.1
    w[2] *= 1e-3                                   # a tiny channel: scale(W) below the observer's eps
    s = torch.tensor([0.7, -1.3, 40.0, 2.0, 0.0, -0.01])
    folded = w * s.reshape(-1, 1, 1, 1)
    canon = CanonicalConv(*quantize_weight(w))
    q, scale = canon.for_scale(s)
    assert q.dtype == torch.int8
    assert torch.equal(q[0], canon.q[0]) and torch.equal(q[1], -canon.q[1])       # sign flip
    assert torch.equal(q[4], torch.zeros_like(q[4])) and scale[4] > 0              # BN scale 0
    assert torch.allclose(scale[[0, 1, 3, 5]], canon.scale[[0, 1, 3, 5]] * s[[0, 1, 3, 5]].abs())
    from converters.quantize import weight_observer
    obs = weight_observer()                 # the quantizer's own observer, as on W * s directly
    obs(folded)
    d_scale, d_zp = obs.calculate_qparams()
    d_q = torch.ops.quantized_decomposed.quantize_per_channel.default(folded, d_scale.float(), d_zp, 0,
                                                                      -127, 127, torch.int8)
    st = check_canonical("w", folded, (q, scale), (d_q, d_scale.float()))
    assert st["max_err_steps"] <= 0.5 + 1e-3           # never coarser than direct (tiny channel included)
    bad = q.clone()
    bad[3, 0, 0, 0] += 3                               # a canonical tensor that is off: refused
    with pytest.raises(ConversionError, match="less accurate"):
        check_canonical("w", folded, (bad, scale), (d_q, d_scale.float()))


def test_every_entry_ships_the_same_canonical_int8_tensors(work, quantized):
    """What the converter does NOT check, by hand from the checkpoint's tensors (issue 22): the
    shipped int8 tensor of every conv at every resolution is round(W / (max|W| / 127)) per output
    channel times sign(gamma_r), with weight scales (max|W| / 127) * |gamma_r / sqrt(var_r + eps)|
    (eps = 1e-5, torchvision's BatchNorm2d), so the int8 tensors of all entries are bit-identical
    (the converter only counts distinct tensors; check_canonical compares its own two quantizations,
    so a wrong BN scale or a wrong W would pass it). The error-step bound below is what
    check_canonical enforces; it stays as a record that the facts report it."""
    from rsnet_edge.checkpoint import load_checkpoint
    prep, entries, facts = quantized
    a, b = entries[RES[0]].weights, entries[RES[1]].weights
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        assert torch.equal(a[name][0], b[name][0]), name             # int8 bit-identical
    assert any(not torch.equal(a[n][1], b[n][1]) for n in a)          # scales per resolution
    assert facts["int8_weight_tensors_extra"] == 0
    for r in RES:                   # as accurate as quantizing each folded weight directly
        assert facts["per_resolution"][str(r)]["max_weight_err_steps"] <= 0.5 + 1e-3
    ck = load_checkpoint(work["ckpt"])
    sd = ck["state_dict"]
    for r in RES:
        k = ck["resolutions"].index(r)                   # BN set k serves resolutions[k]
        for name, (q, scale) in entries[r].weights.items():
            parent, last = name.rsplit(".", 1)           # torchvision: conv at i, its BN at i + 1
            bn = f"{parent}.{int(last) + 1}.bns.{k}"
            w = sd[f"{name}.weight"].double()
            s = sd[f"{bn}.weight"].double() / torch.sqrt(sd[f"{bn}.running_var"].double() + 1e-5)
            step = w.abs().amax(dim=(1, 2, 3)) / 127
            want_q = torch.clamp(torch.round(w / step.reshape(-1, 1, 1, 1)), -127, 127)
            want_q = want_q * torch.sign(s).reshape(-1, 1, 1, 1)
            assert torch.equal(q.double(), want_q), (name, r)
            torch.testing.assert_close(scale.double(), step * s.abs(), rtol=1e-6, atol=0, msg=f"{name}@{r}")


# ------------------------------------------------------------------------ calibration
def test_calibration_is_per_resolution_on_real_images(work, quantized):
    from converters.quantize import load_calibration, quantize_entry
    prep, entries, _ = quantized
    s64 = [s for s, _ in entries[64].act_qparams]
    s48 = [s for s, _ in entries[48].act_qparams]
    assert len(s64) == len(s48) > 10
    assert sum(x != y for x, y in zip(s64, s48)) > len(s64) // 2
    # the same module calibrated at two resolutions: the views really are at that resolution
    ck = prep.ckpt
    cal = load_calibration(work["data"] / "train", 4)
    at = {r: [s for s, _ in quantize_entry(prep.modules[48], prep.references[48], r, cal, ck["mean"],
                                           ck["std"], ck["crop_pct"]).act_qparams] for r in (48, 32)}
    assert at[48] != at[32]
    # ... and on the images given: another folder gives other scales
    other = load_calibration(work["data"] / "val", 4)
    alt = [s for s, _ in quantize_entry(prep.modules[48], prep.references[48], 48, other, ck["mean"],
                                        ck["std"], ck["crop_pct"]).act_qparams]
    assert alt != at[48]


def test_calibration_takes_one_file_per_class(tmp_path):
    """K class folders of 5 files each: N = K calibration images are one file of each class, N = 2K
    two of each (spread over the sorted list, never the first N files: those are all one class)."""
    from collections import Counter

    from PIL import Image

    from converters.quantize import calibration_files, load_calibration
    classes = ["ant", "bee", "cat", "dog"]
    for i, c in enumerate(classes):
        (tmp_path / c).mkdir()
        for j in range(5):
            Image.new("RGB", (8, 8), (40 * i, 40 * j, 90)).save(tmp_path / c / f"{c}_{j}.png")
    assert sorted(f.parent.name for f in calibration_files(tmp_path, 4)) == classes
    assert Counter(f.parent.name for f in calibration_files(tmp_path, 8)) == {c: 2 for c in classes}
    assert sorted(f.parent.name for f in load_calibration(tmp_path, 4).files) == classes


#: a checkpoint's mean/std that differ per channel and from each other (swapping changes every value)
CAL_MEAN, CAL_STD = [0.2, 0.5, 0.7], [0.6, 0.3, 0.1]


def test_int8_input_quantizer_range_from_views_normalised_by_hand(work):
    """The int8 entry's input quantizer (the first activation quantize) was calibrated on the
    calibration images normalised with the checkpoint's mean and std (crop_pct 0.5): its range
    [scale * (-128 - zp), scale * (127 - zp)] spans the min..max of those views computed here with
    PIL/numpy (helpers.pil_eval_view), and equals what the quantizer's own activation observer
    (torchao's, built from the spec as prepare_pt2e builds it) gives on the hand views."""
    import dataclasses

    from PIL import Image

    from converters.prepare import prepare
    from converters.quantize import load_calibration, quantization_config, quantize_prepared
    from helpers import pil_eval_view
    from rsnet_edge.checkpoint import load_checkpoint
    ck = load_checkpoint(work["ckpt"])
    ck["mean"], ck["std"], ck["crop_pct"] = CAL_MEAN, CAL_STD, 0.5
    prep = prepare(ck, [32], "shared")
    cal = load_calibration(work["data"] / "train", 8)        # one calibration batch
    entries, _ = quantize_prepared(prep, cal, progress=False)
    scale, zp = entries[32].act_qparams[0]
    views = []
    for f in cal.files:
        with Image.open(f) as im:
            views.append(pil_eval_view(im.convert("RGB"), 32, 0.5, CAL_MEAN, CAL_STD))
    views = np.stack(views)
    lo, hi = float(views.min()), float(views.max())
    q_lo, q_hi = scale * (-128 - zp), scale * (127 - zp)
    span = hi - lo
    assert q_lo <= lo + 0.05 * span and q_hi >= hi - 0.05 * span, (q_lo, q_hi, lo, hi)
    assert q_hi - q_lo <= 1.05 * span, (q_lo, q_hi, lo, hi)
    spec = quantization_config("executorch").input_activation
    kwargs = dataclasses.asdict(spec)
    kwargs.pop("ch_axis")                                     # per-tensor: as prepare_pt2e drops it
    obs = kwargs.pop("observer_or_fake_quant_ctr").with_args(**kwargs)()
    obs(torch.from_numpy(views))
    want_scale, want_zp = obs.calculate_qparams()
    assert scale == pytest.approx(float(want_scale), rel=1e-3) and abs(zp - int(want_zp)) <= 1


def test_unreadable_calibration_images_are_skipped_and_counted(tmp_path, tiny_data):
    from converters.quantize import load_calibration
    src = sorted((tiny_data / "train").rglob("*.png")) or sorted((tiny_data / "train").rglob("*.jpg"))
    (tmp_path / "c").mkdir()
    for p in src[:3]:
        shutil.copy(p, tmp_path / "c" / p.name)
    (tmp_path / "c" / "zz_broken.jpg").write_bytes(b"\xff\xd8 not really")
    cal = load_calibration(tmp_path, 10)
    assert len(cal.images) == 3 and len(cal.skipped) == 1 and "zz_broken.jpg" in cal.skipped[0]


# --------------------------------------------------------------------- the artifact
def _dense_convs(prep):
    from converters.prepare import conv_bn_pairs, is_depthwise
    return [p.name for p in conv_bn_pairs(prep.references[RES[0]]) if not is_depthwise(p.conv)]


def test_shared_int8_is_stored_once(work, shared, quantized):
    """Every dense conv's canonical int8 tensor is in the program exactly once (XNNPACK OHWI)."""
    prep, entries, _ = quantized
    data = shared.read_bytes()
    for name in _dense_convs(prep):
        q = entries[RES[0]].weights[name][0]
        assert data.count(q.permute(0, 2, 3, 1).contiguous().numpy().tobytes()) == 1, name
    man = json.loads((shared.parent / (shared.name + ".manifest.json")).read_text())
    assert man["dtype"] == "int8" and man["weights"] == "shared"
    assert man["extra"]["int8"]["int8_weight_tensors_extra"] == 0


@pytest.mark.slow
def test_int8_size_vs_single_and_direct_exports(work, shared):
    """Well below S x a single-resolution int8 export; and --weights folded --dtype int8 (each
    folded weight quantized directly: S slightly different int8 tensors) is larger."""
    single = _convert(work, "single_int8.pte", "folded", [RES[0]])
    ratio = shared.stat().st_size / single.stat().st_size
    assert ratio < 0.75 * len(RES), ratio
    folded = _convert(work, "folded_int8.pte", "folded")
    man = json.loads((folded.parent / (folded.name + ".manifest.json")).read_text())
    assert man["extra"]["int8"]["int8_weight_tensors_extra"] > 0
    assert folded.stat().st_size > shared.stat().st_size


def _artifact_vs_pt2e(backend, artifact, quantized, work):
    """(entry, artifact logits, PT2E-module logits, the output's quantization step) per entry, on
    6 real validation views at the entry's resolution."""
    from rsnet_edge.preprocess import eval_batch, load_rgb
    from rsnet_edge.runtime import load
    prep, entries, _ = quantized
    ck = prep.ckpt
    ims = [load_rgb(p) for p in sorted((work["data"] / "val").rglob("*.*"))[:6]]
    clf = load(artifact, verify=False)
    for entry, (r, _) in prep.entries().items():
        x = eval_batch(ims, r, ck["mean"], ck["std"], ck["crop_pct"])
        with torch.no_grad():
            ref = entries[r].module(torch.from_numpy(x)).numpy()
        yield entry, clf.run_entry(entry, x), ref, entries[r].act_qparams[-1][0]


def test_int8_logits_match_the_pt2e_reference(shared, quantized, work):
    """The ExecuTorch program vs the PT2E-converted torch module (the backend's own reference):
    within a few output quantization steps, on real validation views."""
    for entry, got, ref, step in _artifact_vs_pt2e("executorch", shared, quantized, work):
        assert np.abs(got - ref).max() <= 4 * step, (entry, np.abs(got - ref).max() / step)


def test_verify_and_load_int8(shared, work):
    import rsnet_edge
    from converters.prepare import ConversionError
    from converters.verify import verify
    rep = verify(shared, work["ckpt"], images=work["data"] / "val", baseline=False, log=lambda s: None)
    n_val = len(list((work["data"] / "val").rglob("*.png"))) or len(list((work["data"] / "val").rglob("*.jpg")))
    assert set(rep["entries"]) == {"forward_64", "forward_48", "forward"}
    for e in rep["entries"].values():
        assert e["n"] == n_val and e["top1_agree"] >= 0.9 * n_val and e["ok"]
    with pytest.raises(ConversionError, match="--images"):
        verify(shared, work["ckpt"], images=None, baseline=False, log=lambda s: None)
    clf = rsnet_edge.load(shared)
    clf.set_resolution(48)
    img = sorted((work["data"] / "val").rglob("*.*"))[0]
    assert len(clf.predict([img], topk=2)[0]) == 2


# ------------------------------------------------------------------- LiteRT (.tflite) int8
@pytest.fixture(scope="module")
def tfl_shared(work):
    return _convert(work, "rs_int8.tflite", "shared", backend="tflite")


@pytest.fixture(scope="module")
def tfl_quantized(work):
    return _quantized(work, backend="tflite")


def _tfl_model(path):
    from ai_edge_litert.tools import flatbuffer_utils as fbu
    return fbu.read_model_from_bytearray(bytearray(path.read_bytes()))


def test_tflite_int8_quantizer_is_litert_torchs_own():
    """The LiteRT path quantizes with litert-torch's PT2EQuantizer, per-channel symmetric weights."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer
    from converters.quantize import make_quantizer, weight_spec
    assert isinstance(make_quantizer("tflite"), PT2EQuantizer)
    spec = weight_spec("tflite")
    assert spec.qscheme == torch.per_channel_symmetric and (spec.quant_min, spec.quant_max) == (-127, 127)


def test_tflite_int8_one_file_one_signature_per_resolution_float_io(tfl_shared, tfl_quantized):
    """A plain .tflite: forward_<r> per resolution + the forward alias, float32 I/O, every dense
    conv's canonical int8 tensor stored once (LiteRT's converter shares identical constant buffers
    across signatures), dtype int8 in both manifests."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.interpreter import Interpreter
    from rsnet_edge.runtime import open_artifact
    prep, entries, _ = tfl_quantized
    interp = Interpreter(model_path=str(tfl_shared))
    sigs = interp.get_signature_list()
    assert set(sigs) == {"forward_64", "forward_48", "forward"}
    for name in sigs:
        runner = interp.get_signature_runner(name)
        (inp,) = runner.get_input_details().values()
        (out,) = runner.get_output_details().values()
        assert inp["dtype"] == np.float32 and out["dtype"] == np.float32, name
    data = tfl_shared.read_bytes()
    for name in _dense_convs(prep):
        q = entries[RES[0]].weights[name][0]
        assert torch.equal(q, entries[RES[1]].weights[name][0]), name
        assert data.count(q.permute(0, 2, 3, 1).contiguous().numpy().tobytes()) == 1, name
    model = _tfl_model(tfl_shared)
    int8_bufs = [[t.buffer for t in sg.tensors if t.type == fb.TensorType.INT8
                  and model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)]
                 for sg in model.subgraphs]
    assert len(int8_bufs) == len(RES) and len(int8_bufs[0]) > 10
    assert int8_bufs[0] == int8_bufs[1]               # every int8 weight tensor: the same buffer
    man = json.loads((tfl_shared.parent / (tfl_shared.name + ".manifest.json")).read_text())
    assert man["dtype"] == "int8" and man["weights"] == "shared" and man["backend"] == "tflite"
    st = man["extra"]["int8_storage"]
    assert st["int8_weight_tensors"] == len(RES) * st["int8_weight_buffers"]
    assert man["extra"]["int8"]["int8_weight_tensors_extra"] == 0
    assert open_artifact(tfl_shared).embedded.dtype == "int8"


def test_tflite_int8_is_calibrated_per_resolution(tfl_shared, tfl_quantized):
    """Each signature carries its own resolution's calibration: every per-tensor int8 activation
    scale in its subgraph is one of that entry's PT2E activation scales, and mostly not one of the
    other resolution's (the input QUANTIZE's included: its params are the entry's first)."""
    from ai_edge_litert import schema_py_generated as fb
    prep, entries, _ = tfl_quantized
    model = _tfl_model(tfl_shared)

    def is_in(x, scales):
        return any(abs(x - a) <= 1e-6 * a for a in scales)

    act = {r: [s for s, _ in entries[r].act_qparams] for r in RES}
    assert sum(x != y for x, y in zip(act[64], act[48])) > len(act[64]) // 2
    for sig in model.signatureDefs:
        key = sig.signatureKey.decode() if isinstance(sig.signatureKey, bytes) else sig.signatureKey
        r = prep.entries()[key][0]
        other = [o for o in RES if o != r][0]
        sg = model.subgraphs[sig.subgraphIndex]
        first = sg.operators[0]
        assert model.operatorCodes[first.opcodeIndex].builtinCode == fb.BuiltinOperator.QUANTIZE
        qt = sg.tensors[first.outputs[0]].quantization
        assert (float(qt.scale[0]), int(qt.zeroPoint[0])) == pytest.approx(entries[r].act_qparams[0], rel=1e-6)
        scales = [float(t.quantization.scale[0]) for t in sg.tensors
                  if t.type == fb.TensorType.INT8 and t.quantization is not None
                  and t.quantization.scale is not None and len(t.quantization.scale) == 1]
        assert len(scales) > 10
        assert all(is_in(x, act[r]) for x in scales), key
        assert sum(is_in(x, act[other]) for x in scales) < len(scales) // 2, key


def test_tflite_int8_logits_match_the_pt2e_reference(tfl_shared, tfl_quantized, work):
    """The .tflite (LiteRT interpreter) vs the PT2E-converted torch module it was lowered from, on
    real validation views: LiteRT's integer kernels (int32 biases, fixed-point requantization, an
    int8 MEAN) are not PT2E's float simulation, so the bound is a few output quantization steps
    (measured on this tiny random model: max 5, mean 1.3 of a 255-step output range), same top-1."""
    for entry, got, ref, step in _artifact_vs_pt2e("tflite", tfl_shared, tfl_quantized, work):
        steps = np.abs(got - ref) / step                              # in output quantization steps
        assert steps.max() <= 8 and steps.mean() <= 2, (entry, steps.max(), steps.mean())
        assert (got.argmax(1) == ref.argmax(1)).mean() >= 5 / 6, entry


def test_verify_and_load_tflite_int8(tfl_shared, work):
    import rsnet_edge
    from converters.verify import verify
    rep = verify(tfl_shared, work["ckpt"], images=work["data"] / "val", baseline=False, log=lambda s: None)
    n_val = len([p for p in (work["data"] / "val").rglob("*.*") if p.is_file()])
    assert rep["backend"] == "tflite"
    assert set(rep["entries"]) == {"forward_64", "forward_48", "forward"}
    for e in rep["entries"].values():
        assert e["n"] == n_val and e["top1_agree"] >= 0.9 * n_val and e["ok"]
    clf = rsnet_edge.load(tfl_shared)
    clf.set_resolution(48)
    img = sorted((work["data"] / "val").rglob("*.*"))[0]
    assert len(clf.predict([img], topk=2)[0]) == 2


def test_bench_measures_int8_against_int8_single_exports(shared, work, tmp_path):
    """bench.run_device on an int8 artifact: its baselines are int8 single-resolution exports
    (weights folded, dtype int8) calibrated on the same number of images of the same folder, and
    its summary row says int8; without --calib it refuses in one line before measuring."""
    import re
    import subprocess
    import sys

    from helpers import ROOT, subprocess_env
    from rsnet_edge.manifest import read_sidecar
    base = [sys.executable, "-m", "bench.run_device", str(shared), "--ckpt", str(work["ckpt"]), "--runs", "2",
            "--warmup", "1", "--switch-rounds", "1", "--no-memory", "--no-progress"]
    r = subprocess.run(base + ["--out-dir", str(tmp_path / "b0")], cwd=ROOT, env=subprocess_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "is int8: pass --calib DIR" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "b0").exists()
    r = subprocess.run(base + ["--calib", str(work["data"] / "train"), "--baseline-dir", str(tmp_path / "bl"),
                               "--out-dir", str(tmp_path / "b1")], cwd=ROOT, env=subprocess_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for res in RES:
        m = read_sidecar(tmp_path / "bl" / f"rs.folded_{res}.int8.pte")
        assert (m.dtype, m.weights, m.resolutions) == ("int8", "folded", [res])
        assert m.extra["int8"]["calibration"]["images"] == CALIB_N
    assert re.search(r"^rs_int8.pte +executorch +shared +int8 +\d\.\d+x +\d\.\d+x", r.stdout, re.M), r.stdout[-3000:]
