"""``training.recalibrate`` (issue 18, item 6): every resolution's BN statistics re-estimated as the
exact cumulative average over N training views (checked against statistics computed by hand from
the views and from a plain torchvision model), nothing else moved, a normal checkpoint written."""

import pytest
import torch
from torchvision import models as tvm

from helpers import randomize_bn, teacher_ckpt
from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD, load_checkpoint, manifest_for
from training.data import crop_scale, train_dataset
from training.recalibrate import main, view_batches

RS = [64, 40]


@pytest.fixture(scope="module")
def source(tiny_data, tmp_path_factory):
    """A torchvision MobileNetV2 x0.35 (4 classes) with non-trivial BN, saved as a state dict."""
    torch.manual_seed(0)
    single = tvm.mobilenet_v2(num_classes=4, width_mult=0.35)
    randomize_bn(single, seed=1, bias=0.1, mean=0.3)
    path = tmp_path_factory.mktemp("src") / "mbv2.pth"
    torch.save(single.state_dict(), path)
    return single.eval(), path


def _recalibrate(data, init, out, *extra):
    argv = ["--init", str(init), "--data", str(data), "--resolutions", *map(str, RS), "--out", str(out),
            "--workers", "0", "--no-progress", "--crop-scale", "0.35", "--threads", "1", *map(str, extra)]
    assert main(argv) == 0
    return load_checkpoint(out)


def _views(data, images, batch, r):
    """The training views of resolution r, batch by batch, as recalibrate draws them."""
    ds = train_dataset(data, [r], IMAGENET_MEAN, IMAGENET_STD, scale=crop_scale(0.35))
    return [torch.stack([ds[key][0][0] for key in b]) for b in view_batches(len(ds), images, batch, 0)]


def test_statistics_are_the_cumulative_average_over_the_views(tiny_data, source, tmp_path):
    """First BN (its input is a convolution of the views, no BN before it): running mean = the mean
    of the 4 equal batches' means = the mean over all 32 views, running var = the mean of the
    batches' unbiased variances (momentum None), for each resolution's own set."""
    single, path = source
    ck = _recalibrate(tiny_data, path, tmp_path / "rc.pt", "--images", 32, "--batch-size", 8, "--width-mult", 0.35)
    sd = ck["state_dict"]
    conv = single.features[0][0]
    for k, r in enumerate(RS):
        with torch.no_grad():
            acts = [conv(x) for x in _views(tiny_data, 32, 8, r)]
        assert len(acts) == 4 and all(a.shape[0] == 8 for a in acts)
        mean = torch.cat(acts).mean((0, 2, 3))                             # over every view and pixel
        var = torch.stack([a.var((0, 2, 3), unbiased=True) for a in acts]).mean(0)
        assert torch.allclose(sd[f"features.0.1.bns.{k}.running_mean"], mean, atol=1e-5), r
        assert torch.allclose(sd[f"features.0.1.bns.{k}.running_var"], var, rtol=1e-4, atol=1e-6), r
        assert int(sd[f"features.0.1.bns.{k}.num_batches_tracked"]) == 4
        assert not torch.allclose(sd[f"features.0.1.bns.{k}.running_mean"], single.features[0][1].running_mean)


def test_one_batch_gives_every_layer_the_statistics_of_all_views(tiny_data, source, tmp_path):
    """With all 32 views in one batch, every BN's statistics are the plain mean and unbiased
    variance of its input over the views, as a plain torchvision model in training mode sees it."""
    single, path = source
    ck = _recalibrate(tiny_data, path, tmp_path / "rc1.pt", "--images", 32, "--batch-size", 32, "--width-mult", 0.35)
    ref = tvm.mobilenet_v2(num_classes=4, width_mult=0.35)
    ref.load_state_dict(single.state_dict())
    ref.train()
    names = {"features.0.1": ref.features[0][1], "features.9.conv.1.1": ref.features[9].conv[1][1],
             "features.18.1": ref.features[18][1]}
    for k, r in enumerate(RS):
        (x,) = _views(tiny_data, 32, 32, r)
        seen = {}
        hooks = [m.register_forward_pre_hook(lambda m, a, n=n: seen.__setitem__(n, a[0].detach()))
                 for n, m in names.items()]
        with torch.no_grad():
            ref(x)
        for h in hooks:
            h.remove()
        for n, inp in seen.items():
            assert torch.allclose(ck["state_dict"][f"{n}.bns.{k}.running_mean"], inp.mean((0, 2, 3)),
                                  atol=1e-4), (n, r)
            assert torch.allclose(ck["state_dict"][f"{n}.bns.{k}.running_var"], inp.var((0, 2, 3), unbiased=True),
                                  rtol=1e-3, atol=1e-5), (n, r)


def test_nothing_else_moves_and_the_checkpoint_is_a_normal_one(tiny_data, source, tmp_path):
    single, path = source
    ck = _recalibrate(tiny_data, path, tmp_path / "rc.pt", "--images", 16, "--batch-size", 8, "--width-mult", 0.35)
    src = single.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for key, v in ck["state_dict"].items():
        if key.endswith(stats):
            continue
        plain = key.replace(".bns.0.", ".").replace(".bns.1.", ".")     # every BN set: the source's BN
        assert torch.equal(v, src[plain]), key
    assert ck["resolutions"] == RS and ck["arch_args"]["width_mult"] == 0.35
    assert set(ck["metrics"]) == {"64", "40"} and ck["train_args"]["tool"] == "training.recalibrate"
    entries = manifest_for(ck, "executorch").entries                      # exports carry its metrics
    assert [e.top1 for e in entries] == [ck["metrics"]["64"]["top1"], ck["metrics"]["40"]["top1"]]


def test_from_an_rsnet_checkpoint_its_architecture_is_read(tiny_data, tmp_path):
    """An I-Net checkpoint: arch and width come from it (no flag), every set starts from its one set."""
    path = teacher_ckpt(tmp_path / "inet.pt", tiny_data)
    ck = torch.load(path, weights_only=True)
    out = _recalibrate(tiny_data, path, tmp_path / "rc.pt", "--images", 8, "--batch-size", 8)
    assert out["arch_args"]["width_mult"] == 0.35 and out["class_names"] == ck["class_names"]
    assert torch.equal(out["state_dict"]["features.3.conv.1.1.bns.1.weight"],
                       ck["state_dict"]["features.3.conv.1.1.bns.0.weight"])
