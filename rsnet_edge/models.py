"""Resolution Switchable Networks: torchvision backbones with one private BatchNorm per resolution.

Every ``nn.BatchNorm2d`` of a torchvision architecture is replaced by a :class:`SwitchableBatchNorm2d`
holding S ordinary ``BatchNorm2d`` (affine + running statistics), one per training resolution; conv
and FC weights stay shared (paper 3.1, Eq. 3). Module names therefore match torchvision's, and a
single-resolution state dict (torchvision's, or any BN CNN of the same layout) can seed every BN set
(:func:`load_single_state_dict`).

The active BN set follows the input: a forward pre-hook on the root module reads the input's spatial
size and switches every switchable BN to that resolution's set. A size that was not trained is an
error unless interpolation is asked for (``set_interpolation(model, True)`` or
``set_resolution(model, r, interpolate=True)`` for size r), in which case BN parameters and statistics are
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
    "mobilenet_v2": (tvm.mobilenet_v2, ("width_mult", "dropout")),
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
    """Distinct resolutions, highest first; each must pass :func:`rsnet_edge.manifest.check_resolution`
    (the one rule: an integer in 16..1024)."""
    from .manifest import check_resolution

    rs = tuple(check_resolution(r) for r in resolutions)
    if not rs:
        raise ValueError("at least one resolution is needed")
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
    """Allow (or forbid) untrained input sizes, served by interpolated BN. Forbidding also revokes
    a size that ``set_resolution(..., interpolate=True)`` had allowed: the next forward at an
    untrained size is an error again."""
    model.rs_interpolate = bool(enabled)
    model.rs_allowed = None


def set_resolution(model: nn.Module, r: int, interpolate: bool | None = None) -> BNPlan:
    """Switch every BN of the model to the set of resolution ``r``. A forward pass switches again
    to whatever its input size needs; ``interpolate=True`` lets inputs of size ``r`` be served by
    interpolated BN even while interpolation is otherwise off."""
    explicit = interpolate is True
    if interpolate is None:
        interpolate = getattr(model, "rs_interpolate", False)
    plan = bn_plan(model_resolutions(model), r, interpolate)
    for bn in switchable_bns(model):
        bn.plan = plan
    model.rs_allowed = plan.resolution if explicit and not plan.exact else None
    return plan


def _follow_input_size(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook: the active BN plan is derived from THIS input's size and the model's
    interpolation setting on every call (nothing cached), so an earlier ``set_resolution`` or an
    earlier interpolated size can never serve an input of another size."""
    x = args[0]
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h != w:
        raise ResolutionError(f"RS-Nets take square inputs; got {h}x{w}")
    bns = switchable_bns(module)
    interpolate = getattr(module, "rs_interpolate", False) or getattr(module, "rs_allowed", None) == h
    plan = bn_plan(bns[0].resolutions, h, interpolate)
    if any(bn.plan != plan for bn in bns):
        for bn in bns:
            bn.plan = plan


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
    model.rs_allowed = None
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


def head_name(model: nn.Module) -> str:
    """Name of the classifier: the model's last ``nn.Linear`` (``classifier.1`` / ``fc``)."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("the model has no nn.Linear classifier")
    return linears[-1]


@torch.no_grad()
def zero_init_residual(model: nn.Module) -> int:
    """Set gamma of the last BN (every set) of each residual block to 0, so every block starts as
    the identity (torchvision's ``zero_init_residual`` for ResNets; here also MobileNetV2's inverted
    residuals with a skip connection). Returns how many BNs were zeroed."""
    from torchvision.models.mobilenetv2 import InvertedResidual
    from torchvision.models.resnet import BasicBlock, Bottleneck
    n = 0
    for m in model.modules():
        if isinstance(m, InvertedResidual) and m.use_res_connect:
            sbns = [b for b in m.conv.modules() if isinstance(b, SwitchableBatchNorm2d)]
            last = sbns[-1] if sbns else [b for b in m.conv.modules() if isinstance(b, nn.BatchNorm2d)][-1]
        elif isinstance(m, BasicBlock):
            last = m.bn2
        elif isinstance(m, Bottleneck):
            last = m.bn3
        else:
            continue
        for bn in (last.bns if isinstance(last, SwitchableBatchNorm2d) else [last]):
            nn.init.zeros_(bn.weight)
        n += 1
    return n


def _load_expanded(model: nn.Module, expanded: dict[str, torch.Tensor], reinit_head: bool) -> list[str]:
    """Load a state dict already laid out like ``model``'s. With ``reinit_head``, classifier
    tensors of another shape (another number of classes) are skipped and keep the model's fresh
    initialisation; their names are returned. Anything else that does not fit is a ValueError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(expanded))
    unexpected = sorted(set(expanded) - set(own))
    if missing or unexpected:
        raise ValueError(f"state dict does not fit this RS-Net: missing keys {missing[:3]}, "
                         f"unexpected keys {unexpected[:3]}")
    head = head_name(model)
    head_keys = {f"{head}.weight", f"{head}.bias"}
    skipped = []
    for k in own:
        if tuple(expanded[k].shape) == tuple(own[k].shape):
            continue
        if reinit_head and k in head_keys:
            skipped.append(k)
            expanded[k] = own[k]
            continue
        raise ValueError(f"state dict does not fit this RS-Net: {k} has shape {tuple(expanded[k].shape)}, "
                         f"the model {tuple(own[k].shape)}")
    model.load_state_dict(expanded)
    return skipped


def _sbn_prefixes(model: nn.Module) -> dict[str, SwitchableBatchNorm2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, SwitchableBatchNorm2d)}


@torch.no_grad()
def load_single_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor],
                           reinit_head: bool = False) -> list[str]:
    """Seed an RS-Net from a single-resolution state dict (torchvision's layout): shared weights
    copied, and every BN set starts from the single model's BN. With ``reinit_head`` a classifier
    of another size is left freshly initialised (its parameter names are returned)."""
    sbns = _sbn_prefixes(model)
    expanded: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in sbns:
            for k in range(len(sbns[prefix].bns)):
                expanded[f"{prefix}.bns.{k}.{leaf}"] = value
        else:
            expanded[key] = value
    return _load_expanded(model, expanded, reinit_head)


@torch.no_grad()
def load_rsnet_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], resolutions: Sequence[int],
                          reinit_head: bool = False) -> list[str]:
    """Seed an RS-Net from another RS-Net's state dict trained at ``resolutions`` (another list is
    fine): shared weights copied; each BN set of ``model`` is the source's set of the same
    resolution, or the source's sets interpolated to it (paper 4.3; the nearest set outside the
    source's range). ``reinit_head`` as in :func:`load_single_state_dict`."""
    src = normalize_resolutions(resolutions)
    sbns = _sbn_prefixes(model)
    expanded: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        head, _, leaf = key.rpartition(".")
        prefix, _, idx = head.rpartition(".bns.")
        if prefix not in sbns or not idx.isdigit():
            expanded[key] = value
    for prefix, sbn in sbns.items():
        for k, r in enumerate(sbn.resolutions):
            plan = bn_plan(src, r, interpolate=True)
            for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                lo, hi = f"{prefix}.bns.{plan.lo}.{leaf}", f"{prefix}.bns.{plan.hi}.{leaf}"
                if lo not in state_dict or hi not in state_dict:
                    continue  # reported as a missing key below
                x, y = state_dict[lo], state_dict[hi]
                expanded[f"{prefix}.bns.{k}.{leaf}"] = (x.clone() if plan.exact or not x.is_floating_point()
                                                        else torch.lerp(x, y, plan.t))
    return _load_expanded(model, expanded, reinit_head)


@torch.no_grad()
def to_single_resolution(model: nn.Module, r: int, interpolate: bool | None = None) -> nn.Module:
    """A plain torchvision model (ordinary BatchNorm2d) holding resolution ``r``'s BN set:
    exactly what an individually trained network of that resolution would look like."""
    if interpolate is None:
        interpolate = getattr(model, "rs_interpolate", False)
    plan = bn_plan(model_resolutions(model), r, interpolate)
    single = copy.deepcopy(model)
    single._forward_pre_hooks.clear()
    for attr in ("rs_interpolate", "rs_allowed"):
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
