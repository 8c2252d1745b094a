"""``training.train --init``: seeding an RS-Net from a torchvision single-model state dict or from an
rsnet-edge checkpoint (another resolution list mapped by BN interpolation); head re-initialisation."""

import json
import subprocess
import sys

import pytest
import torch
from torchvision import models as tvm

from helpers import ROOT, randomize_bn, subprocess_env, teacher_ckpt
from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD, save_checkpoint
from rsnet_edge.models import create_model, switchable_bns
from training.config import FINETUNE_FULL_LR_STEPS, FINETUNE_LR, FINETUNE_RECIPE, finetune_lr, make_config
from training.data import GlobalBatchSampler, crop_scale, train_dataset
from training.finetune import init_model


def ck_args(path):
    return torch.load(path, weights_only=True)["train_args"]

RS = (64, 48, 32)


def _random_bn(model, seed=0):
    """Non-trivial BN statistics and affine parameters, so a wrong or default BN is visible."""
    return randomize_bn(model, seed)


def test_init_from_torchvision_state_dict_reproduces_the_single_model(tmp_path):
    torch.manual_seed(0)
    single = _random_bn(tvm.mobilenet_v2(num_classes=4, width_mult=0.35)).eval()
    path = tmp_path / "mbv2.pth"
    torch.save(single.state_dict(), path)
    torch.manual_seed(1)  # a different fresh init: only the file can make the logits agree
    model = create_model("mobilenet_v2", RS, num_classes=4, width_mult=0.35)
    notes = init_model(model, path, "mobilenet_v2")
    assert notes == [f"init: weights from {path}, a single-model state dict (every BN set starts from its BN)"]
    model.eval()
    for sbn in switchable_bns(model):  # every BN set equal to the single model's BN
        for bn in sbn.bns[1:]:
            for k in ("weight", "bias", "running_mean", "running_var"):
                assert torch.equal(getattr(bn, k), getattr(sbn.bns[0], k))
    with torch.no_grad():
        for r in RS:
            x = torch.randn(2, 3, r, r)
            assert torch.allclose(model(x), single(x), atol=1e-5), r


def test_init_reinitialises_a_classifier_of_another_size(tmp_path):
    single = _random_bn(tvm.resnet18(num_classes=1000))
    path = tmp_path / "r18_imagenet_layout.pth"
    torch.save(single.state_dict(), path)
    torch.manual_seed(3)
    model = create_model("resnet18", RS, num_classes=5)
    fresh_head = model.fc.weight.detach().clone()
    notes = init_model(model, path, "resnet18")
    assert notes[-1] == f"init: classifier re-initialised (fc: 1000 classes in {path.name}, 5 in this run)"
    assert torch.equal(model.fc.weight, fresh_head)  # left at its fresh init
    assert torch.equal(model.conv1.weight, single.conv1.weight)  # everything else loaded
    assert torch.equal(model.layer4[1].bn2.bns[2].running_var, single.layer4[1].bn2.running_var)


def test_init_from_rsnet_checkpoint_maps_other_resolutions_by_bn_interpolation(tmp_path):
    src = create_model("mobilenet_v2", (64, 32), num_classes=4, width_mult=0.35)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for sbn in switchable_bns(src):
            for bn in sbn.bns:
                bn.weight.copy_(torch.randn(bn.num_features, generator=g))
                bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g))
    path = tmp_path / "rs_64_32.pt"
    save_checkpoint({"arch": "mobilenet_v2", "arch_args": {"num_classes": 4, "width_mult": 0.35},
                     "resolutions": [64, 32], "class_names": list("abcd"), "mean": list(IMAGENET_MEAN),
                     "std": list(IMAGENET_STD), "crop_pct": 0.875, "state_dict": src.state_dict(),
                     "alpha": torch.zeros(2)}, path)
    model = create_model("mobilenet_v2", (80, 64, 48, 32), num_classes=4, width_mult=0.35)
    notes = init_model(model, path, "mobilenet_v2")
    assert "BN of [48] interpolated from its sets; BN of [80] from its nearest set" in notes[0]
    for s, d in zip(switchable_bns(src), switchable_bns(model)):
        a, b = s.bns[0], s.bns[1]  # 64, 32
        assert torch.equal(d.bns[0].weight, a.weight)              # 80: above the range, nearest (64)
        assert torch.equal(d.bns[1].weight, a.weight)              # 64
        assert torch.allclose(d.bns[2].weight, (a.weight + b.weight) / 2, atol=1e-6)  # 48: half way
        assert torch.allclose(d.bns[2].running_var, (a.running_var + b.running_var) / 2, atol=1e-6)
        assert torch.equal(d.bns[3].running_var, b.running_var)    # 32
    src.eval(), model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), src(x), atol=1e-5)


def test_train_cli_init_with_a_1000_class_state_dict(tiny_data, tmp_path):
    """The wiring in training.train: the notice, the weights in the trained checkpoint (lr ~0), the
    4-class head, and --dropout recorded so the model rebuilds."""
    single = _random_bn(tvm.mobilenet_v2(num_classes=1000, width_mult=0.35))
    init = tmp_path / "imagenet_layout.pth"
    torch.save(single.state_dict(), init)
    out = tmp_path / "ft.pt"
    r = subprocess.run([sys.executable, "-m", "training.train", "--arch", "mobilenet_v2", "--width-mult", "0.35",
                        "--data", str(tiny_data), "--resolutions", "64", "32", "--epochs", "1",
                        "--max-steps-per-epoch", "1", "--batch-size", "8", "--lr", "1e-9", "--workers", "0",
                        "--dropout", "0.1", "--no-progress", "--init", str(init), "--out", str(out)],
                       cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "init: classifier re-initialised (classifier.1: 1000 classes in imagenet_layout.pth, 4 in this run)" in r.stdout
    # the flags left unset take the fine-tune recipe's values, said first
    assert r.stdout.splitlines()[0] == ("fine-tune recipe (--init; flags you did not set): --warmup-epochs "
                                        f"{FINETUNE_RECIPE['warmup_epochs']:g} --resolution-loss mean --mred none")
    ck = torch.load(out, weights_only=True)
    sd = ck["state_dict"]
    assert torch.allclose(sd["features.0.0.weight"], single.features[0][0].weight, atol=1e-6)
    assert torch.allclose(sd["features.0.1.bns.1.weight"], single.features[0][1].weight, atol=1e-6)
    assert sd["classifier.1.weight"].shape == (4, single.classifier[1].in_features)
    assert ck["arch_args"]["dropout"] == 0.1 and ck["train_args"]["init"] == str(init)
    from rsnet_edge.checkpoint import model_from_checkpoint
    assert model_from_checkpoint(ck).classifier[0].p == 0.1
    assert ck_args(out)["resolution_loss"] == "mean" and ck_args(out)["lr"] == 1e-9 and ck_args(out)["mred"] == "none"


def test_train_cli_init_takes_the_recipe_lr_for_the_run_length(tiny_data, tmp_path):
    """--init without --lr: the recipe's lr, scaled by the batch and (a run of 2 steps) by 2/300,
    printed first and recorded."""
    init = tmp_path / "single.pth"
    torch.save(tvm.mobilenet_v2(num_classes=4, width_mult=0.35).state_dict(), init)
    out = tmp_path / "ft.pt"
    r = subprocess.run([sys.executable, "-m", "training.train", "--width-mult", "0.35", "--data", str(tiny_data),
                        "--resolutions", "64", "32", "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size",
                        "8", "--workers", "0", "--no-progress", "--init", str(init), "--out", str(out)],
                       cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    lr = finetune_lr(8, 2)
    assert lr == pytest.approx(FINETUNE_LR * 8 / 256 * 2 / FINETUNE_FULL_LR_STEPS)
    assert r.stdout.splitlines()[0] == (f"fine-tune recipe (--init; flags you did not set): --lr {lr:g} "
                                        f"--warmup-epochs 0.5 --resolution-loss mean --mred none "
                                        f"(lr: {FINETUNE_LR:g} x 8/256 x 2/{FINETUNE_FULL_LR_STEPS} steps, a short run)")
    assert ck_args(out)["lr"] == lr and ck_args(out)["epochs"] == 1


# Bad --init files (missing, unreadable, not a state dict, wrong architecture or width) are rows of the
# one bad-input table: tests/test_bad_inputs.py (train-init-*).


# ------------------------------------------------------------------- --teacher (issue 18, item 7)
@pytest.mark.parametrize("views", ["exact", "device"])
def test_teacher_sees_the_same_crop_at_its_resolution_and_never_moves(tiny_data, tmp_path, monkeypatch, views):
    """training.train --teacher: the teacher's input is each image's training crop rendered at its
    own resolution (64, not a training resolution here; ``--views device`` renders the crop once at
    64 and the training views from it), its weights and BN statistics stay as loaded, no gradient
    reaches it, and its term is in the logged loss."""
    import training.train as T
    tpath = teacher_ckpt(tmp_path / "teacher.pt", tiny_data)
    saved = torch.load(tpath, weights_only=True)["state_dict"]
    made, seen = [], []

    def spy(*args, **kw):
        t = real(*args, **kw)
        logits = t.logits
        t.logits = lambda view: (seen.append(view.detach().clone()), logits(view))[1]
        made.append(t)
        return t
    real = T.load_teacher
    monkeypatch.setattr(T, "load_teacher", spy)
    cfg = make_config(data=str(tiny_data), out=str(tmp_path / "s.pt"), width_mult=0.35, resolutions=[48, 32],
                      epochs=1, max_steps_per_epoch=2, batch_size=8, lr=0.05, workers=0, no_progress=True,
                      threads=1, teacher=str(tpath), crop_scale=0.35, views=views)
    T.train(cfg)
    (t,) = made
    assert t.resolution == 64 and len(seen) == 2 and seen[0].shape == (8, 3, 64, 64)
    sampler = GlobalBatchSampler(32, 8, 0, 1, seed=0)
    sampler.set_epoch(0)
    ds = train_dataset(tiny_data, [64], IMAGENET_MEAN, IMAGENET_STD, scale=crop_scale(0.35))
    want = torch.stack([ds[key][0][0] for key in next(iter(sampler))])   # batch 0's crops, at 64
    if views == "exact":
        assert torch.equal(seen[0], want)
    else:  # uint8 at 64, normalised on the device: equal up to the 8-bit rounding of the render
        assert torch.allclose(seen[0], want, atol=1e-5)
    assert all(p.grad is None and not p.requires_grad for p in t.model.parameters())
    assert not t.model.training
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    log = [json.loads(x) for x in (tmp_path / "s.pt.log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"]["tea"] > 0
    assert ck_args(tmp_path / "s.pt")["teacher"] == str(tpath)


def test_teacher_from_a_state_dict_runs_at_the_largest_training_resolution(tiny_data, tmp_path):
    """A torchvision-layout teacher: its own resolution defaults to the largest training one (a view
    the data already makes); --teacher-resolution picks another."""
    from training.teacher import extra_views, load_teacher
    single = _random_bn(tvm.mobilenet_v2(num_classes=4, width_mult=0.35)).eval()
    path = tmp_path / "t.pth"
    torch.save(single.state_dict(), path)
    classes = sorted(p.name for p in (tiny_data / "train").iterdir())
    t = load_teacher(path, "mobilenet_v2", {"width_mult": 0.35, "dropout": 0.0}, classes, [48, 32])
    assert t.resolution == 48 and extra_views(t, [48, 32]) == [] and t.view_index([48, 32]) == 0
    x = torch.randn(2, 3, 48, 48)
    assert torch.allclose(t.logits(x), single(x), atol=1e-5)
    t = load_teacher(path, "mobilenet_v2", {"width_mult": 0.35, "dropout": 0.0}, classes, [48, 32], 56)
    assert t.resolution == 56 and extra_views(t, [48, 32]) == [56] and t.view_index([48, 32]) == 2


def test_recipe_defaults_only_with_init_and_only_for_unset_flags():
    scratch = make_config(data="D", out="o.pt", batch_size=64)
    assert (scratch.warmup_epochs, scratch.resolution_loss, scratch.epochs, scratch.lr, scratch.mred) == (
        0.0, "sum", 150, 0.05 * 64 / 256, "full")                                  # the paper's
    ft = make_config(data="D", out="o.pt", batch_size=64, init="m.pt")
    assert (ft.warmup_epochs, ft.resolution_loss, ft.epochs, ft.mred) == (
        FINETUNE_RECIPE["warmup_epochs"], FINETUNE_RECIPE["resolution_loss"], FINETUNE_RECIPE["epochs"],
        FINETUNE_RECIPE["mred"])
    assert ft.lr is None                      # resolved by training.train, which knows the run's length
    assert finetune_lr(64, 400) == finetune_lr(64, FINETUNE_FULL_LR_STEPS) == pytest.approx(FINETUNE_LR * 64 / 256)
    assert finetune_lr(64, 30) == pytest.approx(FINETUNE_LR * 64 / 256 * 30 / FINETUNE_FULL_LR_STEPS)
    mine = make_config(data="D", out="o.pt", init="m.pt", lr=0.3, epochs=2, warmup_epochs=0.0, resolution_loss="sum",
                       mred="vanilla")
    assert (mine.lr, mine.epochs, mine.warmup_epochs, mine.resolution_loss, mine.mred) == (0.3, 2, 0.0, "sum", "vanilla")
