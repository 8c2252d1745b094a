"""Checkpoint round trip, refusal of bad checkpoints, and the train -> evaluate CLIs end to end."""

import json
from pathlib import Path

import pytest
import torch

from rsnet_edge.checkpoint import (CheckpointError, load_checkpoint, load_model, manifest_for,
                                   model_from_checkpoint, save_checkpoint, versions)
from rsnet_edge.manifest import Manifest
from rsnet_edge.models import create_model
from helpers import run_module
from training.synthetic import generate

RS = [64, 48, 32]


def _ckpt(arch="mobilenet_v2"):
    args = {"num_classes": 3, "width_mult": 0.35} if arch == "mobilenet_v2" else {"num_classes": 3}
    model = create_model(arch, RS, **args)
    return {"arch": arch, "arch_args": args, "resolutions": RS, "class_names": ["a", "b", "c"],
            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "crop_pct": 0.875,
            "state_dict": model.state_dict(), "alpha": torch.zeros(3),
            "metrics": {"64": {"top1": 50.0, "top5": 100.0}}, "madds": {"64": 1234},
            "versions": versions()}, model


def test_round_trip_weights_only(tmp_path):
    ckpt, model = _ckpt()
    p = tmp_path / "m.pt"
    save_checkpoint(ckpt, p)
    raw = torch.load(p, weights_only=True)  # the plain dict loads with weights_only
    assert raw["arch"] == "mobilenet_v2" and raw["resolutions"] == RS
    back = model_from_checkpoint(load_checkpoint(p))
    x = torch.randn(2, 3, 48, 48)
    model.eval()
    assert torch.equal(back(x), model(x))
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


def test_manifest_from_checkpoint(tmp_path):
    ckpt, _ = _ckpt()
    p = tmp_path / "m.pt"
    save_checkpoint(ckpt, p)
    m = manifest_for(load_checkpoint(p), "torch", resolutions=[64, 56, 32], checkpoint_path=p)
    assert m.resolutions == [64, 56, 32]
    assert [e.trained for e in m.entries] == [True, False, True]
    assert m.entries[0].top1 == 50.0 and m.entries[0].madds == 1234
    assert Manifest.from_json(m.to_json()) == m


def test_refuses_bad_checkpoints(tmp_path):
    ckpt, _ = _ckpt()
    good = tmp_path / "good.pt"
    save_checkpoint(ckpt, good)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(trunc)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    other = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not an rsnet-edge checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="holds a mobilenet_v2 RS-Net, not resnet18"):
        load_checkpoint(good, arch="resnet18")
    wrong = dict(ckpt, arch="resnet18", arch_args={"num_classes": 3})
    save_checkpoint(wrong, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="do not fit a resnet18"):
        load_model(tmp_path / "wrong.pt")


def _run(module, *args, check=True):
    return run_module(module, *args, check=check, timeout=600)


def test_cli_refuses_bad_checkpoint_with_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    r = _run("training.evaluate", "--ckpt", bad, "--data", tmp_path, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ")


def test_tiny_train_then_evaluate_through_the_clis(tmp_path):
    data = generate(tmp_path / "ds", num_classes=3, train_per_class=6, val_per_class=3, size=64, progress=False)
    out = tmp_path / "rs.pt"
    r = _run("training.train", "--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", data,
             "--resolutions", *RS, "--epochs", "2", "--batch-size", "6", "--lr", "0.05", "--workers", "0",
             "--out", out, "--no-progress")
    assert "learned alpha" in r.stdout and "params:" in r.stdout
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["resolutions"] == RS and set(ckpt["metrics"]) == {"64", "48", "32", "ensemble"}
    assert ckpt["alpha"].shape == (3,) and ckpt["madds"]["64"] > ckpt["madds"]["32"] > 0
    log = [json.loads(line) for line in Path(str(out) + ".log.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in log] == [1, 2]
    # evaluate at trained + untrained (interpolated) resolutions, with the Table 1 matrix
    js = tmp_path / "eval.json"
    r = _run("training.evaluate", "--ckpt", out, "--data", data, "--resolutions", 64, 56, 32,
             "--matrix", "--json", js, "--workers", "0")
    assert "56 x 56*" in r.stdout and "interpolated BN" in r.stdout
    res = json.loads(js.read_text())
    assert res["resolutions"] == [64, 56, 32] and res["images"] == 9
    assert set(res["matrix"]) == {"64", "56", "32"}
    # Table 1 against the printed top-1: (right at c, wrong at w) - (right at w, wrong at c)
    # = top1(c) - top1(w) for every pair, and a cell never exceeds top1(c) or 100 - top1(w)
    m, top1 = res["matrix"], {r: res["metrics"][r]["top1"] for r in res["matrix"]}
    for w, row in m.items():
        assert set(row) == set(m) - {w}
        for c, v in row.items():
            assert v - m[c][w] == pytest.approx(top1[c] - top1[w], abs=1e-6)
            assert v <= min(top1[c], 100 - top1[w]) + 1e-6
    # evaluating the trained list reproduces the training-time metrics exactly
    js2 = tmp_path / "eval2.json"
    _run("training.evaluate", "--ckpt", out, "--data", data, "--json", js2, "--workers", "0")
    assert json.loads(js2.read_text())["metrics"] == ckpt["metrics"]
