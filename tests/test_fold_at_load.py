"""Fold at load (issue 9): the RSFOLD compact form (ExecuTorch, LiteRT) and the ONNX form that ONNX
Runtime folds itself.

* RSFOLD: pack/unpack is exact (the unpacked program IS the folded program, byte for byte), every
  folded conv of every resolution is found in a real ExecuTorch program, the runtime unpacks once
  into a cache and reuses it only when its sha256 matches, and corrupt / truncated / mismatched
  artifacts are refused with one line and nothing written to the cache.
* ONNX: one .onnx with the shared weights once; ONNX Runtime's session has no Mul left after any
  conv (every per-resolution BN folded into its conv) and matches the checkpoint at every entry.
The Java unpacker's byte-exact agreement is tested in tests/test_android_core.py.
"""

import hashlib
import json
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from converters import pipeline
from converters import prepare as P
from rsnet_edge import rsfold
from rsnet_edge.cache import unpack_artifact
from rsnet_edge.checkpoint import load_model
from rsnet_edge.manifest import read_sidecar, sidecar_path
from rsnet_edge.runtime import RuntimeLoadError, load
from helpers import RS, make_ckpt

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- format (no backend)
def synthetic_program(seed=0):
    """Program bytes with two folded weights in different layouts (channel-major and channel-last)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3, 3, 3)).astype("<f4")
    s1, s2 = rng.uniform(-2, 2, 4).astype("<f4"), rng.uniform(0.5, 2, 4).astype("<f4")
    a = (w * s1[:, None, None, None]).astype("<f4")                 # OIHW: inner = 27
    b = np.ascontiguousarray((w * s2[:, None, None, None]).transpose(1, 2, 3, 0))   # IHWO: inner = 1
    head, mid, tail = rng.bytes(37), rng.bytes(5), rng.bytes(11)
    prog = head + a.tobytes() + mid + b.tobytes() + tail
    holes = [rsfold.Hole(len(head), w.reshape(-1), s1, 27),
             rsfold.Hole(len(head) + a.nbytes + len(mid), np.ascontiguousarray(w.transpose(1, 2, 3, 0)).reshape(-1), s2, 1)]
    return prog, holes


def test_pack_unpack_exact_and_weights_once():
    prog, holes = synthetic_program()
    blob = rsfold.pack(prog, holes, "pte")
    out, head = rsfold.unpack_bytes(blob)
    assert out == prog and head["output"]["sha256"] == hashlib.sha256(prog).hexdigest()
    # the two holes hold one weight tensor in two layouts: both stored, each once (108 floats)
    ops = rsfold.Container.from_bytes(blob).outputs[0].ops
    assert [op["op"] for op in ops] == ["copy", "scale_f32", "copy", "scale_f32", "copy"]
    assert len(blob) < len(prog) + 16 + len(json.dumps(_header(blob))) + 2 * 4 * 4 + 8


def test_programs_share_weights_and_constants_and_unpack_alone():
    """Two programs (two resolutions) folding one W with their own scales and holding one constant
    they share (the classifier): W and the constant are stored once; each program unpacks alone."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, 3, 3)).astype("<f4")
    fc = rng.bytes(4096)
    progs = []
    for k in range(2):
        s = rng.uniform(0.5, 2, 4).astype("<f4")
        head = rng.bytes(50 + k)
        data = head + (w * s[:, None, None, None]).astype("<f4").tobytes() + fc + rng.bytes(9)
        hole = rsfold.Hole(len(head), w.reshape(-1), s, 27)
        progs.append(rsfold.Program((f"forward_{64 - 16 * k}",), data, [hole], [(len(head) + w.nbytes, len(fc))]))
    blob = rsfold.pack(progs, inner="pte")
    box = rsfold.Container.from_bytes(blob)
    assert [o.entries for o in box.outputs] == [("forward_64",), ("forward_48",)]
    assert [box.unpack(k) for k in range(2)] == [p.data for p in progs]
    assert box.output_for("forward_48").index == 1
    payload = len(blob) - box.base
    assert payload < sum(len(p.data) for p in progs) - w.nbytes - len(fc) + 64    # W and fc once
    assert blob.count(fc) == 1


def test_pack_refuses_a_hole_that_does_not_reproduce_the_program():
    prog, holes = synthetic_program()
    bad = rsfold.Hole(holes[0].offset, holes[0].weight, holes[0].scale * 1.0001, holes[0].inner)
    with pytest.raises(rsfold.RsfoldError, match="does not reproduce"):
        rsfold.pack(prog, [bad], "pte")


def _header(blob):
    (n,) = struct.unpack_from("<Q", blob, 8)
    return json.loads(blob[16:16 + n])


def _rewrite_header(blob, fn, payload=None):
    (n,) = struct.unpack_from("<Q", blob, 8)
    head = json.loads(blob[16:16 + n])
    fn(head)
    text = json.dumps(head).encode()
    return blob[:8] + struct.pack("<Q", len(text)) + text + (blob[16 + n:] if payload is None else payload)


def _flip_weight_byte(blob):
    (n,) = struct.unpack_from("<Q", blob, 8)
    head = json.loads(blob[16:16 + n])
    op = next(o for o in head["outputs"][0]["ops"] if o["op"] == "scale_f32")
    i = 16 + n + op["src"] + 5
    return blob[:i] + bytes([blob[i] ^ 0x40]) + blob[i + 1:]


def _amplified(blob, op):
    """A valid-looking container whose one program re-reads the same 4 KB of payload 400 times
    (1.6 MB from 4 KB): refused before any work, by the overlap rule (copies) or the size bound."""
    def fn(h):
        o = h["outputs"][0]
        o["ops"] = [dict(op) for _ in range(400)]
        o["size"] = 400 * op["size"]
    return _rewrite_header(blob, fn, payload=b"\0" * 4096)


def _v1(blob):
    """The same program as a version-1 container (one program, ``output`` + ``ops`` at the top)."""
    def fn(h):
        o = h["outputs"][0]
        h.update(version=1, output={"size": o["size"], "sha256": o["sha256"]}, ops=o["ops"])
        del h["outputs"]
    return _rewrite_header(blob, fn)


BAD_CONTAINERS = [
    ("bad magic", lambda b: b"NOTFOLD1" + b[8:], "bad magic"),
    ("truncated", lambda b: b[:len(b) - 20], "truncated or corrupt"),
    ("header cut", lambda b: b[:40], "truncated"),
    ("weight byte flipped", _flip_weight_byte, "corrupt: it unpacks to sha256"),
    ("unknown op", lambda b: _rewrite_header(b, lambda h: h["outputs"][0]["ops"][1].update(op="scale_f16")),
     "unknown"),
    ("wrong size", lambda b: _rewrite_header(b, lambda h: h["outputs"][0].update(size=h["outputs"][0]["size"] + 1)),
     "ops make"),
    ("newer version", lambda b: _rewrite_header(b, lambda h: h.update(version=3)), "version"),
    ("amplified copies", lambda b: _amplified(b, {"op": "copy", "src": 0, "size": 4000}), "overlap"),
    ("amplified folds", lambda b: _amplified(b, {"op": "scale_f32", "src": 0, "size": 4000, "scale": 4000,
                                                 "channels": 1, "inner": 1000}), "more than 64x"),
    ("copies overlap", lambda b: _rewrite_header(b, lambda h: h["outputs"][0]["ops"].__setitem__(
        4, dict(h["outputs"][0]["ops"][4], src=h["outputs"][0]["ops"][2]["src"]))), "overlap"),
    ("partial channel", lambda b: _rewrite_header(b, lambda h: h["outputs"][0]["ops"][1].update(inner=5)),
     "bad scale range"),
    ("deep header", lambda b: b[:8] + struct.pack("<Q", 200_000) + b"[" * 200_000, "corrupt header"),
    ("v1 wrong size", lambda b: _rewrite_header(_v1(b), lambda h: h["output"].update(size=h["output"]["size"] + 1)),
     "ops make"),
    # names that become file names (the CLI's <entry>.<inner>, the cache's <sha256>.<inner>)
    ("entry is a path", lambda b: _rewrite_header(b, lambda h: h["outputs"][0].update(entries=["../../x"])),
     "entry-point names"),
    ("entry served twice", lambda b: _rewrite_header(b, lambda h: h.update(
        outputs=[dict(h["outputs"][0], entries=["forward"])] * 2)), "served twice"),
    ("sha256 a path", lambda b: _rewrite_header(b, lambda h: h["outputs"][0].update(sha256="/" + "0" * 63)),
     "lacks output size/sha256"),
]


def test_version_1_containers_still_unpack():
    prog, holes = synthetic_program()
    out, head = rsfold.unpack_bytes(_v1(rsfold.pack(prog, holes, "pte")))
    assert out == prog and head["entries"] is None


@pytest.mark.parametrize("name,mutate,message", BAD_CONTAINERS, ids=[c[0] for c in BAD_CONTAINERS])
def test_corrupt_container_refused_nothing_cached(name, mutate, message, tmp_path):
    prog, holes = synthetic_program()
    bad = tmp_path / "m.pte.rsfold"
    bad.write_bytes(mutate(rsfold.pack(prog, holes, "pte")))
    cache = tmp_path / "cache"
    with pytest.raises(rsfold.RsfoldError, match=message) as info:
        unpack_artifact(bad, cache)
    assert "\n" not in str(info.value)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_unpack_cli_writes_the_program(tmp_path):
    prog, holes = synthetic_program(1)
    src = tmp_path / "m.pte.rsfold"
    src.write_bytes(rsfold.pack(prog, holes, "pte"))
    out = tmp_path / "m.pte"
    res = subprocess.run([sys.executable, "-m", "rsnet_edge.rsfold", str(src), str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == prog and res.stdout.split()[0] == hashlib.sha256(prog).hexdigest()
    res = subprocess.run([sys.executable, "-m", "rsnet_edge.rsfold", str(src), str(src)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("error:") and src.read_bytes()[:8] == rsfold.MAGIC


def assert_matches_checkpoint(clf, ckpt):
    """Every entry of a loaded artifact: logits within 1e-3 of the checkpoint's, same top-1."""
    model, _ = load_model(ckpt)
    for r in clf.resolutions:
        x = clf.dummy_input(r)
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        got = clf.run(x, r)
        assert np.abs(got - want).max() <= 1e-3 and (got.argmax(1) == want.argmax(1)).all(), r


# ----------------------------------------------------------------------------- a real ExecuTorch program
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_ckpt(tmp_path_factory.mktemp("fold") / "rs_tiny.pt", resolutions=RS + [32])


@pytest.fixture(scope="module")
def compact(ckpt):
    """``python -m converters.executorch --ckpt X`` with no other flag: the documented default."""
    res = subprocess.run([sys.executable, "-m", "converters.executorch", "--ckpt", str(ckpt)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = Path(ckpt).with_name("rs_tiny.pte.rsfold")            # default --out: beside the checkpoint
    assert out.is_file() and sidecar_path(out).is_file()
    return out


def test_default_converter_writes_compact_form(compact, ckpt):
    m = read_sidecar(compact)
    assert m.weights == "shared" and m.extra["fold_at_load"] == "rsfold"
    assert m.extra["rsfold_unfound"] == []                         # every conv of every resolution
    n_convs = m.extra["convs"]
    assert m.extra["rsfold_holes"] == n_convs * len(m.entries)
    box = rsfold.Container.open(compact)
    programs = [box.unpack(k) for k in range(len(box.outputs))]
    # one program per resolution, the top one also serving the default entry
    assert [o.entries for o in box.outputs] == [("forward_64", "forward"), ("forward_48",), ("forward_32",)]
    assert [hashlib.sha256(p).hexdigest() for p in programs] == [u["sha256"] for u in m.artifact["unpacked"]]
    # the unpacked programs store every resolution's folded weights; the compact file each W once
    model, _ = load_model(ckpt)
    conv_bytes = 4 * sum(p.numel() for p in model.parameters() if p.dim() == 4)
    assert sum(map(len, programs)) - compact.stat().st_size > (len(m.entries) - 1.5) * conv_bytes


def test_runtime_unpacks_once_and_matches_checkpoint(compact, ckpt, tmp_path):
    cache = tmp_path / "cache"
    top = read_sidecar(compact).artifact["unpacked"][0]["sha256"]        # the default entry's program
    clf = load(compact, cache=cache)
    assert clf.stats.unpack_reused is False and [p.name for p in cache.iterdir()] == [f"{top}.pte"]
    assert_matches_checkpoint(clf, ckpt)                      # every entry: every program, once each
    assert len(list(cache.iterdir())) == 3 and clf.stats.file_loads == 3
    again = load(compact, cache=cache)
    assert again.stats.unpack_reused is True
    # a damaged cache entry is never trusted: re-unpacked from the artifact
    cached = cache / f"{top}.pte"
    damaged = cached.read_bytes()
    cached.write_bytes(damaged[:-1] + bytes([damaged[-1] ^ 1]))        # the last byte changed
    fixed = load(compact, cache=cache)
    assert fixed.stats.unpack_reused is False
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == top


def test_resident_one_keeps_one_program(compact, ckpt, tmp_path):
    """resident="one": the first load unpacks and opens only the default entry's program; running
    another entry releases the previous program (one runner open at a time) and matches the
    checkpoint; resident="all" keeps every program it opened."""
    cache = tmp_path / "cache"
    lean = load(compact, cache=cache, resident="one")
    assert len(list(cache.iterdir())) == 1 and len(lean.runner.open) == 1
    assert_matches_checkpoint(lean, ckpt)
    assert len(lean.runner.open) == 1 and lean.stats.file_loads == 3
    lean.run(lean.dummy_input(64), 64)                     # back to the first: loaded again
    assert lean.stats.file_loads == 4 and lean.stats.entry_loads[64] == 2
    full = load(compact, cache=cache, resident="all")
    assert_matches_checkpoint(full, ckpt)
    full.run(full.dummy_input(64), 64)
    assert len(full.runner.open) == 3 and full.stats.file_loads == 3
    with pytest.raises(RuntimeLoadError, match="resident"):
        load(compact, cache=cache, resident="some")


def test_mismatched_compact_artifacts_refused(compact, tmp_path):
    import shutil
    # (1) a truncated copy with its sidecar: the sha256 check refuses it before unpacking
    t = tmp_path / "t.pte.rsfold"
    t.write_bytes(compact.read_bytes()[:-100])
    shutil.copy(sidecar_path(compact), sidecar_path(t))
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeLoadError, match="sha256"):
        load(t, cache=cache)
    # (2) the same without a sidecar: the container itself is refused
    sidecar_path(t).unlink()
    with pytest.raises(RuntimeLoadError, match="truncated or corrupt"):
        load(t, cache=cache)
    # (3) a sidecar claiming BN sets for other resolutions than the artifact has
    o = tmp_path / "o.pte.rsfold"
    shutil.copy(compact, o)
    side = json.loads(sidecar_path(compact).read_text())
    for e in side["entries"]:
        e["resolution"] += 8
        e["entry"] = f"forward_{e['resolution']}"
    side["default_resolution"] += 8
    side["policy"] = {}
    sidecar_path(o).write_text(json.dumps(side))
    with pytest.raises(RuntimeLoadError, match="entry points|disagrees"):
        load(o, cache=cache)
    assert not cache.exists() or all(not p.name.startswith(".") for p in cache.iterdir())


def test_compact_suffix_rule(ckpt, tmp_path):
    from converters import executorch
    with pytest.raises(P.ConversionError, match=r"\.pte\.rsfold"):
        pipeline.convert("executorch", executorch.lower, ckpt, tmp_path / "x.pte", quiet=True)
    with pytest.raises(P.ConversionError, match="only --weights shared"):
        pipeline.convert("executorch", executorch.lower, ckpt, tmp_path / "x.pte.rsfold", weights="folded", quiet=True)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- ONNX Runtime folds itself
def _ops(graph, c):
    import onnx
    for n in graph.node:
        c[n.op_type] += 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _ops(a.g, c)
    return c


@pytest.fixture(scope="module")
def onnx_pair(ckpt, tmp_path_factory):
    from converters import onnx as conv
    d = tmp_path_factory.mktemp("onnx")
    shared, folded = d / "rs.onnx", d / "rs_folded.onnx"
    pipeline.convert("onnx", conv.lower, ckpt, shared, quiet=True)
    pipeline.convert("onnx", conv.lower, ckpt, folded, weights="folded", quiet=True)
    return shared, folded


def test_onnx_runtime_folds_every_bn_into_its_conv(onnx_pair, ckpt, tmp_path):
    import onnx
    import onnxruntime as ort
    shared, folded = onnx_pair
    m = read_sidecar(shared)
    n_convs, S = m.extra["convs"], len(m.entries)
    before = _ops(onnx.load(str(shared)).graph, Counter())
    assert before["Conv"] == before["Mul"] == n_convs * S and before["If"] == S - 1
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(shared), opts, providers=["CPUExecutionProvider"])
    after = _ops(onnx.load(str(tmp_path / "opt.onnx")).graph, Counter())
    assert after["Conv"] == n_convs * S and after["Mul"] == 0 and after["BatchNormalization"] == 0
    # W stored once: far smaller than the per-resolution folded form
    assert shared.stat().st_size < 0.6 * folded.stat().st_size


def test_onnx_matches_checkpoint_every_entry(onnx_pair, ckpt):
    for art in onnx_pair:
        clf = load(art)
        assert clf.resolutions == sorted(RS + [32], reverse=True)
        assert_matches_checkpoint(clf, ckpt)
