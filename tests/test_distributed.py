"""2-process DDP (torchrun, gloo, CPU) reproduces a 1-process run on the same global batch.

Both runs train in float64 (``--dtype float64``): in float32 this tiny, badly conditioned setup (batch
16, BN over 1x1 maps at 32 px) amplifies summation-order noise so fast that even 1 vs 2 threads in
ONE process drift apart by ~5% of the weight update within 4 steps, which would hide a real bug.
In float64 the noise floor is ~1e-9, a correct DDP lands within ~1e-7, and the same DDP run with
per-process BN statistics (``--local-bn``, the negative control) is off by O(1).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rsnet_edge.models import create_model
from helpers import ROOT, subprocess_env
from training.data import GlobalBatchSampler

RS = ["64", "48", "32"]



def _train(args, out, nproc=1, extra=()):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", str(nproc)] if nproc > 1 else [sys.executable]
    cmd = launcher + ["-m", "training.train", *args, "--out", str(out), *extra]
    r = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _rel_update_diff(a, b, w0):
    keys = [k for k in a if a[k].is_floating_point() and "running" not in k]
    d = sum(float((a[k].double() - b[k].double()).norm()) ** 2 for k in keys) ** 0.5
    u = sum(float((a[k].double() - w0[k].double()).norm()) ** 2 for k in keys) ** 0.5
    return d / u


@pytest.fixture(scope="module")
def data(tiny_data):
    return tiny_data


def test_ranks_split_each_global_batch_contiguously():
    one = GlobalBatchSampler(37, 8, 0, 1, seed=3)
    ranks = [GlobalBatchSampler(37, 8, r, 2, seed=3) for r in range(2)]
    for s in [one, *ranks]:
        s.set_epoch(5)
    for b1, b0, b2 in zip(one, *ranks):
        assert b1 == b0 + b2 and len(b0) == len(b2) == 4  # (index, augmentation seed) pairs
    assert len(one) == 37 // 8
    one.set_epoch(5, start=2)  # resume: skip the first two batches of the epoch
    full = GlobalBatchSampler(37, 8, 0, 1, seed=3)
    full.set_epoch(5)
    assert list(one) == list(full)[2:]


def test_two_gloo_processes_match_one_process(data, tmp_path):
    args = ["--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", str(data), "--resolutions", *RS,
            "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--workers", "0", "--no-progress",
            "--dtype", "float64", "--seed", "1"]
    _train(args, tmp_path / "one.pt")
    r = _train(args, tmp_path / "two.pt", nproc=2)
    assert "2 process(es)" in r.stdout and "BN synchronised" in r.stdout
    _train(args, tmp_path / "local.pt", nproc=2, extra=["--local-bn"])
    one, two, local = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("one", "two", "local"))

    torch.manual_seed(1)
    w0 = create_model("mobilenet_v2", [int(r) for r in RS], num_classes=4, width_mult=0.35).state_dict()
    d_two = _rel_update_diff(one["state_dict"], two["state_dict"], w0)
    d_local = _rel_update_diff(one["state_dict"], local["state_dict"], w0)
    assert d_two < 1e-5, d_two
    assert d_local > 1e-2, d_local  # per-process BN statistics really are different training
    assert torch.allclose(one["train_state"]["alpha"], two["train_state"]["alpha"], rtol=0, atol=1e-8)
    # BN running statistics were updated from the global batch too
    for k, v in one["state_dict"].items():
        if "running_var" in k:
            assert torch.allclose(v, two["state_dict"][k], rtol=1e-6, atol=1e-9), k

    # per-epoch losses reduced across ranks, validation metrics reduced across shards
    log1 = [json.loads(x) for x in Path(str(tmp_path / "one.pt") + ".log.jsonl").read_text().splitlines()]
    log2 = [json.loads(x) for x in Path(str(tmp_path / "two.pt") + ".log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log1] == [r["step"] for r in log2] == [2, 4]
    for r1, r2 in zip(log1, log2):
        for k in ("total", "cls", "ens", "dis"):
            assert r2["loss"][k] == pytest.approx(r1["loss"][k], rel=1e-6, abs=1e-9)
        assert r2["metrics"] == r1["metrics"]
    assert one["metrics"] == two["metrics"]


def test_two_gloo_processes_match_one_process_with_a_teacher(data, tmp_path):
    """--teacher under torchrun (issue 18): every rank computes the teacher's logits on its own share
    (the teacher is no part of DDP), so 2 processes x 8 train what 1 process x 16 trains; the teacher
    term is in both logs, equal."""
    from helpers import teacher_ckpt
    teacher = teacher_ckpt(tmp_path / "teacher.pt", data, 80)
    args = ["--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", str(data), "--resolutions", *RS,
            "--epochs", "1", "--batch-size", "16", "--lr", "0.01", "--workers", "0", "--no-progress",
            "--dtype", "float64", "--seed", "1", "--teacher", str(teacher), "--teacher-weight", "2"]
    _train(args, tmp_path / "one.pt")
    r = _train(args, tmp_path / "two.pt", nproc=2)
    assert "2 process(es)" in r.stdout and "teacher:" in r.stdout
    one, two = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("one", "two"))
    torch.manual_seed(1)
    w0 = create_model("mobilenet_v2", [int(r) for r in RS], num_classes=4, width_mult=0.35).state_dict()
    assert _rel_update_diff(one["state_dict"], two["state_dict"], w0) < 1e-5
    log1, log2 = ([json.loads(x) for x in Path(str(tmp_path / f"{n}.pt") + ".log.jsonl").read_text().splitlines()]
                  for n in ("one", "two"))
    assert log1[-1]["loss"]["tea"] > 0
    assert log2[-1]["loss"]["tea"] == pytest.approx(log1[-1]["loss"]["tea"], rel=1e-6)


def test_per_sample_seeds_and_device_views(data, tmp_path):
    """A sample's crop depends on its seed only; ``--views device`` renders the same crop once at the
    largest resolution (identical to the exact path there) and downsamples the rest on the device."""
    from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD
    from training.data import train_dataset
    from training.data import MaxResolutionView, expand_views, sample_seed
    from training.train import main as train_main

    rs = [64, 48, 32]
    ds = train_dataset(data, rs, IMAGENET_MEAN, IMAGENET_STD)
    seed = sample_seed(0, 3, 5)
    torch.manual_seed(123)
    a, _ = ds[(5, seed)]
    state = torch.get_rng_state()
    b, _ = ds[(5, seed)]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    ds.transform = MaxResolutionView(rs)
    (big,), _ = ds[(5, seed)]
    assert big.dtype == torch.uint8 and big.shape == (3, 64, 64)
    views = expand_views(big[None], rs, IMAGENET_MEAN, IMAGENET_STD)
    assert [v.shape[-1] for v in views] == rs
    assert torch.allclose(views[0][0], a[0], atol=1e-5)  # same crop, same resize at the largest size
    for v, e in zip(views[1:], a[1:]):  # resampled twice: close, not equal
        assert (v[0] - e).abs().mean() < 0.1
    out = tmp_path / "dev.pt"
    assert train_main(["--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", str(data),
                       "--resolutions", "64", "48", "32", "--epochs", "1", "--batch-size", "8",
                       "--max-steps-per-epoch", "2", "--workers", "0", "--views", "device",
                       "--no-progress", "--out", str(out)]) == 0
    assert torch.load(out, weights_only=True)["train_args"]["views"] == "device"


def test_rank_with_only_unreadable_images_does_not_hang_the_others(data, tmp_path):
    """Regression: a rank whose share of a global batch was all unreadable skipped forward/backward
    while the other rank waited in DDP's all-reduce forever. Rank 1's share of batch 0 is made
    unreadable here; the run must finish, skipping that step on both ranks."""
    import os
    import shutil
    import signal
    from training.data import ImageFolderViews

    root = tmp_path / "ds"
    shutil.copytree(data, root)
    ds = ImageFolderViews(root / "train", transform=None)
    sampler = GlobalBatchSampler(len(ds), 8, rank=1, world=2, seed=0)
    sampler.set_epoch(0)
    rank1_batch0 = next(iter(sampler))
    for i, _ in rank1_batch0:
        Path(ds.samples[i][0]).write_bytes(b"not an image")
    out = tmp_path / "two.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.train", "--arch", "mobilenet_v2", "--width-mult", "0.35", "--data", str(root),
           "--resolutions", "48", "32", "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size", "8",
           "--lr", "0.01", "--workers", "0", "--no-progress", "--out", str(out)]
    log_path = tmp_path / "torchrun.out"
    with open(log_path, "w") as log_file:  # a file, not a pipe: hung ranks must not block the read
        p = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=log_file, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            p.wait(timeout=150)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)  # torchrun terminates its workers (own sessions) on SIGTERM
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            pytest.fail("2-process training hung on a batch whose share on one rank was all unreadable")
    stdout = log_path.read_text()
    assert p.returncode == 0, stdout[-3000:]
    assert "skipped 4 unreadable train image(s)" in stdout
    log = [json.loads(x) for x in Path(str(out) + ".log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and log[-1]["skipped_train"] == 4
