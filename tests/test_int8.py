"""int8 RS artifacts (issue 11): canonical shared int8 weights, per-resolution calibration, parity
with the backend's own PT2E reference, verify and load. The CLI's bad calibration inputs are rows
of the table in tests/test_bad_inputs.py ("int8-*")."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from test_converters import make_ckpt

RES = [64, 48]
CALIB_N = 16


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_data):
    d = tmp_path_factory.mktemp("int8")
    return {"dir": d, "ckpt": make_ckpt(d / "rs.pt", resolutions=RES), "data": tiny_data}


def _convert(work, name, weights, resolutions=RES):
    from converters import executorch
    from converters.prepare import convert
    out = work["dir"] / name
    if not out.exists():
        convert("executorch", executorch.lower, work["ckpt"], out, resolutions=resolutions, weights=weights,
                dtype="int8", quiet=True, calib=work["data"] / "train", calib_images=CALIB_N)
    return out


@pytest.fixture(scope="module")
def shared(work):
    return _convert(work, "rs_int8.pte", "shared")


def _quantized(work, resolutions=RES, canonical=True):
    """What the converter quantized (deterministic: same images, same observers)."""
    from converters.prepare import prepare
    from converters.quantize import load_calibration, quantize_prepared
    from rsnet_edge.checkpoint import load_checkpoint
    prep = prepare(load_checkpoint(work["ckpt"]), resolutions, "shared", backend="executorch")
    entries, facts = quantize_prepared(prep, load_calibration(work["data"] / "train", CALIB_N),
                                       canonical=canonical, progress=False)
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


def test_every_entry_ships_the_same_canonical_int8_tensors(quantized):
    prep, entries, facts = quantized
    a, b = entries[RES[0]].weights, entries[RES[1]].weights
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        assert torch.equal(a[name][0], b[name][0]), name             # int8 bit-identical
    assert any(not torch.equal(a[n][1], b[n][1]) for n in a)          # scales per resolution
    assert facts["int8_weight_tensors_extra"] == 0
    for r in RES:                   # as accurate as quantizing each folded weight directly
        assert facts["per_resolution"][str(r)]["max_weight_err_steps"] <= 0.5 + 1e-3


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


def test_int8_logits_match_the_pt2e_reference(shared, quantized, work):
    """The ExecuTorch program vs the PT2E-converted torch module (the backend's own reference):
    within a few output quantization steps, on real validation views."""
    from converters.verify import Runner
    from rsnet_edge.preprocess import eval_batch, load_rgb
    prep, entries, _ = quantized
    ck = prep.ckpt
    ims = [load_rgb(p) for p in sorted((work["data"] / "val").rglob("*.*"))[:6]]
    runner = Runner("executorch", shared)
    for entry, (r, _) in prep.entries().items():
        x = eval_batch(ims, r, ck["mean"], ck["std"], ck["crop_pct"])
        got = runner.run(entry, x)
        with torch.no_grad():
            ref = entries[r].module(torch.from_numpy(x)).numpy()
        step = entries[r].act_qparams[-1][0]           # the output's quantization step
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
