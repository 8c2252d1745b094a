"""The whole chain through the real CLIs: built-in data -> train a few steps -> convert to ExecuTorch and
LiteRT -> verify -> predict with the artifacts, which agree with the checkpoint (computed without the
runtime: helpers.hand_probabilities)."""

import json

import numpy as np
import pytest

import rsnet_edge
from helpers import hand_probabilities, run_module

RS = ["64", "48", "32"]


def _run(*args):
    return run_module(*args, check=True).stdout


def test_train_convert_verify_predict(tiny_data, tmp_path):
    pytest.importorskip("executorch")
    pytest.importorskip("ai_edge_litert")
    ckpt = tmp_path / "rs.pt"
    _run("training.train", "--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", tiny_data,
         "--resolutions", *RS, "--epochs", "8", "--batch-size", "4", "--workers", "0", "--out", ckpt,
         "--no-progress")
    images = sorted((tiny_data / "val").rglob("*.jpg"))
    # the reference: PIL views with the checkpoint's mean/std/crop_pct through its torch model, not
    # rsnet_edge.load(ckpt).predict (the same Classifier.preprocess as the artifacts)
    from rsnet_edge.checkpoint import load_checkpoint
    names = load_checkpoint(ckpt)["class_names"]
    p_want = hand_probabilities(ckpt, images, 48)
    want = [names[i] for i in p_want.argmax(1)]
    # 64 steps: enough for the BN running statistics to carry the input to the logits (after 4 steps
    # every image got the same probabilities, and any input, right or wrong, agreed with the reference)
    assert np.abs(p_want - p_want.mean(0)).max() > 0.01, p_want
    # the documented default: --weights shared, --out beside the checkpoint (compact fold-at-load
    # forms for ExecuTorch and LiteRT, an .onnx that ONNX Runtime folds itself)
    for suffix, module in ((".pte.rsfold", "converters.executorch"), (".tflite.rsfold", "converters.tflite"),
                           (".onnx", "converters.onnx")):
        art = tmp_path / f"rs{suffix}"
        _run(module, "--ckpt", ckpt)
        assert art.is_file(), suffix
        assert "OK" in _run("converters.verify", art, "--ckpt", ckpt, "--images", tiny_data / "val")
        out = json.loads(_run("rsnet_edge.predict", art, *images, "--resolution", "48", "--topk", "1", "--json"))
        assert out["resolution"] == 48
        cli_top1 = [out["predictions"][str(p)][0][0] for p in images]
        assert cli_top1 == want, suffix
        clf = rsnet_edge.load(art)
        assert clf.resolutions == [64, 48, 32]
        preds = clf.predict(images, resolution=48, topk=1)
        assert [p[0][0] for p in preds] == want, suffix
        np.testing.assert_allclose(clf.predict_proba(images, 48), p_want, atol=2e-4, err_msg=suffix)
