"""Switchable BatchNorm models: BN set follows input size, interpolation, parameter counts, seeding."""

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from rsnet_edge.flops import count_madds
from rsnet_edge.models import (ResolutionError, SwitchableBatchNorm2d, bn_plan, create_model,
                               load_single_state_dict, param_counts, set_interpolation,
                               switchable_bns, to_single_resolution)

RS = (64, 48, 32)


def _distinct_sets(model):
    """Give every BN set different statistics/affine params so a wrong set is visible."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for sbn in switchable_bns(model):
            for k, bn in enumerate(sbn.bns):
                bn.weight.copy_(1 + 0.1 * torch.randn(bn.num_features, generator=g))
                bn.bias.copy_(0.1 * torch.randn(bn.num_features, generator=g) + k)
                bn.running_mean.copy_(0.1 * torch.randn(bn.num_features, generator=g))
                bn.running_var.copy_(1 + torch.rand(bn.num_features, generator=g) * (k + 1))
    return model.eval()


@pytest.mark.parametrize("arch,kw", [("mobilenet_v2", {"width_mult": 0.35}), ("resnet18", {})])
def test_bn_set_follows_input_size(arch, kw):
    model = _distinct_sets(create_model(arch, RS, num_classes=5, **kw))
    for r in RS:
        x = torch.randn(2, 3, r, r)
        out = model(x)
        assert all(sbn.plan.resolution == r and sbn.plan.exact for sbn in switchable_bns(model))
        # the same input through a plain model holding ONLY set r gives the same logits
        ref = to_single_resolution(model, r)
        assert not any(isinstance(m, SwitchableBatchNorm2d) for m in ref.modules())
        assert torch.allclose(out, ref(x), atol=1e-5)
    # and the sets really differ: the 48 set on a 48 input differs from the 64 set forced on it
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        a = to_single_resolution(model, 48)(x)
        b = to_single_resolution(model, 64)(x)
    assert not torch.allclose(a, b, atol=1e-3)


def test_training_updates_only_the_active_set():
    model = create_model("mobilenet_v2", RS, num_classes=5, width_mult=0.35).train()
    before = [[bn.running_mean.clone() for bn in sbn.bns] for sbn in switchable_bns(model)]
    model(torch.randn(4, 3, 48, 48))
    after = [[bn.running_mean for bn in sbn.bns] for sbn in switchable_bns(model)]
    idx = RS.index(48)
    for b, a in zip(before, after):
        for k in range(len(RS)):
            changed = not torch.equal(b[k], a[k])
            assert changed == (k == idx)


def test_untrained_size_is_an_error_unless_interpolation_is_asked():
    model = create_model("resnet18", RS, num_classes=5).eval()
    with pytest.raises(ResolutionError, match="not trained"):
        model(torch.randn(1, 3, 56, 56))
    set_interpolation(model, True)
    assert model(torch.randn(1, 3, 56, 56)).shape == (1, 5)
    with pytest.raises(ResolutionError, match="square"):
        model(torch.randn(1, 3, 64, 48))


def test_bn_interpolation_at_midpoint_and_outside_range():
    model = _distinct_sets(create_model("mobilenet_v2", RS, num_classes=5, width_mult=0.35))
    plan = bn_plan(RS, 56, interpolate=True)
    assert (plan.lo, plan.hi, plan.t) == (0, 1, 0.5)
    sbn = switchable_bns(model)[3]
    w, b, m, v = sbn.params_for(plan)
    a0, a1 = sbn.bns[0], sbn.bns[1]
    assert torch.allclose(w, (a0.weight + a1.weight) / 2)
    assert torch.allclose(b, (a0.bias + a1.bias) / 2)
    assert torch.allclose(m, (a0.running_mean + a1.running_mean) / 2)
    assert torch.allclose(v, (a0.running_var + a1.running_var) / 2)
    # quarter point: 60 is 3/4 of the way from 48 to 64
    p = bn_plan(RS, 60, interpolate=True)
    assert p.t == pytest.approx(0.25)
    # outside the trained range: the nearest set, unchanged
    assert bn_plan(RS, 80, True) == bn_plan(RS, 80, True).__class__(80, 0, 0, 0.0)
    assert (bn_plan(RS, 16, True).lo, bn_plan(RS, 16, True).hi) == (2, 2)
    # the interpolated model equals a plain model carrying the interpolated BN
    set_interpolation(model, True)
    x = torch.randn(2, 3, 56, 56)
    assert torch.allclose(model(x), to_single_resolution(model, 56)(x), atol=1e-5)


@pytest.mark.parametrize("arch,kw,single_fn", [
    ("mobilenet_v2", {}, lambda: tvm.mobilenet_v2(num_classes=1000)),
    ("resnet18", {}, lambda: tvm.resnet18(num_classes=1000)),
    ("resnet50", {}, lambda: tvm.resnet50(num_classes=1000)),
])
def test_parameter_count_formula(arch, kw, single_fn):
    S = 5
    model = create_model(arch, num_classes=1000, **kw)
    single = single_fn()
    n_single = sum(p.numel() for p in single.parameters())
    bn_affine = sum(m.weight.numel() + m.bias.numel() for m in single.modules() if isinstance(m, nn.BatchNorm2d))
    counts = param_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] == n_single + (S - 1) * bn_affine
    assert counts["single"] == n_single
    print(f"{arch}: {counts['total']:,} = {n_single:,} + 4 x {bn_affine:,}")


def test_layer_names_match_torchvision_and_seed_from_single_state_dict():
    single = tvm.mobilenet_v2(num_classes=7, width_mult=0.35)
    with torch.no_grad():
        for m in single.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    model = create_model("mobilenet_v2", RS, num_classes=7, width_mult=0.35)
    tv_modules = {n for n, _ in single.named_modules()}
    rs_modules = {n for n, _ in model.named_modules()}
    assert tv_modules <= rs_modules  # every torchvision module name exists in the RS-Net
    load_single_state_dict(model, single.state_dict())
    single.eval(), model.eval()
    x = torch.randn(1, 3, 48, 48)
    assert torch.allclose(model(x), single(x), atol=1e-5)  # every BN set starts as the single BN
    with pytest.raises(ValueError, match="does not fit"):
        load_single_state_dict(model, tvm.resnet18(num_classes=7).state_dict())


def test_madds_match_paper_table2():
    model = create_model("mobilenet_v2", num_classes=1000)
    assert count_madds(model, 224) == pytest.approx(300e6, rel=0.01)  # paper: 301M
    assert count_madds(model, 96) == pytest.approx(56e6, rel=0.02)    # paper: 56M


def test_set_resolution_never_serves_an_input_of_another_size():
    """Regression: the pre-hook cached the last input size, so after set_resolution(model, 32) an
    input of the cached size (64) was still normalised with 32's BN set."""
    from rsnet_edge.models import set_resolution
    model = _distinct_sets(create_model("mobilenet_v2", RS, num_classes=5, width_mult=0.35))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = to_single_resolution(model, 64)(x)
        assert torch.allclose(model(x), ref, atol=1e-5)
        set_resolution(model, 32)
        assert torch.allclose(model(x), ref, atol=1e-5)  # the 64 input gets the 64 set, not 32's
        assert all(sbn.plan.resolution == 64 for sbn in switchable_bns(model))


def test_turning_interpolation_off_stops_serving_an_interpolated_size():
    """Regression: a size served once by interpolated BN stayed served (cached plan) after
    set_interpolation(model, False)."""
    from rsnet_edge.models import set_resolution
    model = create_model("resnet18", RS, num_classes=5).eval()
    x = torch.randn(1, 3, 56, 56)
    set_interpolation(model, True)
    model(x)
    set_interpolation(model, False)
    with pytest.raises(ResolutionError, match="not trained"):
        model(x)
    # an explicit one-size permission works for that size only, and set_interpolation(False) revokes it
    set_resolution(model, 56, interpolate=True)
    assert model(x).shape == (1, 5)
    with pytest.raises(ResolutionError, match="not trained"):
        model(torch.randn(1, 3, 40, 40))
    set_interpolation(model, False)
    with pytest.raises(ResolutionError, match="not trained"):
        model(x)


@pytest.mark.parametrize("arch,kw,blocks", [("mobilenet_v2", {"width_mult": 0.35}, 10), ("resnet18", {}, 8)])
def test_zero_init_residual_zeroes_every_set_of_each_blocks_last_bn(arch, kw, blocks):
    from rsnet_edge.models import zero_init_residual
    model = create_model(arch, RS, num_classes=5, **kw)
    assert zero_init_residual(model) == blocks
    zeroed = [sbn for sbn in switchable_bns(model) if all((bn.weight == 0).all() for bn in sbn.bns)]
    partly = [sbn for sbn in switchable_bns(model) if any((bn.weight == 0).all() for bn in sbn.bns)]
    assert len(zeroed) == len(partly) == blocks  # all S sets of a block's last BN, nothing else
