"""Bad input, in one place (issue 10): every CLI answers one ``error:`` line naming the offending file
or value, exit 2 (Ctrl-C: ``interrupted``, exit 130), writes nothing and leaves its inputs unchanged.

The CLI table runs each command as a real subprocess (``python -m ...``). Each row: the argv (built
from a module-scoped workspace of tiny files), the expected exit code, a substring the error line
must contain, and the paths that must not exist afterwards. Every input file of the workspace is
hashed before and after each row. Library-level rules (image decoding, manifest keys, the policy's
inputs, resolutions) are tables of in-process calls below.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, error_line, run_module, subprocess_env
from fakes import artifacts as A

import rsnet_edge
from rsnet_edge.manifest import ManifestError, sidecar_path
from rsnet_edge.policy import PolicyError, Selector, default_policy
from rsnet_edge import preprocess as P
from rsnet_edge.runtime import RuntimeLoadError, load


# --------------------------------------------------------------------------------- workspace
def _plain_weights() -> list[str]:
    from converters import prepare
    return ["--weights", "affine"] if "affine" in prepare.WEIGHTS else []


PLAIN = _plain_weights()      # converter flags for a plain single-file .pte / .tflite


def plain_artifact(backend: str) -> Path:
    """A cached single-file artifact (.pte / .tflite) with every entry point: ``--weights affine``
    (``shared`` is the compact fold-at-load form where the converters offer it)."""
    from converters import prepare
    return A.artifact(backend, weights="affine" if "affine" in prepare.WEIGHTS else "shared")


def _manifest_variant(src: Path, dst_dir: Path, name: str, edit) -> Path:
    """A copy of an artifact whose sidecar manifest is edited by ``edit(dict)``."""
    p = A.copy_with_sidecar(src, dst_dir, name)
    d = json.loads(sidecar_path(p).read_text())
    edit(d)
    sidecar_path(p).write_text(json.dumps(d))
    return p


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Tiny inputs shared by every row: a checkpoint, a .pte, a dataset, images, bad files."""
    import torch

    from training.synthetic import generate

    d = tmp_path_factory.mktemp("bad")
    w = {"dir": d}
    w["ckpt"] = d / "v.pt"
    shutil.copy(A.checkpoint(), w["ckpt"])
    pte = plain_artifact("executorch")
    w["pte"] = A.copy_with_sidecar(pte, d, "v.pte")
    w["data"] = generate(d / "data", num_classes=2, train_per_class=4, val_per_class=2, size=48, progress=False)
    w["img"] = A.images()[0]
    w["img_dir"] = d / "photos"
    w["img_dir"].mkdir()
    for k, p in enumerate(A.images()[:3]):
        shutil.copy(p, w["img_dir"] / f"p{k}{p.suffix}")
    w["a_dir"] = d / "a_folder"
    w["a_dir"].mkdir()
    w["a_file"] = d / "a_file.txt"
    w["a_file"].write_text("not a folder")
    w["not_image"] = d / "not_image.jpg"
    w["not_image"].write_text("hello")
    w["bad_calib"] = d / "bad_calib" / "c0"                 # --calib with no readable image (issue 11)
    w["bad_calib"].mkdir(parents=True)
    (w["bad_calib"] / "x.jpg").write_text("not an image")
    w["bomb"] = d / "bomb.png"                    # 12000 x 12000 > PIL's 89.5 Mpixel limit
    Image.new("1", (12000, 12000)).save(w["bomb"])
    w["trunc_pte"] = A.copy_with_sidecar(pte, d, "trunc.pte")
    data = w["trunc_pte"].read_bytes()
    w["trunc_pte"].write_bytes(data[: len(data) // 3])
    w["trunc_bare"] = d / "bare" / "trunc.pte"   # no sidecar: the native loader must not see it
    w["trunc_bare"].parent.mkdir()
    w["trunc_bare"].write_bytes(data[: len(data) // 3])
    w["unk_top"] = _manifest_variant(pte, d, "unk_top.pte", lambda m: m.update(colour="RGB"))
    w["unk_input"] = _manifest_variant(pte, d, "unk_input.pte", lambda m: m["input"].update(foo=1))
    w["unk_entry"] = _manifest_variant(pte, d, "unk_entry.pte", lambda m: m["entries"][0].update(latency=3))
    ck = torch.load(A.checkpoint(), weights_only=True)
    ck["class_names"] = ck["class_names"][:3]              # 3 names, 4 classifier outputs
    w["bad_names"] = d / "bad_names.pt"
    torch.save(ck, w["bad_names"])
    w["init_text"] = d / "init_text.pth"                   # training.train --init rows (issue 14)
    w["init_text"].write_text("these are not weights\n")
    w["init_list"] = d / "init_list.pth"
    torch.save([torch.zeros(3)], w["init_list"])
    from torchvision import models as tvm
    w["init_mbv2"] = d / "init_mbv2_035.pth"
    torch.save(tvm.mobilenet_v2(num_classes=2, width_mult=0.35).state_dict(), w["init_mbv2"])
    w["init_mbv2_5cls"] = d / "init_mbv2_035_5cls.pth"               # issue 18: another classifier size
    torch.save(tvm.mobilenet_v2(num_classes=5, width_mult=0.35).state_dict(), w["init_mbv2_5cls"])
    from helpers import make_ckpt
    w["timm_ckpt"] = make_ckpt(d / "timm_lcnet.pt", [64, 48], num_classes=2, arch="timm:lcnet_100")
    w["runner"] = d / "executor_runner"
    w["runner"].write_bytes(b"\x7fELF fake runner")
    w["profile"] = d / "bench.json"
    w["profile"].write_text(json.dumps(_profile(10.0)))
    _hardening_inputs(w, d, pte)                      # issue 21
    return w


def _profile(p90_96) -> dict:
    return {"format": "rsnet-edge-device-profile", "version": 1, "device": {"where": "host"},
            "artifacts": [{"artifact": "v.pte", "backend": "executorch", "kind": "shared",
                           "resolutions": [96, 64], "profile": {"96": {"p50_ms": 9.0, "p90_ms": p90_96},
                                                                "64": {"p50_ms": 4.0, "p90_ms": 5.0}}}]}


DEEP = "[" * 200_000                      # issue 21 item 8: a RecursionError for Python's json module


def _with_sidecar_text(src: Path, d: Path, name: str, text: str | None) -> Path:
    """A copy of an artifact whose sidecar manifest is ``text`` (None: no sidecar written)."""
    p = d / name
    shutil.copy(src, p)
    if text is not None:
        sidecar_path(p).write_text(text)
    return p


def _hardening_inputs(w: dict, d: Path, pte: Path) -> None:
    """The bad inputs of issue 21 (bounded work, one rule for policy numbers, load's one error type)."""
    import struct

    import torch

    from rsnet_edge import rsfold

    w["rsfold"] = A.copy_with_sidecar(A.artifact("executorch", "shared"), d, "v.pte.rsfold")
    w["deep_side"] = _with_sidecar_text(pte, d, "deep.pte", DEEP)
    w["digits_side"] = _with_sidecar_text(pte, d, "digits.pte", '{"format": ' + "7" * 5000 + "}")
    w["dir_side"] = _with_sidecar_text(pte, d, "dirside.pte", None)
    sidecar_path(w["dir_side"]).mkdir()
    w["zero_side"] = _with_sidecar_text(pte, d, "zero.pte", None)
    sidecar_path(w["zero_side"]).symlink_to("/dev/zero")
    w["deep_rsfold"] = d / "deep.pte.rsfold"                 # an RSFOLD header nested 200,000 deep
    w["deep_rsfold"].write_bytes(rsfold.MAGIC + struct.pack("<Q", len(DEEP)) + DEEP.encode())
    for tag, value in (("nan", float("nan")), ("negative", -2.0), ("infinite", float("inf"))):
        w[f"profile_{tag}"] = d / f"bench_{tag}.json"        # json.dumps writes NaN / Infinity
        w[f"profile_{tag}"].write_text(json.dumps(_profile(value)))
    w["profile_deep"] = d / "bench_deep.json"
    w["profile_deep"].write_text('{"format": "rsnet-edge-device-profile", "artifacts": ' + DEEP)
    w["trace_deep"] = d / "trace_deep.json"
    w["trace_deep"].write_text(DEEP)
    sd = torch.load(w["init_mbv2"], weights_only=True)        # --init weights with a NaN in one tensor
    sd["features.0.0.weight"][0, 0, 0, 0] = float("nan")
    w["init_nan"] = d / "init_nan.pth"
    torch.save(sd, w["init_nan"])
    w["init_evil"] = d / "init_evil.pth"                      # a pickle that would run a command
    w["init_evil"].write_bytes(pickle.dumps({"features.0.0.weight": _Evil()}, protocol=2))
    onnx96 = A.artifact("onnx", "shared", resolutions=[96])   # a 96 px ONNX under a manifest saying 64
    w["onnx64"] = _manifest_variant(onnx96, d, "m64.onnx", _say_64)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/INJECTED",))


def _say_64(m: dict) -> None:
    m["entries"] = [dict(m["entries"][0], resolution=64, entry="forward_64")]
    m["default_resolution"], m["policy"] = 64, {}


def _digest(d: Path) -> dict[str, str]:
    """Hash of every file under the workspace (inputs must come out unchanged)."""
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and "out" not in p.relative_to(d).parts[:1]:
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_cli(args, timeout=600):
    return run_module(*args, timeout=timeout)


# (id, argv from the workspace, expected rc, substring of the error line, paths that must not exist)
OUT = "out"          # rows write (or rather, must not write) under ws/out/
CASES = [
    # 1: an output equal to an input, in every CLI that writes
    ("convert-out-is-ckpt", lambda w: ["converters.executorch", "--ckpt", w["ckpt"], "--out", w["ckpt"],
                                       "--resolutions", "96"], 2, "is the input", []),
    ("convert-out-is-ckpt-via-symlink", lambda w: ["converters.tflite", "--ckpt", w["ckpt"], "--out",
                                                   w["dir"] / "link.pt"], 2, "is the input", []),
    ("evaluate-json-is-ckpt", lambda w: ["training.evaluate", "--ckpt", w["ckpt"], "--data", w["data"],
                                         "--json", w["ckpt"]], 2, "is the input", []),
    ("train-out-is-finished-ckpt", lambda w: ["training.train", "--data", w["data"], "--out", w["ckpt"],
                                              "--epochs", "1", "--workers", "0"], 2, "pass --force", []),
    ("verify-json-is-ckpt", lambda w: ["converters.verify", w["pte"], "--ckpt", w["ckpt"], "--json",
                                       w["ckpt"]], 2, "is the input", []),
    ("demo-json-is-artifact", lambda w: ["rsnet_edge.demo", w["pte"], "--json", w["pte"]], 2, "is the input", []),
    # 9: outputs that are folders / files / in an impossible folder, refused before any work
    ("convert-out-is-dir", lambda w: ["converters.executorch", "--ckpt", w["ckpt"], "--out", w["a_dir"]],
     2, "existing folder", []),
    ("convert-out-under-file", lambda w: ["converters.executorch", "--ckpt", w["ckpt"], "--out",
                                          w["a_file"] / "x.pte"], 2, "a_file.txt is a file", []),
    ("train-out-is-dir", lambda w: ["training.train", "--data", w["data"], "--out", w["a_dir"]],
     2, "existing folder", []),
    ("evaluate-json-is-dir", lambda w: ["training.evaluate", "--ckpt", w["ckpt"], "--data", w["data"],
                                        "--json", w["a_dir"]], 2, "existing folder", []),
    ("demo-json-under-file", lambda w: ["rsnet_edge.demo", w["pte"], "--json", w["a_file"] / "s.json"],
     2, "a_file.txt is a file", []),
    ("verify-json-is-dir", lambda w: ["converters.verify", w["pte"], "--ckpt", w["ckpt"], "--json", w["a_dir"]],
     2, "existing folder", []),
    ("compare-out-dir-is-file", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                           "--out-dir", w["a_file"]], 2, "is an existing file", []),
    ("compare-bad-flag-no-skeleton", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                                "--out-dir", w["dir"] / OUT / "cmp", "--bogus", "1"],
     2, "--bogus", [f"{OUT}/cmp"]),
    ("compare-resolution-7-no-skeleton", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                                    "--resolutions", "64", "7", "--out-dir", w["dir"] / OUT / "cmp7"],
     2, "7 is outside 16..1024", [f"{OUT}/cmp7"]),
    ("compare-jobs-0-no-skeleton", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                              "--jobs", "0", "--out-dir", w["dir"] / OUT / "cmpj"],
     2, "--jobs must be >= 1, got 0", [f"{OUT}/cmpj"]),
    ("train-eval-every-negative", lambda w: ["training.train", "--data", w["data"], "--out", w["dir"] / OUT / "e.pt",
                                             "--eval-every", "-1"], 2, "--eval-every must be >= 0", [f"{OUT}/e.pt"]),
    ("bench-out-dir-is-file", lambda w: ["bench.run_device", w["pte"], "--out-dir", w["a_file"],
                                         "--no-baselines"], 2, "is an existing file", []),
    # 10: one rule for resolutions (integer in 16..1024)
    ("convert-resolution-huge", lambda w: ["converters.executorch", "--ckpt", w["ckpt"], "--out",
                                           w["dir"] / OUT / "h.pte", "--resolutions", "100000"],
     2, "100000 is outside 16..1024", [f"{OUT}/h.pte"]),
    ("convert-resolution-7", lambda w: ["converters.tflite", "--ckpt", w["ckpt"], "--out",
                                        w["dir"] / OUT / "s.tflite", "--resolutions", "96", "7"],
     2, "7 is outside 16..1024", [f"{OUT}/s.tflite"]),
    ("train-resolution-7", lambda w: ["training.train", "--data", w["data"], "--out", w["dir"] / OUT / "t.pt",
                                      "--resolutions", "64", "7"], 2, "7 is outside 16..1024", [f"{OUT}/t.pt"]),
    ("predict-resolution-huge", lambda w: ["rsnet_edge.predict", w["ckpt"], w["img"], "--resolution", "100000"],
     2, "100000 is outside 16..1024", []),
    ("evaluate-resolution-huge", lambda w: ["training.evaluate", "--ckpt", w["ckpt"], "--data", w["data"],
                                            "--resolutions", "100000"], 2, "100000 is outside 16..1024", []),
    # 9: a truncated artifact
    ("verify-truncated", lambda w: ["converters.verify", w["trunc_pte"], "--ckpt", w["ckpt"]], 2, "trunc.pte", []),
    ("verify-truncated-no-sidecar", lambda w: ["converters.verify", w["trunc_bare"], "--ckpt", w["ckpt"]],
     2, "trunc.pte", []),
    # 14: images checked (and named) before the model loads; folders expand
    ("predict-missing-image-first", lambda w: ["rsnet_edge.predict", w["trunc_pte"], w["dir"] / "nope.jpg"],
     2, "nope.jpg does not exist", []),
    ("predict-not-an-image", lambda w: ["rsnet_edge.predict", w["ckpt"], w["not_image"]], 2, "not_image.jpg", []),
    ("predict-empty-folder", lambda w: ["rsnet_edge.predict", w["ckpt"], w["a_dir"]], 2, "no images in folder", []),
    # 5: decompression bombs are refused, naming the file
    ("predict-bomb", lambda w: ["rsnet_edge.predict", w["ckpt"], w["bomb"]], 2, "bomb.png: image too large", []),
    # 8: unknown manifest keys: one line naming key and place (top level, input, entry)
    ("manifest-unknown-top", lambda w: ["rsnet_edge.predict", w["unk_top"], w["img"]], 2,
     "manifest has unknown key 'colour'", []),
    ("manifest-unknown-input", lambda w: ["rsnet_edge.predict", w["unk_input"], w["img"]], 2,
     "manifest input has unknown key 'foo'", []),
    ("manifest-unknown-entry", lambda w: ["rsnet_edge.predict", w["unk_entry"], w["img"]], 2,
     "manifest entries[0] has unknown key 'latency'", []),
    # 6: class_names count vs classifier outputs, at load and at conversion
    ("predict-class-names-mismatch", lambda w: ["rsnet_edge.predict", w["bad_names"], w["img"]], 2,
     "class_names has 3 names but the classifier has 4 outputs", []),
    ("convert-class-names-mismatch", lambda w: ["converters.executorch", "--ckpt", w["bad_names"], "--out",
                                                w["dir"] / OUT / "bn.pte", *PLAIN], 2, "class_names has 3 names",
     [f"{OUT}/bn.pte", f"{OUT}/bn.pte.manifest.json"]),
    # 2 and 4: adb remote dir validated; a truncated artifact is refused before any push
    ("adb-remote-dir-injection", lambda w: ["bench.run_device", w["pte"], "--adb", "--runner", w["runner"],
                                            "--remote-dir", "/x;touch /tmp/INJECTED;", "--out-dir",
                                            w["dir"] / OUT / "adb"], 2, "--remote-dir", [f"{OUT}/adb"]),
    ("adb-truncated-artifact", lambda w: ["bench.run_device", w["trunc_pte"], "--adb", "--runner", w["runner"],
                                          "--out-dir", w["dir"] / OUT / "adb2"], 2, "sha256", [f"{OUT}/adb2"]),
    # 3: non-finite training stops naming the step; the previous checkpoint stays as it was
    ("train-lr-nan", lambda w: ["training.train", "--data", w["data"], "--out", w["ckpt"], "--force",
                                "--arch", "mobilenet_v2", "--width-mult", "0.35", "--resolutions", "64", "48",
                                "--epochs", "1", "--batch-size", "4", "--workers", "0", "--lr", "nan",
                                "--no-progress", "--log", w["dir"] / OUT / "nan.log"], 2, "at step", []),
    # issue 14: training.train --init: a missing file, an unreadable one, not a state dict, the wrong
    # architecture (a state dict, or an rsnet-edge checkpoint), the wrong width
    *[(f"train-init-{tag}", (lambda key, extra: lambda w: [
        "training.train", "--data", w["data"], "--out", w["dir"] / OUT / "init.pt", "--width-mult", "0.35",
        "--resolutions", "64", "48", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-progress",
        "--init", w[key] if key in w else w["dir"] / key, *extra])(key, extra), 2, needle, [f"{OUT}/init.pt"])
       for tag, key, extra, needle in [
           ("missing", "no_such_init.pth", [], "no_such_init.pth: no such file"),
           ("unreadable", "init_text", [], "init_text.pth is not a readable state dict or checkpoint"),
           ("not-a-state-dict", "init_list", [], "init_list.pth is neither a state dict"),
           ("wrong-arch", "init_mbv2", ["--arch", "resnet18"], "does not fit a resnet18 RS-Net"),
           ("wrong-width", "init_mbv2", ["--width-mult", "0.5"], "does not fit a mobilenet_v2 RS-Net"),
           ("rsnet-ckpt-other-arch", "ckpt", ["--arch", "resnet18"], "holds a mobilenet_v2 RS-Net; this run trains resnet18"),
       ]],
    # issue 18: training.recalibrate (output checked first; a model that cannot be recalibrated on
    # this data), training.train --teacher, training.compare --from
    *[(f"recalibrate-{tag}", (lambda extra: lambda w: [
        "training.recalibrate", "--data", w["data"], "--resolutions", "64", "48", "--workers", "0",
        "--no-progress", *extra(w)])(extra), 2, needle, [f"{OUT}/rc.pt"])
      for tag, extra, needle in [
          ("out-is-init", lambda w: ["--init", w["ckpt"], "--out", w["ckpt"], "--force"], "is the input"),
          ("out-exists", lambda w: ["--init", w["ckpt"], "--out", w["a_file"]], "already exists; pass --force"),
          ("init-missing", lambda w: ["--init", w["dir"] / "no_such.pt", "--out", w["dir"] / OUT / "rc.pt"],
           "no_such.pt: no such file"),
          ("init-unreadable", lambda w: ["--init", w["init_text"], "--out", w["dir"] / OUT / "rc.pt"],
           "init_text.pth is not a readable state dict or checkpoint"),
          ("other-classes", lambda w: ["--init", w["ckpt"], "--out", w["dir"] / OUT / "rc.pt"],
           "predicts other classes (4) than"),
          ("classifier-size", lambda w: ["--init", w["init_mbv2_5cls"], "--width-mult", "0.35", "--out",
                                         w["dir"] / OUT / "rc.pt"], "has a classifier of 5 classes"),
          ("wrong-width", lambda w: ["--init", w["init_mbv2"], "--width-mult", "0.5", "--out", w["dir"] / OUT / "rc.pt"],
           "does not fit a mobilenet_v2 RS-Net"),
          ("width-contradicts-ckpt", lambda w: ["--init", w["ckpt"], "--width-mult", "0.5", "--out",
                                                w["dir"] / OUT / "rc.pt"], "--width-mult 0.5 contradicts it"),
          ("images-0", lambda w: ["--init", w["init_mbv2"], "--width-mult", "0.35", "--images", "0", "--out",
                                  w["dir"] / OUT / "rc.pt"], "--images and --batch-size must be >= 1"),
          ("resolution-7", lambda w: ["--init", w["init_mbv2"], "--width-mult", "0.35", "--resolutions", "64", "7",
                                      "--out", w["dir"] / OUT / "rc.pt"], "7 is outside 16..1024"),
      ]],
    *[(f"train-teacher-{tag}", (lambda extra: lambda w: [
        "training.train", "--data", w["data"], "--out", w["dir"] / OUT / "tea.pt", "--width-mult", "0.35",
        "--resolutions", "64", "48", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-progress",
        *extra(w)])(extra), 2, needle, [f"{OUT}/tea.pt"])
      for tag, extra, needle in [
          ("missing", lambda w: ["--teacher", w["dir"] / "no_such_teacher.pt"], "no_such_teacher.pt: no such file"),
          ("unreadable", lambda w: ["--teacher", w["init_text"]], "--teacher " ),
          ("other-classes", lambda w: ["--teacher", w["ckpt"]], "predicts other classes (4: "),
          ("wrong-arch", lambda w: ["--teacher", w["init_mbv2"], "--arch", "resnet18"], "does not fit a resnet18"),
          ("other-classifier", lambda w: ["--teacher", w["init_mbv2_5cls"]], "with 2 classes: classifier.1.weight"),
          ("resolution-without-teacher", lambda w: ["--teacher-resolution", "64"], "--teacher-resolution is for --teacher"),
          ("multi-crop", lambda w: ["--teacher", w["init_mbv2"], "--multi-crop"], "not with --multi-crop"),
          ("weight-negative", lambda w: ["--teacher", w["init_mbv2"], "--teacher-weight", "-1"],
           "--teacher-weight must be >= 0"),
          ("out-is-teacher", lambda w: ["--teacher", w["init_mbv2"], "--out", w["init_mbv2"], "--force"], "is the input"),
      ]],
    ("compare-from-missing-no-skeleton", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                                    "--from", w["dir"] / "no_such_model.pt", "--out-dir",
                                                    w["dir"] / OUT / "cmpf"], 2, "no_such_model.pt: no such file",
     [f"{OUT}/cmpf"]),
    ("compare-from-other-classes-no-skeleton", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                                          "--from", w["ckpt"], "--out-dir", w["dir"] / OUT / "cmpc"],
     2, "predicts other classes (4) than", [f"{OUT}/cmpc"]),
    ("compare-from-with-ablation", lambda w: ["training.compare", "--data", w["data"], "--epochs", "1",
                                              "--from", "inet", "--ablation", "--out-dir", w["dir"] / OUT / "cmpa"],
     2, "not with --ablation", [f"{OUT}/cmpa"]),
    # issue 18: the architecture registry. An unknown name, a timm model with a normalisation that
    # cannot be made switchable (named with its class), timm missing (training and a timm
    # checkpoint), and a dropout the architecture does not have
    *[(f"arch-{tag}", (lambda pre, extra: lambda w: [
        *pre, "training.train", "--data", w["data"], "--out", w["dir"] / OUT / "arch.pt", "--resolutions", "64",
        "48", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-progress", *extra])(pre, extra),
       2, needle, [f"{OUT}/arch.pt", f"{OUT}/arch.pt.log.jsonl"])
      for tag, pre, extra, needle in [
          ("unknown", [], ["--arch", "vgg16"], "--arch: unknown architecture 'vgg16'"),
          ("unsupported-norm", [], ["--arch", "timm:convnext_atto"],
           "timm:convnext_atto: module stem.1 is a LayerNorm2d (timm.layers.norm.LayerNorm2d)"),
          ("timm-missing", ["tests.fakes.without", "timm"], ["--arch", "timm:mobilenetv3_large_100"],
           "timm:mobilenetv3_large_100 needs timm, an optional extra: pip install 'rsnet-edge[timm]'"),
          ("unknown-timm-model", [], ["--arch", "timm:no_such_net"], "timm has no model 'no_such_net'"),
          ("dropout-without-dropout", [], ["--arch", "densenet121", "--dropout", "0.1"],
           "--dropout: densenet121 has no classifier dropout argument"),
      ]],
    ("arch-timm-ckpt-timm-missing", lambda w: ["tests.fakes.without", "timm", "converters.onnx", "--ckpt",
                                               w["timm_ckpt"], "--out", w["dir"] / OUT / "t.onnx"],
     2, "timm:lcnet_100 needs timm", [f"{OUT}/t.onnx", f"{OUT}/t.onnx.manifest.json"]),
    ("archs-list-unknown", lambda w: ["rsnet_edge.archs", "--arch", "resnet18", "vgg16"], 2,
     "unknown architecture 'vgg16'", []),
    # 15: --latency-budget needs a profile
    ("predict-budget-without-profile", lambda w: ["rsnet_edge.predict", w["ckpt"], w["img"], "--latency-budget",
                                                  "5"], 2, "--latency-budget needs --profile", []),
    # 16: int8 calibration data (issue 11): missing, not a folder, empty, unreadable, absent, misused
    *[(f"int8-{name}", lambda w, extra=extra: ["converters.executorch", "--ckpt", w["ckpt"], "--out",
                                               w["dir"] / OUT / "q.pte", *extra(w)], 2, msg, [f"{OUT}/q.pte"])
      for name, extra, msg in [
          ("calib-missing", lambda w: ["--dtype", "int8", "--calib", w["dir"] / "nope"], "nope does not exist"),
          ("calib-is-file", lambda w: ["--dtype", "int8", "--calib", w["a_file"]], "a_file.txt is not a folder"),
          ("calib-no-images", lambda w: ["--dtype", "int8", "--calib", w["a_dir"]], "a_folder holds no images"),
          ("calib-unreadable", lambda w: ["--dtype", "int8", "--calib", w["bad_calib"].parent],
           "bad_calib can be read"),
          ("calib-images-zero", lambda w: ["--dtype", "int8", "--calib", w["data"] / "train",
                                           "--calib-images", "0"], "--calib-images must be at least 1"),
          ("no-calib", lambda w: ["--dtype", "int8"], "needs --calib DIR"),
          ("calib-without-int8", lambda w: ["--calib", w["data"] / "train"], "--calib is for --dtype int8"),
          ("affine", lambda w: ["--dtype", "int8", "--weights", "affine", "--calib", w["data"] / "train"],
           "--dtype int8 takes --weights shared or folded"),
      ]],
    # LiteRT int8: the same calibration checks (converters.quantize), before anything is written
    *[(f"tflite-int8-{name}", lambda w, extra=extra: ["converters.tflite", "--ckpt", w["ckpt"], "--out",
                                                      w["dir"] / OUT / "q.tflite", *extra(w)], 2, msg,
       [f"{OUT}/q.tflite"])
      for name, extra, msg in [
          ("calib-missing", lambda w: ["--dtype", "int8", "--calib", w["dir"] / "nope"], "nope does not exist"),
          ("calib-no-images", lambda w: ["--dtype", "int8", "--calib", w["a_dir"]], "a_folder holds no images"),
          ("calib-unreadable", lambda w: ["--dtype", "int8", "--calib", w["bad_calib"].parent],
           "bad_calib can be read"),
          ("no-calib", lambda w: ["--dtype", "int8"], "needs --calib DIR"),
          ("calib-without-int8", lambda w: ["--calib", w["data"] / "train"], "--calib is for --dtype int8"),
      ]],
    # issue 21 item 5: one rule for every number that reaches a policy; --write changes nothing
    *[(f"profile-write-{tag}-latency", (lambda key: lambda w: [
        "rsnet_edge.profile", w["pte"], "--profile", w[key], "--write"])(f"profile_{tag}"), 2,
       f"bench_{tag}.json: 'v.pte' profile['96']['p90_ms'] must be a non-negative number, got {shown}", [])
      for tag, shown in (("nan", "nan"), ("negative", "-2.0"), ("infinite", "inf"))],
    ("predict-budget-nan-profile", lambda w: ["rsnet_edge.predict", w["ckpt"], w["img"], "--latency-budget", "5",
                                              "--profile", w["profile_nan"]], 2,
     "bench_nan.json: 'v.pte' profile['96']['p90_ms'] must be a non-negative number, got nan", []),
    # item 7: the rsfold CLI checks its output against the artifact AND its sidecar manifest
    ("rsfold-out-is-own-manifest", lambda w: ["rsnet_edge.rsfold", w["rsfold"], sidecar_path(w["rsfold"])], 2,
     "v.pte.rsfold.manifest.json is the input", []),
    ("rsfold-missing-input", lambda w: ["rsnet_edge.rsfold", w["dir"] / "nope.pte.rsfold", w["dir"] / OUT / "n.pte"],
     2, "nope.pte.rsfold does not exist", [f"{OUT}/n.pte"]),
    # item 8: every JSON reader bounded in size, depth and digits (one line, exit 2)
    ("predict-deep-sidecar", lambda w: ["rsnet_edge.predict", w["deep_side"], w["img"]], 2,
     "deep.pte.manifest.json is nested deeper than 64 levels", []),
    ("predict-5000-digit-sidecar", lambda w: ["rsnet_edge.predict", w["digits_side"], w["img"]], 2,
     "digits.pte.manifest.json has a number longer than 100 digits", []),
    ("profile-deep-json", lambda w: ["rsnet_edge.profile", w["pte"], "--profile", w["profile_deep"]], 2,
     "bench_deep.json is nested deeper than 64 levels", []),
    ("demo-deep-trace", lambda w: ["rsnet_edge.demo", w["pte"], "--trace", w["trace_deep"]], 2,
     "trace_deep.json is nested deeper than 64 levels", []),
    ("predict-deep-rsfold-header", lambda w: ["rsnet_edge.predict", w["deep_rsfold"], w["img"]], 2,
     "deep.pte.rsfold has a corrupt header", []),
    ("rsfold-cli-deep-header", lambda w: ["rsnet_edge.rsfold", w["deep_rsfold"], w["dir"] / OUT / "d.pte"], 2,
     "deep.pte.rsfold has a corrupt header", [f"{OUT}/d.pte"]),
    # item 9 (and 15): a sidecar that is a folder, or a link to /dev/zero (read with a limit)
    ("predict-sidecar-is-folder", lambda w: ["rsnet_edge.predict", w["dir_side"], w["img"]], 2,
     "dirside.pte.manifest.json is a folder", []),
    ("predict-sidecar-dev-zero", lambda w: ["rsnet_edge.predict", w["zero_side"], w["img"]], 2,
     "zero.pte.manifest.json is not a regular file", []),
    # item 11: an ONNX model whose input shape is not what its manifest says: one line, no traceback
    ("predict-onnx-shape-mismatch", lambda w: ["rsnet_edge.predict", w["onnx64"], w["img"], "--no-verify"], 2,
     "m64.onnx takes input [1, 3, 96, 96], not [1, 3, 64, 64]", []),
    # item 15: --init a folder, weights with NaN (no lr blamed, no log left), a refusal's whole reason
    *[(f"train-init-{tag}", (lambda key: lambda w: [
        "training.train", "--data", w["data"], "--out", w["dir"] / OUT / "init.pt", "--width-mult", "0.35",
        "--resolutions", "64", "48", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-progress",
        "--init", w[key]])(key), 2, needle, [f"{OUT}/init.pt", f"{OUT}/init.pt.log.jsonl"])
      for tag, key, needle in [
          ("folder", "a_dir", "a_folder is a folder; give the state dict or checkpoint file"),
          ("nan-weights", "init_nan", "tensor 'features.0.0.weight' holds NaN or infinite values"),
          ("pickle-reason-whole", "init_evil",
           "refused it: Trying to load unsupported GLOBAL posix.system whose module posix is blocked."),
      ]],
    ("bench-threads-negative", lambda w: ["bench.run_device", w["pte"], "--threads", "-1", "--out-dir",
                                          w["dir"] / OUT / "bt"], 2, "--threads must be >= 1, got -1", [f"{OUT}/bt"]),
]


@pytest.mark.parametrize("name,argv,rc,needle,absent", CASES, ids=[c[0] for c in CASES])
def test_cli_refuses(ws, name, argv, rc, needle, absent):
    if name == "convert-out-is-ckpt-via-symlink":
        link = ws["dir"] / "link.pt"
        if not link.exists():
            link.symlink_to(ws["ckpt"])
    before = _digest(ws["dir"])
    t0 = time.time()
    r = run_cli(argv(ws))
    assert r.returncode == rc, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    line = error_line(r.stderr)
    assert needle in line, line
    assert _digest(ws["dir"]) == before, "an input changed"
    for rel in absent:
        assert not (ws["dir"] / rel).exists(), rel
    assert not Path("/tmp/INJECTED").exists()
    leftovers = [p for p in ws["dir"].rglob(".*tmp-*")]
    assert not leftovers, leftovers
    if name.startswith(("convert-out", "evaluate-json", "train-out", "predict-missing")):
        assert time.time() - t0 < 120           # refused up front, not after the work


# ------------------------------------------------------------------------------- Ctrl-C (11)
@pytest.mark.parametrize("which", ["convert", "train", "while-importing"])
def test_ctrl_c_one_line_exit_130_nothing_half_written(ws, tmp_path, which):
    wait = 8                                        # imports done, model built, work under way
    if which == "while-importing":                  # torch & the backends still being imported
        out = tmp_path / "i.tflite"
        argv = ["converters.tflite", "--ckpt", ws["ckpt"], "--out", out]
        wait = 1.0
    elif which == "convert":
        out = tmp_path / "c.tflite"
        # seven entry points: lowering lasts well past the 8 s below even on an idle machine
        argv = ["converters.tflite", "--ckpt", ws["ckpt"], "--out", out, *PLAIN,
                "--resolutions", "96", "80", "64", "56", "48", "40", "32"]
    else:
        out = tmp_path / "t.pt"
        argv = ["training.train", "--data", ws["data"], "--out", out, "--width-mult", "0.35",
                "--resolutions", "64", "48", "--epochs", "50", "--batch-size", "4", "--workers", "0",
                "--no-progress"]
    p = subprocess.Popen([sys.executable, "-m", *map(str, argv)], cwd=ROOT, env=subprocess_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(wait)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-3000:]
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith("epoch")]
    assert lines[-1] == "interrupted" and "Traceback" not in err, err[-3000:]
    assert not [q for q in tmp_path.iterdir() if ".tmp-" in q.name]
    if which != "train":
        assert not out.exists() and not sidecar_path(out).exists()
    elif out.exists():              # an epoch that finished before Ctrl-C: a whole, resumable checkpoint
        import torch
        ck = torch.load(out, weights_only=True)
        assert ck["train_state"]["finished"] is False


def test_stale_temp_files_of_a_killed_run_are_removed(ws, tmp_path):
    """A SIGKILLed LiteRT conversion leaves ``.<name>.tmp-<pid>.tflite(.raw)``; the next run of the
    same output removes them (a live concurrent writer's files are left alone)."""
    dead = 4_000_000                               # above pid_max: never a live process
    stale = [tmp_path / f".m.tmp-{dead}.tflite", tmp_path / f".m.tmp-{dead}.tflite.raw",
             tmp_path / f".m.tflite.manifest.json.tmp-{dead}"]
    live = tmp_path / f".m.tmp-{os.getpid()}.tflite"
    for p in stale + [live]:
        p.write_bytes(b"half")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    r = run_cli(["converters.tflite", "--ckpt", broken, "--out", tmp_path / "m.tflite", *PLAIN])
    assert r.returncode == 2 and "broken.pt" in error_line(r.stderr)   # refused after the clean-up
    assert not any(p.exists() for p in stale) and live.exists()


# ----------------------------------------------------------------------------- demo (7)
@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_demo_short_traces(ws, steps):
    from rsnet_edge.demo import default_trace
    tr = default_trace(steps)
    bat = [s["battery"] for s in tr]
    plain = {1: [100.0], 2: [100.0, 0.0], 3: [100.0, 50.0, 0.0]}   # too short to charge: a plain drain
    assert len(tr) == steps and bat[0] == 100.0
    if steps in plain:
        assert bat == plain[steps] and not any(s["charging"] for s in tr)
    else:                                                   # 100 -> 0, falling whenever not charging
        assert bat[-1] == 0.0 and all(y <= x for x, y, s, t in zip(bat, bat[1:], tr, tr[1:])
                                      if not (s["charging"] or t["charging"]))
    if steps == 1:
        r = run_cli(["rsnet_edge.demo", ws["ckpt"], "--steps", "1"])
        assert r.returncode == 0, r.stderr[-2000:]


# ------------------------------------------------------------------------ image decoding (5)
def _png16(tmp: Path, value: int) -> Path:
    p = tmp / f"gray16_{value}.png"
    Image.fromarray(np.full((8, 8), value, dtype=np.uint16)).save(p)
    return p


def _exif_rotated(tmp: Path) -> Path:
    p = tmp / "exif.jpg"
    im = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6                                # orientation: rotate 90 CW to display
    im.save(p, exif=exif)
    return p


def _palette_transparent(tmp: Path) -> Path:
    p = tmp / "pal.png"
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    im.info["transparency"] = 0
    im.save(p, transparency=0)
    return p


IMAGE_CASES = [   # (id, make(tmp) -> source, check(rgb PIL image))
    ("16-bit-gray-mid", lambda t: _png16(t, 32896), lambda im: abs(np.asarray(im).mean() - 128) <= 1),
    ("16-bit-gray-dark", lambda t: _png16(t, 1000), lambda im: np.asarray(im).max() <= 5),
    ("exif-orientation", _exif_rotated, lambda im: im.size == (20, 40)),
    ("palette-transparency-on-white", _palette_transparent, lambda im: np.asarray(im).min() == 255),
    ("rgba-on-white", lambda t: Image.new("RGBA", (4, 4), (0, 0, 0, 0)), lambda im: np.asarray(im).min() == 255),
    ("la", lambda t: Image.new("LA", (4, 4), (0, 255)), lambda im: np.asarray(im).max() == 0),
    ("cmyk", lambda t: Image.new("CMYK", (4, 4), (0, 255, 255, 0)),
     lambda im: tuple(np.asarray(im)[0, 0]) == (255, 0, 0)),
    ("numpy-hwc-uint8", lambda t: np.full((5, 6, 3), 7, np.uint8), lambda im: im.size == (6, 5)),
    ("numpy-gray-uint16", lambda t: np.full((5, 6), 65535, np.uint16), lambda im: np.asarray(im).min() == 255),
]


@pytest.mark.parametrize("name,make,check", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_one_decoder_handles_every_mode(tmp_path, name, make, check):
    im = P.load_rgb(make(tmp_path))
    assert im.mode == "RGB" and check(im), name


BAD_IMAGES = [   # (id, make(ws, tmp) -> source, substring naming it)
    ("bomb", lambda w, t: w["bomb"], "bomb.png: image too large"),
    ("not-an-image", lambda w, t: w["not_image"], "not_image.jpg is not an image"),
    ("missing", lambda w, t: t / "gone.png", "gone.png does not exist"),
    ("truncated", lambda w, t: _truncated_png(t), "cut.png"),
    ("folder", lambda w, t: t, "is a folder"),
    ("chw-array", lambda w, t: np.zeros((3, 8, 8), np.uint8), "channels-first"),
    ("float-array", lambda w, t: np.zeros((8, 8, 3), np.float32), "dtype float32"),
]


def _truncated_png(t: Path) -> Path:
    p = t / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:300])
    return p


@pytest.mark.parametrize("name,make,needle", BAD_IMAGES, ids=[c[0] for c in BAD_IMAGES])
def test_bad_images_one_line_naming_the_file(ws, tmp_path, name, make, needle):
    with pytest.raises(P.ImageError) as ei:
        P.load_rgb(make(ws, tmp_path))
    assert needle in str(ei.value) and "\n" not in str(ei.value)


# ------------------------------------------------------------------- runtime / library API
def test_predict_numpy_frames_and_folders(ws):
    clf = load(ws["ckpt"])
    img = P.load_rgb(ws["img"])
    frame = np.asarray(img)                          # HWC uint8, as a camera delivers
    by_path, by_array = clf.predict(ws["img"], topk=2), clf.predict(frame, topk=2)
    assert [n for n, _ in by_path[0]] == [n for n, _ in by_array[0]]
    assert len(clf.predict(np.stack([frame, frame]))) == 2
    r = run_cli(["rsnet_edge.predict", ws["ckpt"], ws["img_dir"], "--json"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(json.loads(r.stdout)["predictions"]) == 3


def test_set_resolution_on_a_classifier(ws):
    clf = load(ws["ckpt"])
    assert rsnet_edge.set_resolution(clf, 64) == 64 and clf.resolution == 64
    with pytest.raises(ValueError, match="outside 16..1024"):
        clf.set_resolution(7)


MANIFEST_EDITS = [   # (id, edit, substring)
    ("top", lambda m: m.update(colour="RGB"), "manifest has unknown key 'colour'"),
    ("input", lambda m: m["input"].update(foo=1), "manifest input has unknown key 'foo'"),
    ("entry", lambda m: m["entries"][1].update(p90=1), "manifest entries[1] has unknown key 'p90'"),
    ("crop-type", lambda m: m["input"].update(crop_pct="big"), "crop_pct"),
    ("names-vs-outputs", lambda m: m.update(class_names=m["class_names"][:2]), "class_names has 2 names"),
    ("resolution-huge", lambda m: m["entries"][0].update(resolution=100000), "outside 16..1024"),
    ("bad-policy", lambda m: m.update(policy={"resolutions": [1]}), "policy"),
]


@pytest.mark.parametrize("name,edit,needle", MANIFEST_EDITS, ids=[c[0] for c in MANIFEST_EDITS])
def test_load_raises_runtime_load_error_never_type_error(ws, tmp_path, name, edit, needle):
    p = _manifest_variant(ws["pte"], tmp_path, f"m_{name}.pte", edit)
    with pytest.raises(RuntimeLoadError) as ei:
        load(p)
    assert needle in str(ei.value)
    d = json.loads(sidecar_path(ws["pte"]).read_text())
    edit(d)
    with pytest.raises(ManifestError):
        rsnet_edge.Manifest.from_dict(d)


def test_long_error_lines_are_not_cut(tmp_path):
    deep = tmp_path / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    bad = deep / "broken.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RuntimeLoadError) as ei:
        load(bad)
    msg = str(ei.value)
    assert len(msg) > 300 and str(bad) in msg and "(truncated or corrupt?)" in msg


# ----------------------------------------------------------------------------- policy (15)
POLICY_CALLS = [   # (id, kwargs, expected resolution or error substring)
    ("keyword-battery-only", {"battery_pct": 23}, 128),
    ("fraction-refused", {"battery_pct": 0.23}, "looks like a fraction"),
    ("one-percent-ok", {"battery_pct": 1}, 96),
    ("over-100", {"battery_pct": 101}, "0..100"),
]


@pytest.mark.parametrize("name,kw,want", POLICY_CALLS, ids=[c[0] for c in POLICY_CALLS])
def test_selector_inputs(name, kw, want):
    sel = Selector(default_policy([224, 192, 160, 128, 96]))
    if isinstance(want, str):
        with pytest.raises(PolicyError, match=want):
            sel.select(**kw)
    else:
        assert sel.select(**kw) == want


def test_policy_from_profile_cli_and_predict_budget(ws, tmp_path):
    art = A.copy_with_sidecar(ws["pte"], tmp_path, "v.pte")
    r = run_cli(["rsnet_edge.profile", art, "--profile", ws["profile"], "--write"])
    assert r.returncode == 0, r.stderr[-2000:]
    pol = json.loads(sidecar_path(art).read_text())["policy"]
    assert pol["battery_levels"][-1] == [0, 64] and pol["battery_levels"][0][1] == 96
    assert load(art).manifest.policy == pol                      # still loads (sha256 unchanged)
    r = run_cli(["rsnet_edge.predict", art, ws["img"], "--latency-budget", "6", "--profile", ws["profile"]])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resolution 64" in r.stdout and "latency budget 6 ms" in r.stdout


# --------------------------------------------------------------------------- structure (20)
def test_library_core_does_not_import_upper_layers():
    code = ("import sys, rsnet_edge, rsnet_edge.demo, rsnet_edge.predict, rsnet_edge.profile, rsnet_edge.cli\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'bench', 'converters'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    import ast
    for f in (ROOT / "rsnet_edge").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            assert not any(n.split(".")[0] in ("training", "bench", "converters") for n in names), (f, names)


# --------------------------------------------------------------------------- log noise (18)
def test_verify_is_quiet_by_default(ws, tmp_path):
    """converters.verify's LiteRT baseline conversion and runtime print their own logs (progress
    lines on stdout, absl/TF lines on stderr): hidden unless --verbose."""
    art = A.copy_with_sidecar(plain_artifact("tflite"), tmp_path, "q.tflite")
    ck = A.checkpoint()
    r = run_cli(["converters.verify", art, "--ckpt", ck])
    assert r.returncode == 0, r.stderr[-2000:]
    noise = ("LiteRT-Torch Convert", "I0000", "W0000", "INFO: Created TensorFlow Lite", "cpuinfo",
             "absl::InitializeLog", "_pytree.py")
    both = r.stdout + r.stderr
    assert not [n for n in noise if n in both], both[-3000:]
    assert r.stdout.strip().endswith("OK") and "size" in r.stdout


# ------------------------------------------------------------- bounded work on any input (21)
def test_thin_image_bounded_memory(ws, tmp_path):
    """Issue 21 item 1: a 20000 x 1 image (file or camera frame) would resize to 2.2M x 110 pixels
    (about 1 GB) before the 96 px crop; only the crop is computed now, from the same predict."""
    thin = tmp_path / "thin.png"
    Image.new("RGB", (20_000, 1), (200, 30, 30)).save(thin)
    code = ("import resource, sys, numpy as np\n"
            "from rsnet_edge.predict import main\n"
            "from rsnet_edge.runtime import load\n"
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
            "assert main([sys.argv[1], sys.argv[2]]) == 0           # warm: model, first inference\n"
            "base = peak()\n"
            "assert main([sys.argv[1], sys.argv[3]]) == 0\n"
            "clf = load(sys.argv[1])\n"
            "out = clf.predict(np.full((20_000, 1, 3), 90, np.uint8)) + clf.predict(np.zeros((1, 20_000), np.uint8))\n"
            "assert len(out) == 2\n"
            "print('GROWTH_MB', peak() - base)\n")
    r = subprocess.run([sys.executable, "-c", code, str(ws["ckpt"]), str(ws["img"]), str(thin)], cwd=ROOT,
                       env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    growth = int(r.stdout.split("GROWTH_MB")[-1])
    assert growth < 100, f"peak memory grew by {growth} MB for a 20000 x 1 image"


@pytest.mark.parametrize("size,r,crop_pct", [((3000, 2), 32, 0.875), ((2, 2500), 24, 1.0), ((700, 5), 40, 0.5),
                                             ((45, 301), 16, 0.9), ((301, 203), 32, 0.5)])
def test_crop_only_view_is_the_resized_crop(monkeypatch, size, r, crop_pct):
    """The crop-only path (forced here for small images) computes PIL's own filter for the crop's
    pixels: the same view as resizing the whole image then cropping, within one level of 255 (PIL
    may run its vertical pass first, rounding in the other order)."""
    from torchvision.transforms import functional as TF

    img = Image.fromarray(np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), np.uint8))
    want = np.asarray(TF.center_crop(TF.resize(img, int(round(r / crop_pct)), antialias=True), [r, r]), np.int16)
    monkeypatch.setattr(P, "MAX_RESIZED_PIXELS", 0)
    got = np.asarray(P.eval_crop(img, r, crop_pct), np.int16)
    assert got.shape == want.shape == (r, r, 3)
    assert np.abs(got - want).max() <= 1 and np.abs(got - want).mean() < 0.05


def test_calibration_keeps_views_not_photos(tmp_path):
    """Issue 21 item 10: int8 calibration decodes one image at a time and keeps its r x r views at the
    converted resolutions (exactly the eval views of the full image), never the decoded photo."""
    import torch

    from converters.quantize import calibration_batches, load_calibration

    for k in range(3):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (900, 1200, 3), np.uint8)).save(tmp_path / f"p{k}.jpg")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    cal = load_calibration(tmp_path, 8, resolutions=[64, 48], crop_pct=0.875)
    assert len(cal.images) == 3
    for im in cal.images:
        assert im.image is None and sorted(c.size for c in im.crops.values()) == [(48, 48), (64, 64)]
    for r in (64, 48):
        full = torch.stack([P.eval_view(P.load_rgb(f), r, mean, std) for f in cal.files])
        assert torch.equal(next(calibration_batches(cal, r, mean, std, 0.875)), full)
    big = tmp_path / "big"
    big.mkdir()
    Image.new("RGB", (4000, 2400), (10, 120, 200)).save(big / "b.jpg")
    kept = load_calibration(big, 1).images[0].image      # no resolutions: reduced to what 1024 px needs
    assert kept is not None and 1170 <= min(kept.size) < 2 * 1170


def test_failed_bench_write_keeps_the_previous_bench_json(tmp_path):
    """Issue 21 item 6: under a file size limit the write of bench.json fails; the previous file
    stays whole, no temp file is left, and the one error line names bench.json."""
    out = tmp_path / "bench"
    out.mkdir()
    old = json.dumps({"format": "rsnet-edge-device-profile", "previous": True})
    (out / "bench.json").write_text(old)
    code = ("import resource, sys\n"
            "from pathlib import Path\n"
            "from bench.report import write_outputs\n"
            "from rsnet_edge.cli import run\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            "profile = {'format': 'rsnet-edge-device-profile', 'device': {}, 'artifacts': [], 'pad': 'x' * 20000}\n"
            "sys.exit(run(lambda: write_outputs(Path(sys.argv[1]), [{'where': 'host'}], profile)))\n")
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"))
    assert r.returncode == 2, r.stderr[-3000:]
    line = error_line(r.stderr)
    assert str(out / "bench.json") in line and "File too large" in line, line
    assert (out / "bench.json").read_text() == old
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


LOAD_REFUSALS = [   # (id, ws key, substring): rsnet_edge.load raises RuntimeLoadError, never another type
    ("deep-sidecar", "deep_side", "nested deeper than 64 levels"),
    ("5000-digit-sidecar", "digits_side", "has a number longer than 100 digits"),
    ("sidecar-is-folder", "dir_side", "is a folder"),
    ("sidecar-is-dev-zero", "zero_side", "is not a regular file"),
    ("deep-rsfold-header", "deep_rsfold", "has a corrupt header"),
]


@pytest.mark.parametrize("name,key,needle", LOAD_REFUSALS, ids=[c[0] for c in LOAD_REFUSALS])
def test_load_raises_only_runtime_load_error(ws, name, key, needle):
    with pytest.raises(RuntimeLoadError) as ei:
        load(ws[key])
    assert needle in str(ei.value) and "\n" not in str(ei.value)


@pytest.mark.parametrize("value", [[], {"r": 96}, 96.0])
def test_default_resolution_of_another_type_is_a_manifest_error(ws, tmp_path, value):
    p = _manifest_variant(ws["pte"], tmp_path, "dr.pte", lambda m: m.update(default_resolution=value))
    with pytest.raises(RuntimeLoadError, match="default_resolution"):
        load(p)


def test_onnx_shape_mismatch_at_run_is_runtime_load_error(ws):
    clf = load(ws["onnx64"], verify=False)
    with pytest.raises(RuntimeLoadError, match=r"takes input \[1, 3, 96, 96\], not \[1, 3, 64, 64\]"):
        clf.predict(ws["img"])


def test_predict_is_quiet_by_default(ws, tmp_path):
    """Issue 21 item 15: ExecuTorch's cpuinfo lines (written when the first method loads) stay hidden
    unless --verbose."""
    r = run_cli(["rsnet_edge.predict", ws["pte"], ws["img"]])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cpuinfo" not in r.stdout + r.stderr and not r.stderr.strip(), r.stderr[-2000:]
