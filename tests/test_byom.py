"""Bring your own model, end to end (issue 18, item 9): for one net per family -- torchvision's
MobileNetV3, EfficientNet, RegNet, DenseNet (62 BNs that cannot fold) and a timm net built from
BatchNormAct2d with BNs after a concatenation (MixNet) -- train one step on the tiny built-in data,
convert with the default fold-at-load form (ExecuTorch .rsfold, LiteRT .rsfold or ONNX: each
backend at least once, the cheapest conversion of each net where there is a choice), verify every
entry in the backend's runtime against the checkpoint, and predict with ``rsnet_edge.load``. The
full matrix (every registered architecture x the four backends, random checkpoints) is marked
slow."""

from __future__ import annotations

import importlib.util
import json

import pytest

import rsnet_edge
from converters.pipeline import convert, default_out, lower_of
from converters.verify import verify
from rsnet_edge import archs, backends
from rsnet_edge.manifest import read_sidecar

RS = ["64", "48"]
FAMILIES = [("mobilenet_v3_small", "executorch"), ("efficientnet_b0", "onnx"), ("regnet_x_400mf", "tflite"),
            ("densenet121", "onnx"), ("timm:mixnet_s", "onnx")]
#: BN layers that cannot fold into a conv (each stays a per-resolution scale and shift): DenseNet's
#: pre-activation BNs after a concatenation (58 norm1 + 3 transitions + norm5), MixNet's BN after
#: the concatenation of its mixed-kernel convs
AFFINE_BNS = {"densenet121": 62, "timm:mixnet_s": 34}


def _needs(arch: str, backend: str) -> None:
    if not archs.get(arch).available():
        pytest.skip(f"{arch} needs {archs.get(arch).needs}")
    mod = backends.get(backend).runtime_import
    if importlib.util.find_spec(mod.split(".")[0]) is None:
        pytest.skip(f"{backend} runtime not installed")


def _check(art, ckpt, arch, images=None):
    rep = verify(art, ckpt, images, baseline=False, log=lambda _: None)
    m = read_sidecar(art)
    assert m.arch == arch and m.extra.get("affine_bns", 0) == AFFINE_BNS.get(arch, 0)
    assert rep["ok"], json.dumps(rep["entries"])
    if "prediction" not in rep:                               # Core ML off macOS: structure only
        assert len(rep["entries"]) == len(RS) + 1             # forward_<r> and the default entry
    return rep


@pytest.mark.parametrize("arch,backend", FAMILIES, ids=[f"{a}-{b}" for a, b in FAMILIES])
def test_train_one_step_convert_verify(arch, backend, tiny_data, tmp_path):
    _needs(arch, backend)
    from training.train import main as train_main

    ckpt = tmp_path / "rs.pt"
    assert train_main(["--arch", arch, "--data", str(tiny_data), "--resolutions", *RS, "--epochs", "1",
                       "--max-steps-per-epoch", "1", "--batch-size", "4", "--workers", "0", "--threads", "1",
                       "--no-progress", "--out", str(ckpt)]) == 0
    art = tmp_path / default_out(ckpt.name, backend, "shared").name
    convert(backend, lower_of(backend), ckpt, art, weights="shared", quiet=True)
    _check(art, ckpt, arch, tiny_data / "val")
    images = sorted((tiny_data / "val").rglob("*.jpg"))[:2]
    want = rsnet_edge.load(ckpt).predict(images, resolution=48, topk=1)
    got = rsnet_edge.load(art).predict(images, resolution=48, topk=1)
    assert [w[0][0] for w in want] == [g[0][0] for g in got]


MATRIX = [(a, b.name) for a in archs.names() for b in backends.converted()]


@pytest.mark.slow
@pytest.mark.parametrize("arch,backend", MATRIX, ids=[f"{a}-{b}" for a, b in MATRIX])
def test_every_arch_every_backend(arch, backend, tmp_path):
    """Every registered architecture (random checkpoint, BN sets differing per resolution) through
    every converter's default form: parity in the backend's runtime (Core ML: its structure only,
    off macOS)."""
    _needs(arch, backend)
    from bench.arch_table import random_checkpoint

    ckpt = random_checkpoint(arch, [int(r) for r in RS], 4, tmp_path / "rs.pt")
    art = tmp_path / default_out(ckpt.name, backend, "shared").name
    convert(backend, lower_of(backend), ckpt, art, weights="shared", quiet=True)
    _check(art, ckpt, arch)
