"""Resolution Switchable Networks: torchvision backbones with one private BatchNorm per resolution.

Every ``nn.BatchNorm2d`` of a torchvision architecture is replaced by a :class:`SwitchableBatchNorm2d`
holding S ordinary ``BatchNorm2d`` (affine + running statistics), one per training resolution; conv
and FC weights stay shared (paper 3.1, Eq. 3). Module names therefore match torchvision's, and a
single-resolution state dict (torchvision's, or any BN CNN of the same layout) can seed every BN set
(:func:`load_single_state_dict`).

The active BN set follows the input: a forward pre-hook on the root module reads the input's spatial
size and switches every switchable BN to that resolution's set. A size that was not trained is an
error unless interpolation is asked for (``set_interpolation(model, True)`` or
``set_resolution(model, r, interpolate=True)``), in which case BN parameters and statistics are
linearly interpolated between the two nearest trained resolutions (paper 4.3). Outside the trained
range the nearest set is used as it is (no extrapolation: extrapolated variances can go negative).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

DEFAULT_RESOLUTIONS = (224, 192, 160, 128, 96)

# architecture name -> (torchvision builder, constructor arguments we accept besides num_classes)
ARCHS = {
    "mobilenet_v2": (tvm.mobilenet_v2, ("width_mult",)),
    "resnet18": (tvm.resnet18, ()),
    "resnet50": (tvm.resnet50, ()),
}


class ResolutionError(ValueError):
    """An input size the model was not trained for (and interpolation was not asked for)."""


@dataclass(frozen=True)
class BNPlan:
    """How to obtain the BN set for one resolution: ``(1 - t) * set[lo] + t * set[hi]``.

    ``lo`` and ``hi`` are indices into the resolutions (highest first), so ``set[lo]`` belongs to the
    larger neighbouring resolution and ``set[hi]`` to the smaller one."""
    resolution: int
    lo: int
    hi: int
    t: float

    @property
    def exact(self) -> bool:
        return self.lo == self.hi or self.t == 0.0


def normalize_resolutions(resolutions: Iterable[int]) -> tuple[int, ...]:
    rs = tuple(int(r) for r in resolutions)
    if not rs:
        raise ValueError("at least one resolution is needed")
    if any(r <= 0 for r in rs):
        raise ValueError(f"resolutions must be positive, got {rs}")
    if len(set(rs)) != len(rs):
        raise ValueError(f"resolutions must be distinct, got {rs}")
    return tuple(sorted(rs, reverse=True))


def bn_plan(resolutions: Sequence[int], r: int, interpolate: bool = False) -> BNPlan:
    """Which trained BN set(s) serve resolution ``r`` (``resolutions`` highest first)."""
    r = int(r)
    if r in resolutions:
        i = resolutions.index(r)
        return BNPlan(r, i, i, 0.0)
    if not interpolate:
        raise ResolutionError(f"resolution {r} was not trained (trained: {list(resolutions)}); "
                              f"ask for BN interpolation to serve it")
    if r > resolutions[0]:
        return BNPlan(r, 0, 0, 0.0)
    if r < resolutions[-1]:
        last = len(resolutions) - 1
        return BNPlan(r, last, last, 0.0)
    for i in range(len(resolutions) - 1):
        hi_r, lo_r = resolutions[i], resolutions[i + 1]
        if lo_r < r < hi_r:
            # weight on the larger resolution's set is (r - lo_r) / (hi_r - lo_r)
            t = (hi_r - r) / (hi_r - lo_r)
            return BNPlan(r, i, i + 1, t)
    raise AssertionError("unreachable")


class SwitchableBatchNorm2d(nn.Module):
    """S private BatchNorm2d, one per resolution; shares nothing with the other sets."""

    def __init__(self, num_features: int, resolutions: Sequence[int], eps: float = 1e-5,
                 momentum: float | None = 0.1):
        super().__init__()
        self.num_features = num_features
        self.resolutions = normalize_resolutions(resolutions)
        self.eps = eps
        self.bns = nn.ModuleList(nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)
                                 for _ in self.resolutions)
        self.plan = BNPlan(self.resolutions[0], 0, 0, 0.0)

    def extra_repr(self) -> str:
        return f"{self.num_features}, resolutions={list(self.resolutions)}, active={self.plan.resolution}"

    @torch.no_grad()
    def params_for(self, plan: BNPlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weight, bias, running_mean, running_var) of a resolution, interpolated if needed."""
        a, b, t = self.bns[plan.lo], self.bns[plan.hi], plan.t

        def mix(x, y):
            return x.detach().clone() if plan.exact else torch.lerp(x.detach(), y.detach(), t)

        return (mix(a.weight, b.weight), mix(a.bias, b.bias),
                mix(a.running_mean, b.running_mean), mix(a.running_var, b.running_var))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        if plan.exact:
            return self.bns[plan.lo](x)
        if self.training:
            raise ResolutionError(f"resolution {plan.resolution} is served by interpolated BN, "
                                  f"which is for evaluation only")
        w, b, m, v = self.params_for(plan)
        return F.batch_norm(x, m, v, w, b, False, 0.0, self.eps)


# ------------------------------------------------------------------------ model level
def switchable_bns(model: nn.Module) -> list[SwitchableBatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]


def model_resolutions(model: nn.Module) -> tuple[int, ...]:
    bns = switchable_bns(model)
    if not bns:
        raise TypeError("not an RS-Net: the model has no SwitchableBatchNorm2d")
    return bns[0].resolutions


def set_interpolation(model: nn.Module, enabled: bool = True) -> None:
    """Allow (or forbid) untrained input sizes, served by interpolated BN."""
    model.rs_interpolate = bool(enabled)


def set_resolution(model: nn.Module, r: int, interpolate: bool | None = None) -> BNPlan:
    """Switch every BN of the model to the set of resolution ``r``."""
    if interpolate is None:
        interpolate = getattr(model, "rs_interpolate", False)
    plan = bn_plan(model_resolutions(model), r, interpolate)
    for bn in switchable_bns(model):
        bn.plan = plan
    return plan


def _follow_input_size(module: nn.Module, args: tuple) -> None:
    x = args[0]
    h, w = x.shape[-2], x.shape[-1]
    if h != w:
        raise ResolutionError(f"RS-Nets take square inputs; got {h}x{w}")
    if getattr(module, "rs_current", None) != int(h):
        set_resolution(module, int(h))
        module.rs_current = int(h)


def _replace_bns(parent: nn.Module, resolutions: tuple[int, ...]) -> None:
    for name, child in list(parent.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            sbn = SwitchableBatchNorm2d(child.num_features, resolutions, child.eps, child.momentum)
            for bn in sbn.bns:
                bn.load_state_dict(child.state_dict())
            setattr(parent, name, sbn)
        else:
            _replace_bns(child, resolutions)


def make_switchable(model: nn.Module, resolutions: Sequence[int]) -> nn.Module:
    """Replace every BatchNorm2d of ``model`` (in place) by a SwitchableBatchNorm2d whose S sets all
    start as copies of the original BN, and make the active set follow the input size."""
    if switchable_bns(model):
        raise TypeError("model is already an RS-Net")
    _replace_bns(model, normalize_resolutions(resolutions))
    model.rs_interpolate = False
    model.rs_current = None
    model.register_forward_pre_hook(_follow_input_size)
    return model


def build_single(arch: str, num_classes: int = 1000, **arch_args) -> nn.Module:
    """The plain (single-resolution) torchvision model an RS-Net is made from."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    builder, allowed = ARCHS[arch]
    bad = set(arch_args) - set(allowed)
    if bad:
        raise ValueError(f"{arch} does not take {sorted(bad)} (it takes {list(allowed)})")
    return builder(weights=None, num_classes=num_classes, **arch_args)


def create_model(arch: str, resolutions: Sequence[int] = DEFAULT_RESOLUTIONS, num_classes: int = 1000,
                 **arch_args) -> nn.Module:
    """An RS-Net: torchvision ``arch`` with one private BN set per resolution."""
    return make_switchable(build_single(arch, num_classes, **arch_args), resolutions)


@torch.no_grad()
def load_single_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Seed an RS-Net from a single-resolution state dict: shared weights copied, and every BN set
    starts from the single model's BN."""
    own = model.state_dict()
    expanded: dict[str, torch.Tensor] = {}
    sbn_names = {n for n, m in model.named_modules() if isinstance(m, SwitchableBatchNorm2d)}
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in sbn_names:
            n = len(dict(model.named_modules())[prefix].bns)
            for k in range(n):
                expanded[f"{prefix}.bns.{k}.{leaf}"] = value
        else:
            expanded[key] = value
    missing = sorted(set(own) - set(expanded))
    unexpected = sorted(set(expanded) - set(own))
    if missing or unexpected:
        raise ValueError(f"state dict does not fit this RS-Net: missing keys {missing[:3]}, "
                         f"unexpected keys {unexpected[:3]}")
    model.load_state_dict(expanded)


@torch.no_grad()
def to_single_resolution(model: nn.Module, r: int, interpolate: bool | None = None) -> nn.Module:
    """A plain torchvision model (ordinary BatchNorm2d) holding resolution ``r``'s BN set:
    exactly what an individually trained network of that resolution would look like."""
    if interpolate is None:
        interpolate = getattr(model, "rs_interpolate", False)
    plan = bn_plan(model_resolutions(model), r, interpolate)
    single = copy.deepcopy(model)
    single._forward_pre_hooks.clear()
    for attr in ("rs_interpolate", "rs_current"):
        if hasattr(single, attr):
            delattr(single, attr)

    def replace(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if isinstance(child, SwitchableBatchNorm2d):
                bn = nn.BatchNorm2d(child.num_features, eps=child.eps)
                w, b, m, v = child.params_for(plan)
                bn.weight.copy_(w)
                bn.bias.copy_(b)
                bn.running_mean.copy_(m)
                bn.running_var.copy_(v)
                bn.num_batches_tracked.copy_(child.bns[plan.lo].num_batches_tracked)
                setattr(parent, name, bn)
            else:
                replace(child)

    replace(single)
    return single.eval() if not model.training else single


# ------------------------------------------------------------------------------ facts
def bn_affine_params(model: nn.Module) -> int:
    """Affine parameters of ONE BN set (gamma + beta of every BN)."""
    return sum(2 * bn.num_features for bn in switchable_bns(model))


def param_counts(model: nn.Module) -> dict[str, int]:
    """Parameter counts: total = single model + (S - 1) x (BN affine parameters of one set)."""
    total = sum(p.numel() for p in model.parameters())
    s = len(model_resolutions(model))
    per_set = bn_affine_params(model)
    return {"total": total, "single": total - (s - 1) * per_set, "bn_per_resolution": per_set,
            "resolutions": s}
