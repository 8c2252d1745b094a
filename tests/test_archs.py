"""The architecture registry (issue 18): every registered name builds, its RS-Net seeded from the
single model's state dict computes exactly the single model's logits at every resolution, the
registry's facts (classifier name, residual rule, arguments) hold for the model it builds, every
supported norm keeps what it computed (timm's BatchNormAct2d keeps its activation) and switches and
interpolates its BN like a plain BatchNorm2d, and unsupported norms are refused in one line."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from rsnet_edge import archs, norms
from rsnet_edge.models import (SwitchableBatchNorm2d, create_model, head_name, load_single_state_dict,
                               make_switchable, param_counts, set_interpolation, switchable_bns,
                               to_single_resolution, zero_init_residual)

RS = (48, 32)
HAVE_TIMM = importlib.util.find_spec("timm") is not None


def _needs(name):
    spec = archs.get(name)
    if not spec.available():
        pytest.skip(f"{name} needs {spec.needs}")


@torch.no_grad()
def _randomise_norms(model, seed):
    """Random affine parameters and running statistics in every BN (and every BN set)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        bns = m.bns if isinstance(m, SwitchableBatchNorm2d) else [m] if norms.kind_of(m) else []
        for bn in bns:
            c = bn.num_features
            bn.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
            bn.bias.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(c, generator=g))


@pytest.mark.parametrize("name", archs.names())
def test_seeded_rsnet_computes_the_single_models_logits(name):
    """Item 5 over EVERY registered name: the single model (random weights and BN statistics) and
    the RS-Net seeded from its state dict (every BN set scrambled first, so the load must do the
    work) give the same logits, bit for bit, at two resolutions. The model is built once and made
    switchable in place (what create_model does after building it)."""
    _needs(name)
    torch.manual_seed(0)
    single = archs.build(name, num_classes=3)
    _randomise_norms(single, 1)
    single.eval()
    xs = {r: torch.randn(2, 3, r, r, generator=torch.Generator().manual_seed(r)) for r in RS}
    with torch.no_grad():
        want = {r: single(x) for r, x in xs.items()}
    sd = {k: v.clone() for k, v in single.state_dict().items()}
    n_norms = sum(norms.kind_of(m) is not None for m in single.modules())
    spec = archs.get(name)
    assert head_name(single) == spec.head and isinstance(single.get_submodule(spec.head), nn.Linear)

    model = make_switchable(single, RS)
    assert len(switchable_bns(model)) == n_norms > 0
    _randomise_norms(model, 2)
    assert load_single_state_dict(model, sd) == []
    model.eval()
    with torch.no_grad():
        for r, x in xs.items():
            got = model(x)
            assert torch.equal(got, want[r]), (name, r, (got - want[r]).abs().max().item())
    # the registry's residual rule: blocks found where it names one
    if spec.zero_init is not None:
        assert archs.load_attr(spec.zero_init)(model), name


def test_registry_covers_the_issue_list():
    must = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1",
            "efficientnet_b2", "efficientnet_b3", "efficientnet_v2_s", "resnet18", "resnet34", "resnet50",
            "resnet101", "resnext50_32x4d", "wide_resnet50_2", "regnet_y_400mf", "regnet_y_800mf",
            "regnet_y_1_6gf", "regnet_x_400mf", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "mnasnet0_5",
            "mnasnet1_0", "densenet121", "timm:mobilenetv3_large_100", "timm:efficientnet_lite0",
            "timm:resnet18d"]
    assert set(must) <= set(archs.names())
    assert {"MobileNetV3", "EfficientNet", "RegNet", "DenseNet"} <= set(archs.families())
    for name in archs.names():
        spec = archs.get(name)
        assert spec.name == name and spec.recipe.lr > 0 and spec.recipe.epochs > 0
        if spec.dropout_arg is None:                       # no classifier dropout: none by default
            assert spec.recipe.dropout == 0.0
        assert spec.width_arg is None or spec.width_arg in spec.args
        assert spec.dropout_arg is None or spec.dropout_arg in spec.args


def test_arch_args_use_the_builders_own_names():
    assert archs.arch_args("mobilenet_v2", 10, width_mult=0.35, dropout=0.2) == {
        "num_classes": 10, "width_mult": 0.35, "dropout": 0.2}
    assert archs.arch_args("resnet18", 10, width_mult=1.0, dropout=0.0) == {"num_classes": 10}
    assert archs.arch_args("timm:efficientnet_lite0", 10, dropout=0.3) == {"num_classes": 10, "drop_rate": 0.3}
    assert archs.arch_args("resnet18", 10, width_mult=0.5) == {"num_classes": 10}   # no width: ignored
    with pytest.raises(ValueError, match="--dropout: densenet121 has no classifier dropout"):
        archs.arch_args("densenet121", 10, dropout=0.1)
    with pytest.raises(ValueError, match="unknown architecture 'vgg16'"):
        archs.get("vgg16")
    with pytest.raises(ValueError, match="does not take"):
        archs.build("resnet18", 10, width_mult=0.5)


@pytest.mark.parametrize("name,blocks", [("mobilenet_v3_small", 6), ("efficientnet_b0", 9), ("regnet_x_400mf", 22),
                                         ("mnasnet0_5", 10), ("resnet50", 16)])
def test_zero_init_rule_finds_each_residual_block(name, blocks):
    """Counted by hand from torchvision's block lists: MobileNetV3-Small has 11 bnecks, 6 with a
    skip; EfficientNet-B0 16 MBConvs, 9 with a skip; RegNetX-400MF depths 1+2+7+12; MNASNet 16
    inverted residuals, 10 with a skip; ResNet-50 3+4+6+3."""
    model = create_model(name, RS, num_classes=3)
    assert zero_init_residual(model) == blocks
    zeroed = [s for s in switchable_bns(model) if all((bn.weight == 0).all() for bn in s.bns)]
    assert len(zeroed) == blocks


def test_zero_init_refused_without_residual_blocks():
    model = create_model("shufflenet_v2_x0_5", RS, num_classes=3)
    with pytest.raises(ValueError, match="shufflenet_v2_x0_5 has no residual blocks"):
        zero_init_residual(model)


# ------------------------------------------------------------------------------------ timm
needs_timm = pytest.mark.skipif(not HAVE_TIMM, reason="timm not installed")


@needs_timm
def test_batchnormact_keeps_its_activation_and_drop():
    """timm's BatchNormAct2d = batch norm, then drop, then act: the switchable copy keeps both (the
    silent trap of issue 18 was a plain switchable BN that dropped them), its plain single-
    resolution view is a BatchNormAct2d again, and the activation is really applied."""
    from timm.layers.norm_act import BatchNormAct2d

    bn = BatchNormAct2d(8, act_layer=nn.Hardswish, drop_layer=lambda: nn.Dropout(0.5))
    _randomise_norms(bn, 3)
    bn.eval()
    x = torch.randn(2, 8, 5, 5)
    want = nn.functional.hardswish(nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight,
                                                            bn.bias, False, 0.0, bn.eps))
    holder = nn.Sequential(bn)
    make_switchable(holder, RS)
    sbn = holder[0]
    assert isinstance(sbn, SwitchableBatchNorm2d) and isinstance(sbn.act, nn.Hardswish)
    assert isinstance(sbn.drop, nn.Dropout)
    assert list(holder.state_dict()) == [f"0.bns.{k}.{p}" for k in range(2) for p in
                                         ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    holder.eval()
    assert torch.equal(holder(torch.nn.functional.interpolate(x, size=48)),
                       nn.functional.hardswish(nn.functional.batch_norm(
                           torch.nn.functional.interpolate(x, size=48), bn.running_mean, bn.running_var,
                           bn.weight, bn.bias, False, 0.0, bn.eps)))
    plain = to_single_resolution(holder, 48)[0]
    assert type(plain) is BatchNormAct2d and isinstance(plain.act, nn.Hardswish)
    assert torch.equal(plain(x), want)


@needs_timm
def test_bn_interpolation_for_batchnormact():
    """BN interpolation (paper 4.3) for a BatchNormAct2d model: an untrained size gets the linear
    blend of its neighbours' sets, then the activation."""
    model = create_model("timm:mobilenetv3_small_100", (64, 32), num_classes=3)
    _randomise_norms(model, 4)
    set_interpolation(model, True)
    model.eval()
    sbn = [s for s in switchable_bns(model) if s.kind != norms.PLAIN_BN][0]
    x = torch.randn(1, sbn.num_features, 4, 4)
    a, b = sbn.bns
    w, bias = (a.weight + b.weight) / 2, (a.bias + b.bias) / 2
    m, v = (a.running_mean + b.running_mean) / 2, (a.running_var + b.running_var) / 2
    sbn.plan = norms.bn_plan(sbn.resolutions, 48, interpolate=True)
    want = sbn.act(nn.functional.batch_norm(x, m, v, w, bias, False, 0.0, sbn.eps))
    assert torch.allclose(sbn(x), want, atol=1e-6)
    y = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model(y), to_single_resolution(model, 48)(y), atol=1e-5)


@pytest.mark.parametrize("make,needle", [
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4)),
     "module 1 is a GroupNorm (torch.nn.modules.normalization.GroupNorm)"),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm([4, 6, 6])), "module 1 is a LayerNorm"),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4)), "module 1 is a SyncBatchNorm"),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), type("MyBN", (nn.BatchNorm2d,), {})(4)), "module 1 is a MyBN"),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False)), "without affine parameters"),
])
def test_unsupported_norms_are_refused_in_one_line(make, needle):
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(norms.UnsupportedNormError) as e:
        make_switchable(model, RS)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # nothing replaced


@needs_timm
def test_unsupported_timm_model_is_refused_naming_module_and_class():
    with pytest.raises(norms.UnsupportedNormError,
                       match=r"timm:convnext_atto: module stem.1 is a LayerNorm2d \(timm.layers.norm.LayerNorm2d\)"):
        create_model("timm:convnext_atto", RS, num_classes=3)


@needs_timm
def test_unregistered_timm_name_is_built_from_timms_own_facts():
    spec = archs.get("timm:semnasnet_075")
    assert not spec.registered and spec.head == "classifier" and spec.source == "timm"
    model = create_model("timm:semnasnet_075", RS, num_classes=3)
    assert param_counts(model)["resolutions"] == 2
    with pytest.raises(ValueError, match="timm has no model 'no_such_net'"):
        archs.get("timm:no_such_net")


def test_checkpoint_validation_reads_the_registry(tmp_path):
    """The classifier whose outputs must match class_names is the one the registry names (here
    DenseNet's ``classifier``, neither ``classifier.1`` nor ``fc``), and an unknown name is refused."""
    from rsnet_edge.checkpoint import CheckpointError, validate_checkpoint

    model = create_model("densenet121", RS, num_classes=3)
    ck = {"format": "rsnet-edge-checkpoint", "version": 1, "arch": "densenet121", "arch_args": {},
          "resolutions": list(RS), "class_names": ["a", "b"], "mean": [0.5] * 3, "std": [0.25] * 3,
          "crop_pct": 0.875, "state_dict": model.state_dict()}
    with pytest.raises(CheckpointError, match="class_names has 2 names but the classifier has 3 outputs"):
        validate_checkpoint(ck)
    ck["class_names"] = ["a", "b", "c"]
    validate_checkpoint(ck)
    with pytest.raises(CheckpointError, match="unknown architecture 'vgg16'"):
        validate_checkpoint(dict(ck, arch="vgg16"))
