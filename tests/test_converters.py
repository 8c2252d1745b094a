"""Converters: per-entry parity in the backend runtimes, weights stored once, manifest round trip,
Core ML structure, refusals (corrupt checkpoint, checkpoint/artifact mismatch), atomic output.

Conversions are slow (tens of seconds each on 2 cores), so module-scoped fixtures convert each tiny
artifact once and the tests share it (the whole file takes about 3-4 minutes here).
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from converters import pipeline
from converters import prepare as P
from helpers import RS, ROOT, error_line, make_ckpt, run_module
from rsnet_edge.checkpoint import load_checkpoint
from rsnet_edge.manifest import DEFAULT_ENTRY, Manifest, ManifestError, entry_name, read_sidecar


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_ckpt(tmp_path_factory.mktemp("ckpt") / "rs.pt")


@pytest.fixture(scope="module")
def pte(ckpt, tmp_path_factory):
    from converters import executorch
    out = tmp_path_factory.mktemp("et") / "rs.pte"
    pipeline.convert("executorch", executorch.lower, ckpt, out, weights="affine", quiet=True)
    return out


# ------------------------------------------------------------------------------- prepare (torch)
@pytest.mark.parametrize("encoding", ["folded", "affine", "hybrid"])
def test_encodings_match_checkpoint(ckpt, encoding):
    weights = "folded" if encoding == "folded" else "affine"
    prep = P.prepare(load_checkpoint(ckpt), RS + [56], weights, None if weights == "folded" else encoding)
    assert prep.resolutions == [64, 56, 48]
    for r in prep.resolutions:
        x = P.sample_input(r, batch=2, seed=3)
        with torch.no_grad():
            want, got = prep.references[r](x), prep.modules[r](x)
        assert (want - got).abs().max().item() < 1e-4


def test_shared_encoding_keeps_conv_weights_identical(ckpt):
    prep = P.prepare(load_checkpoint(ckpt), weights="affine")
    a, b = (dict(prep.modules[r].named_parameters()) for r in RS)
    affine = [k for k in a if k.endswith(".conv.weight")]          # ChannelAffine = the BN set
    shared = [k for k, v in a.items() if v.dim() in (2, 4) and k not in affine]
    assert len(shared) == prep.total_convs + 1                       # every conv + the classifier
    assert all(torch.equal(a[k], b[k]) for k in shared)
    assert affine and any(not torch.equal(a[k], b[k]) for k in affine)  # the BN sets do differ


def test_interpolated_resolution_flagged_untrained(ckpt, tmp_path):
    from rsnet_edge.checkpoint import manifest_for
    m = manifest_for(load_checkpoint(ckpt), "executorch", resolutions=[64, 56, 48])
    assert [e.trained for e in m.entries] == [True, False, True]
    assert [e.entry for e in m.entries] == [entry_name(r) for r in (64, 56, 48)]


# ------------------------------------------------------------------------------- refusals
def test_corrupt_checkpoint_one_error_line(ckpt, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(Path(ckpt).read_bytes()[:2000])
    out = tmp_path / "x.pte"
    res = run_module("converters.executorch", "--ckpt", bad, "--out", out, "--weights", "folded")
    assert res.returncode == 2
    error_line(res.stderr)
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_atomic_output_after_forced_failure(ckpt, tmp_path):
    def boom(prep, manifest_json, tmp, dtype):
        tmp.write_bytes(b"half an artifact")
        raise RuntimeError("forced failure")

    def boom_dir(prep, manifest_json, tmp, dtype):
        (tmp / "Data").mkdir(parents=True)
        (tmp / "Data" / "weight.bin").write_bytes(b"partial")
        raise RuntimeError("forced failure")

    old = tmp_path / "old.pte"
    old.write_bytes(b"previous artifact")
    for lower, out in [(boom, tmp_path / "new.pte"), (boom, old), (boom_dir, tmp_path / "m.mlpackage")]:
        with pytest.raises(RuntimeError, match="forced"):
            pipeline.convert("executorch", lower, ckpt, out, weights="folded", quiet=True)
    assert not (tmp_path / "new.pte").exists() and not (tmp_path / "m.mlpackage").exists()
    assert old.read_bytes() == b"previous artifact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pte"]


def test_backend_failure_one_error_line(ckpt, tmp_path, capsys):
    """An unexpected exception in a backend's lowering step: one ``error: <backend> conversion
    failed: <first line>`` line, exit 2, no traceback, nothing at --out; --debug re-raises it."""
    def boom(prep, manifest_json, tmp, dtype):
        (tmp / "Data").mkdir(parents=True)
        (tmp / "Data" / "weight.bin").write_bytes(b"partial")
        raise ValueError("backend exploded\nsecond line of detail")

    out = tmp_path / "rs.mlpackage"
    argv = ["--ckpt", str(ckpt), "--out", str(out)]
    assert pipeline.run_cli("coreml", boom, argv) == 2
    err = capsys.readouterr().err
    assert error_line(err) == "error: coreml conversion failed: backend exploded"
    assert "Traceback" not in err and "second line" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []

    with pytest.raises(P.BackendError, match="coreml conversion failed") as info:
        pipeline.run_cli("coreml", boom, argv + ["--debug"])
    assert isinstance(info.value.__cause__, ValueError)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_backend_failure_through_real_cli(ckpt, tmp_path):
    """The same through ``python -m converters.executorch``, its real lowering forced to fail."""
    out = tmp_path / "rs.pte"
    code = ("import sys, converters.executorch as m, torch.export as te\n"
            "def broken(*a, **k): raise RuntimeError('export refused: forced')\n"
            "te.export = broken\n"
            "sys.exit(m.main(sys.argv[1:]))")
    res = subprocess.run([sys.executable, "-c", code, "--ckpt", str(ckpt), "--out", str(out),
                          "--weights", "affine"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 2, res.stderr[-2000:]
    assert error_line(res.stderr) == "error: executorch conversion failed: export refused: forced"
    assert "Traceback" not in res.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- ExecuTorch
def test_executorch_parity_every_entry(pte, ckpt):
    from converters.verify import verify
    rep = verify(pte, ckpt, baseline=False, log=lambda s: None)
    assert set(rep["entries"]) == {entry_name(r) for r in RS} | {DEFAULT_ENTRY}
    for e in rep["entries"].values():
        assert e["max_abs_diff"] <= 1e-3 and e["top1_agree"] == e["n"]


def test_manifest_round_trip_executorch(pte, ckpt):
    from rsnet_edge.runtime import open_artifact
    side = read_sidecar(pte)
    emb = open_artifact(pte).embedded
    assert side.artifact["sha256"] and "sha256" not in emb.artifact
    assert Manifest.from_json(side.to_json()) == side
    for key in ("backend", "arch", "arch_args", "entries", "checkpoint", "weights", "class_names"):
        assert getattr(side, key) == getattr(emb, key)
    assert side.backend == "executorch" and side.resolutions == RS and side.default_resolution == 64
    assert side.extra["default_entry"] == DEFAULT_ENTRY and side.extra["encoding"] == "affine"


def test_checkpoint_artifact_mismatch_refused(pte, tmp_path):
    other = make_ckpt(tmp_path / "other.pt", seed=7)
    res = run_module("converters.verify", pte, "--ckpt", other, "--no-baseline")
    assert res.returncode == 2
    assert "not the checkpoint" in error_line(res.stderr)


def test_tampered_artifact_refused(pte, ckpt, tmp_path):
    from converters.verify import open_checked
    from rsnet_edge.runtime import RuntimeLoadError
    copy = tmp_path / "rs.pte"
    copy.write_bytes(pte.read_bytes() + b"\0")
    Path(str(copy) + ".manifest.json").write_text(Path(str(pte) + ".manifest.json").read_text())
    with pytest.raises(RuntimeLoadError, match="does not match"):
        open_checked(copy)


# ------------------------------------------------------------------------------- slow: sizes, LiteRT, Core ML
@pytest.fixture(scope="module")
def ckpt_1k(tmp_path_factory):
    # an ImageNet-sized head (1000 classes): the shared weights an RS-Net is about
    return make_ckpt(tmp_path_factory.mktemp("ckpt1k") / "rs1k.pt", resolutions=[96, 64, 48],
                     num_classes=1000)


@pytest.mark.parametrize("backend", ["executorch", "tflite"])
def test_shared_size_ratio_and_parity(backend, ckpt_1k, tmp_path, monkeypatch):
    from converters import executorch, tflite
    from converters.verify import verify
    monkeypatch.setenv("RSNET_EDGE_CACHE", str(tmp_path / "cache"))
    lower = {"executorch": executorch.lower, "tflite": tflite.lower}[backend]
    out = tmp_path / ("rs" + {"executorch": ".pte", "tflite": ".tflite"}[backend] + ".rsfold")
    pipeline.convert(backend, lower, ckpt_1k, out, quiet=True)      # the default: fold at load
    rep = verify(out, ckpt_1k, log=lambda s: None)
    assert rep["ok"], rep["entries"]
    assert rep["size_ratio"] <= 1.10, rep["size_ratio"]


def test_tflite_parity_every_entry(ckpt, tmp_path):
    from converters import tflite
    from converters.verify import verify
    from rsnet_edge.runtime import open_artifact
    out = tmp_path / "rs.tflite"
    pipeline.convert("tflite", tflite.lower, ckpt, out, weights="affine", quiet=True)
    rep = verify(out, ckpt, baseline=False, log=lambda s: None)
    assert rep["ok"] and set(rep["entries"]) == {entry_name(r) for r in RS} | {DEFAULT_ENTRY}
    clf = open_artifact(out)
    assert clf.embedded.entries == read_sidecar(out).entries
    assert clf.entry_names() == {entry_name(r) for r in RS} | {DEFAULT_ENTRY}


@pytest.fixture(scope="module")
def mlpackage(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("cm") / "rs.mlpackage"
    res = run_module("converters.coreml", "--ckpt", ckpt, "--out", out)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_coreml_structure(mlpackage, ckpt):
    from converters.coreml import read_package
    from converters.verify import check_coreml_structure
    pkg = read_package(mlpackage)
    # no separate 'forward' function: the package's default function is the highest resolution's
    assert pkg["default_function"] == entry_name(RS[0])
    assert pkg["functions"] == {entry_name(r): {"x": [1, 3, r, r]} for r in RS}
    emb, side = Manifest.from_json(pkg["embedded_manifest"]), read_sidecar(mlpackage)
    assert emb.backend == "coreml" and emb.entries == side.entries
    assert emb.extra["default_entry"] == side.extra["default_entry"] == entry_name(RS[0])
    check_coreml_structure(pkg, side)
    with pytest.raises(ManifestError, match="default function"):
        check_coreml_structure({**pkg, "default_function": entry_name(RS[1])}, side)
    with pytest.raises(ManifestError, match="takes"):
        check_coreml_structure({**pkg, "functions": {**pkg["functions"], entry_name(RS[1]): {"x": [1, 3, 1, 1]}}}, side)
    # the shared conv/FC weights stored once: far below two copies
    shared = 4 * sum(v.numel() for v in load_checkpoint(ckpt)["state_dict"].values() if v.dim() in (2, 4))
    assert shared < pkg["weight_bytes"] < 1.3 * shared
    # --weights shared (default) on Core ML: every conv of every function reads the shared W through
    # constexpr_blockwise_shift_scale(W, s_r) (iOS 18); Core ML materialises W * s_r itself
    import coremltools as ct
    spec = ct.utils.load_spec(str(mlpackage))
    convs = side.extra["convs"]
    assert side.extra["constexpr_folds"] == convs * len(RS)
    for name, func in spec.mlProgram.functions.items():
        ops = [op.type for b in func.block_specializations.values() for op in b.operations]
        assert ops.count("constexpr_blockwise_shift_scale") == ops.count("conv") == convs, name


def test_coreml_compaction_keeps_graph(ckpt, tmp_path):
    """Short names + merged immediate consts: the same graph (checked name-free), a smaller proto,
    and a program coremltools still parses."""
    import copy

    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    from converters.coreml import compact_function, convert_one, graph_signature
    prep = P.prepare(load_checkpoint(ckpt), [RS[0]], "affine")
    src = tmp_path / "one.mlpackage"
    convert_one(prep.modules[RS[0]], RS[0], "fp32", src)
    spec = ct.utils.load_spec(str(src))
    func = spec.mlProgram.functions["main"]
    before, size = copy.deepcopy(func), func.ByteSize()
    assert compact_function(func) > 0
    assert graph_signature(func) == graph_signature(before) and func.ByteSize() < 0.6 * size
    names = [o.name for b in func.block_specializations.values() for op in b.operations for o in op.outputs]
    assert [i.name for i in func.inputs] == ["x"] and "logits" in names
    assert len(names) == len(set(names)) and max(len(n) for n in names if n != "logits") <= 3
    prog = milproto_load(spec, spec.specificationVersion, str(next(src.rglob("weights"))))
    assert list(prog.functions) == ["main"]


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML prediction needs macOS (coremltools "
                                                      "cannot run Core ML models on Linux)")
def test_coreml_predict_macos(mlpackage, ckpt):  # pragma: no cover
    from converters.verify import verify
    rep = verify(mlpackage, ckpt, baseline=False, log=lambda s: None)
    assert rep["ok"] and rep["entries"]
