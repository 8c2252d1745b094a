"""Exact resume: a training process killed with SIGKILL mid-epoch and resumed from its last
checkpoint ends with bit-identical weights (CPU, same thread count) to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import ROOT, subprocess_env, teacher_ckpt
from training.train import main as train_main




@pytest.fixture(scope="module")
def data(tiny_data):
    return tiny_data


def _args(data, out, workers, extra=()):
    # 32 images / batch 8 = 4 steps per epoch, 3 epochs, checkpoints at steps 2, 4 (epoch), 6, 8, ...
    return [*extra, "--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", str(data),
            "--resolutions", "64", "48", "32", "--epochs", "3", "--batch-size", "8", "--lr", "0.01",
            "--workers", str(workers), "--save-every", "2", "--no-progress", "--out", str(out)]


def _state(path):
    try:
        return torch.load(path, weights_only=True)["train_state"]
    except Exception:  # noqa: BLE001 - not there yet
        return None


@pytest.mark.parametrize("teacher", [False, True], ids=["mred", "with-teacher"])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(data, tmp_path, teacher):
    """With --teacher too (issue 18): its path is one of the run's arguments, its logits are
    recomputed by the resumed process."""
    ref, cut = tmp_path / "ref.pt", tmp_path / "cut.pt"
    extra = ["--teacher", str(teacher_ckpt(tmp_path / "teacher.pt", data, 80))] if teacher else []
    r = subprocess.run([sys.executable, "-m", "training.train", *_args(data, ref, 0, extra)], cwd=ROOT,
                       env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    # the interrupted run also uses a DataLoader worker: augmentation is seeded per sample, so the
    # number of workers does not change what is trained
    p = subprocess.Popen([sys.executable, "-m", "training.train", *_args(data, cut, 1, extra)], cwd=ROOT,
                         env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            st = _state(cut) if cut.exists() else None
            if st is not None:
                os.kill(p.pid, signal.SIGKILL)  # no chance to clean up or save
                break
            if p.poll() is not None:
                break
            time.sleep(0.01)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    st = _state(cut)
    assert st is not None and not st["finished"]
    assert st["batch"] != 0, "first checkpoint should be mid-epoch (step 2 of 4)"
    killed_at = st["step"]

    r = subprocess.run([sys.executable, "-m", "training.train", *_args(data, cut, 1, extra), "--resume", str(cut)],
                       cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"step {killed_at}" in r.stdout  # "resumed at epoch E, batch B/4, step S"

    a, b = torch.load(ref, weights_only=True), torch.load(cut, weights_only=True)
    assert a["train_state"]["finished"] and b["train_state"]["finished"]
    assert a["train_state"]["step"] == b["train_state"]["step"] == 12
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert torch.equal(a["train_state"]["alpha"], b["train_state"]["alpha"])
    for sa, sb in zip(a["train_state"]["optimizer"]["state"].values(), b["train_state"]["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert a["metrics"] == b["metrics"]
    # the per-epoch log of the resumed run is the uninterrupted run's (times aside)
    la = [json.loads(x) for x in Path(str(ref) + ".log.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in Path(str(cut) + ".log.jsonl").read_text().splitlines()]
    strip = [{k: v for k, v in rec.items() if k != "time_s"} for rec in la], \
            [{k: v for k, v in rec.items() if k != "time_s"} for rec in lb]
    assert strip[0] == strip[1]


def test_resume_refuses_other_settings_and_skips_finished_runs(data, tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = _args(data, out, 0)
    args[args.index("--epochs") + 1] = "1"
    assert train_main(args + ["--threads", "1"]) == 0
    before = out.stat().st_mtime_ns
    capsys.readouterr()
    assert train_main(args + ["--resume", "auto"]) == 0  # finished: nothing retrained, nothing rewritten
    assert "already finished" in capsys.readouterr().out
    assert out.stat().st_mtime_ns == before
    bad = list(args)
    bad[bad.index("--lr") + 1] = "0.02"
    assert train_main(bad + ["--resume", str(out)]) == 2
    assert "--lr (0.01 vs 0.02)" in capsys.readouterr().err
    teacher = str(teacher_ckpt(tmp_path / "t.pt", data))             # the teacher is a run argument too
    assert train_main(args + ["--resume", str(out), "--teacher", teacher]) == 2
    assert f"--teacher (None vs {teacher})" in capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)  # train_state is weights_only-loadable
    assert set(ckpt["train_state"]["rng"]) >= {"python", "numpy", "torch"}
