"""The switchable normalisation layer: S private BatchNorms (one per resolution) in place of one.

:class:`SwitchableBatchNorm2d` holds S ordinary ``nn.BatchNorm2d`` (affine + running statistics),
one per training resolution, and -- when the module it replaces applied more than batch norm -- that
module's own trailing ops, kept as they were. Which normalisation modules can be made switchable,
and what each computes after the batch norm, is the table :data:`NORMS` (keyed by the module's
qualified class name, so nothing here imports timm):

``torch.nn.BatchNorm2d``            batch norm
``timm.layers.norm_act.BatchNormAct2d``  batch norm, then its ``drop``, then its ``act``

Any other normalisation (LayerNorm, GroupNorm, a BatchNorm subclass not in the table, ...) is
refused in one line naming the module and its class (:func:`check_norms`). The state dict of a
switchable plain BatchNorm2d is ``<bn>.bns.<k>.<param>``; a BatchNormAct2d's keeps its trailing ops
under their own names (``<bn>.act...``), shared by every resolution.

Which BN set is active is a :class:`BNPlan` (:func:`bn_plan`): one trained set, or two neighbouring
sets blended linearly for an untrained size (paper 4.3).
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

PLAIN_BN = "torch.nn.modules.batchnorm.BatchNorm2d"


@dataclass(frozen=True)
class NormKind:
    """A normalisation module rsnet-edge can make switchable: its class (``module:Class``) and the
    names of its children applied after the batch norm, in order."""
    cls: str
    post: tuple[str, ...] = ()

    def load(self) -> type:
        module, _, attr = self.cls.partition(":")
        return getattr(importlib.import_module(module), attr)


#: qualified class name -> kind (exact classes only: a subclass may compute something else)
NORMS: dict[str, NormKind] = {
    PLAIN_BN: NormKind("torch.nn:BatchNorm2d"),
    "timm.layers.norm_act.BatchNormAct2d": NormKind("timm.layers.norm_act:BatchNormAct2d", ("drop", "act")),
}
#: torch's normalisation bases: a module of one of these whose exact class is not in NORMS is refused
_NORM_BASES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
               nn.CrossMapLRN2d, nn.RMSNorm)


class ResolutionError(ValueError):
    """An input size the model was not trained for (and interpolation was not asked for)."""


class UnsupportedNormError(ValueError):
    """A normalisation module rsnet-edge cannot make resolution-switchable."""


def qualname(m: nn.Module) -> str:
    return f"{type(m).__module__}.{type(m).__qualname__}"


def kind_of(m: nn.Module) -> NormKind | None:
    """The kind of a supported normalisation module (None for anything else)."""
    return NORMS.get(qualname(m))


def is_norm(m: nn.Module) -> bool:
    """A normalisation module of any kind, supported or not: one of torch's norm classes, or a
    module whose class name says Norm and which holds parameters or buffers itself (timm's
    ``FrozenBatchNorm2d``, ``EvoNorm2d*``, ``GlobalResponseNorm`` ...; not a wrapper such as
    torchvision's ``Conv2dNormActivation``)."""
    if isinstance(m, _NORM_BASES):
        return True
    return "Norm" in type(m).__name__ and bool(m._parameters or m._buffers)


def check_norms(model: nn.Module) -> None:
    """Refuse (one line) a model with a normalisation module that cannot be made switchable."""
    supported = ", ".join(k.cls.replace(":", ".") for k in NORMS.values())
    for name, m in model.named_modules():
        if isinstance(m, SwitchableBatchNorm2d):
            raise TypeError("model is already an RS-Net")
        kind = kind_of(m)
        if kind is None and is_norm(m):
            raise UnsupportedNormError(f"module {name} is a {type(m).__name__} ({qualname(m)}); rsnet-edge "
                                       f"makes only these normalisations resolution-switchable: {supported}")
        if kind is not None and not (m.affine and m.track_running_stats):
            raise UnsupportedNormError(f"module {name} is a {type(m).__name__} without affine parameters or "
                                       f"running statistics; rsnet-edge needs both")


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
    """S private BatchNorm2d, one per resolution; shares nothing with the other sets. ``post``: the
    replaced module's trailing ops (name -> module, applied in order after the batch norm)."""

    def __init__(self, num_features: int, resolutions: Sequence[int], eps: float = 1e-5,
                 momentum: float | None = 0.1, kind: str = PLAIN_BN,
                 post: dict[str, nn.Module] | None = None):
        super().__init__()
        if kind not in NORMS:
            raise UnsupportedNormError(f"unknown normalisation kind {kind!r}")
        self.num_features = num_features
        self.resolutions = normalize_resolutions(resolutions)
        self.eps = eps
        self.momentum = momentum
        self.kind = kind
        self.bns = nn.ModuleList(nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)
                                 for _ in self.resolutions)
        want = NORMS[kind].post
        post = dict(post or {})
        if tuple(post) != want:
            raise ValueError(f"{kind} needs the trailing ops {list(want)}, got {list(post)}")
        for name, m in post.items():
            self.add_module(name, m)
        self.post = want
        self.plan = BNPlan(self.resolutions[0], 0, 0, 0.0)

    def extra_repr(self) -> str:
        kind = "" if self.kind == PLAIN_BN else f", kind={self.kind.rsplit('.', 1)[-1]}"
        return f"{self.num_features}, resolutions={list(self.resolutions)}, active={self.plan.resolution}{kind}"

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
            y = self.bns[plan.lo](x)
        elif self.training:
            raise ResolutionError(f"resolution {plan.resolution} is served by interpolated BN, "
                                  f"which is for evaluation only")
        else:
            w, b, m, v = self.params_for(plan)
            y = F.batch_norm(x, m, v, w, b, False, 0.0, self.eps)
        for name in self.post:
            y = getattr(self, name)(y)
        return y


def switchable_from(m: nn.Module, resolutions: Sequence[int]) -> SwitchableBatchNorm2d:
    """A switchable copy of a supported norm module: every set starts as ``m``'s BN; its trailing
    ops are moved over (``m`` is being replaced)."""
    name = qualname(m)
    kind = NORMS[name]
    sbn = SwitchableBatchNorm2d(m.num_features, resolutions, m.eps, m.momentum, name,
                                {p: getattr(m, p) for p in kind.post})
    bn_state = {k: v for k, v in m.state_dict().items() if "." not in k}
    for bn in sbn.bns:
        bn.load_state_dict(bn_state)
    return sbn


@torch.no_grad()
def single_from(sbn: SwitchableBatchNorm2d, plan: BNPlan) -> nn.Module:
    """The plain module (the replaced class: BatchNorm2d, BatchNormAct2d ...) holding one BN set
    (interpolated if ``plan`` says so) and copies of the trailing ops."""
    bn = NORMS[sbn.kind].load()(sbn.num_features, eps=sbn.eps, momentum=sbn.momentum)
    w, b, m, v = sbn.params_for(plan)
    bn.weight.copy_(w)
    bn.bias.copy_(b)
    bn.running_mean.copy_(m)
    bn.running_var.copy_(v)
    bn.num_batches_tracked.copy_(sbn.bns[plan.lo].num_batches_tracked)
    for name in sbn.post:
        setattr(bn, name, copy.deepcopy(getattr(sbn, name)))
    return bn


def post_ops(m: nn.Module) -> nn.Module | None:
    """What a supported plain norm module applies after its batch norm (None: nothing), as one
    module: converters keep it when the batch norm itself is folded or turned into an affine op."""
    kind = kind_of(m)
    if kind is None:
        raise UnsupportedNormError(f"{qualname(m)} is not a supported normalisation")
    ops = [getattr(m, n) for n in kind.post if not isinstance(getattr(m, n), nn.Identity)]
    if not ops:
        return None
    return ops[0] if len(ops) == 1 else nn.Sequential(*ops)


def norm_affine_params(model: nn.Module) -> int:
    """gamma + beta elements of every supported norm of a plain model (one BN set)."""
    return sum(2 * m.num_features for m in model.modules() if kind_of(m) is not None)
