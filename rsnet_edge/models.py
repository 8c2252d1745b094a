"""Resolution Switchable Networks: any registered BatchNorm CNN with one private BatchNorm per resolution.

Every supported normalisation module of an architecture (``nn.BatchNorm2d``, timm's
``BatchNormAct2d``: :mod:`rsnet_edge.norms`) is replaced by a :class:`SwitchableBatchNorm2d` holding S
ordinary ``BatchNorm2d`` (affine + running statistics), one per training resolution; conv and FC
weights stay shared (paper 3.1, Eq. 3). Module names therefore match the source model's
(torchvision's, timm's), and a single-resolution state dict of the same layout can seed every BN set
(:func:`load_single_state_dict`). Which architectures exist, and how each is built, is the registry
:mod:`rsnet_edge.archs`.

The active BN set follows the input: a forward pre-hook on the root module reads the input's spatial
size and switches every switchable BN to that resolution's set. A size that was not trained is an
error unless interpolation is asked for (``set_interpolation(model, True)`` or
``set_resolution(model, r, interpolate=True)`` for size r), in which case BN parameters and statistics are
linearly interpolated between the two nearest trained resolutions (paper 4.3). Outside the trained
range the nearest set is used as it is (no extrapolation: extrapolated variances can go negative).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .norms import (BNPlan, ResolutionError, SwitchableBatchNorm2d, UnsupportedNormError,  # noqa: F401
                    bn_plan, check_norms, kind_of, normalize_resolutions, single_from, switchable_from)

DEFAULT_RESOLUTIONS = (224, 192, 160, 128, 96)


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


def _replace_norms(parent: nn.Module, resolutions: tuple[int, ...]) -> None:
    for name, child in list(parent.named_children()):
        if kind_of(child) is not None:
            setattr(parent, name, switchable_from(child, resolutions))
        else:
            _replace_norms(child, resolutions)


def make_switchable(model: nn.Module, resolutions: Sequence[int]) -> nn.Module:
    """Replace every normalisation module of ``model`` (in place) by a SwitchableBatchNorm2d whose S
    sets all start as copies of the original BN, and make the active set follow the input size. A
    normalisation rsnet-edge cannot make switchable is refused (UnsupportedNormError, one line)
    before anything is changed."""
    check_norms(model)
    _replace_norms(model, normalize_resolutions(resolutions))
    model.rs_interpolate = False
    model.rs_allowed = None
    model.register_forward_pre_hook(_follow_input_size)
    return model


def build_single(arch: str, num_classes: int = 1000, **arch_args) -> nn.Module:
    """The plain (single-resolution) model an RS-Net is made from (:func:`rsnet_edge.archs.build`)."""
    # the registry is imported when a model is built, not with the package: ``python -m
    # rsnet_edge.archs`` then runs that module once (runpy warns about a module imported before it)
    from . import archs
    return archs.build(arch, num_classes, **arch_args)


def create_model(arch: str, resolutions: Sequence[int] = DEFAULT_RESOLUTIONS, num_classes: int = 1000,
                 **arch_args) -> nn.Module:
    """An RS-Net: the registered architecture ``arch`` (``python -m rsnet_edge.archs``; ``timm:NAME``
    for a timm model) with one private BN set per resolution. The model remembers its name
    (``model.rs_arch``) for :func:`zero_init_residual`."""
    model = build_single(arch, num_classes, **arch_args)
    try:
        make_switchable(model, resolutions)
    except UnsupportedNormError as e:
        raise UnsupportedNormError(f"{arch}: {e}") from None
    model.rs_arch = arch
    return model


def head_name(model: nn.Module) -> str:
    """Name of the classifier: the model's last ``nn.Linear`` (``classifier.1`` / ``fc``)."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("the model has no nn.Linear classifier")
    return linears[-1]


#: flags by which torchvision and timm blocks say they add their input to their output
RESIDUAL_FLAGS = ("use_res_connect", "apply_residual", "has_skip", "use_shortcut")
#: blocks that always add a (possibly projected) shortcut: torchvision's and timm's ResNet blocks,
#: torchvision's RegNet block, timm's RegNet block
RESIDUAL_BLOCKS = ("BasicBlock", "Bottleneck", "ResBottleneckBlock")
#: children of a block that are the shortcut (or gate it), not the residual branch
SHORTCUTS = ("downsample", "shortcut", "proj", "se")


def residual_block_norms(model: nn.Module) -> list[nn.Module]:
    """The norm that ends the residual branch of each residual block (registry rule
    ``"rsnet_edge.models:residual_block_norms"``): in every block that adds its input to its output
    (a flag of :data:`RESIDUAL_FLAGS` set, or a class of :data:`RESIDUAL_BLOCKS`), the last
    normalisation module registered outside its shortcut (:data:`SHORTCUTS`)."""
    out = []
    for m in model.modules():
        if not (any(getattr(m, f, False) is True for f in RESIDUAL_FLAGS)
                or type(m).__name__ in RESIDUAL_BLOCKS):
            continue
        norms, inside = [], ()
        for name, sub in m.named_modules():
            if (name and name.split(".")[0] in SHORTCUTS) or (inside and name.startswith(inside)):
                continue
            if isinstance(sub, SwitchableBatchNorm2d) or kind_of(sub) is not None:
                norms.append(sub)
                inside = name + "."                   # not the S BatchNorm2d a switchable one holds
        if norms:
            out.append(norms[-1])
    return out


@torch.no_grad()
def zero_init_residual(model: nn.Module, arch: str | None = None) -> int:
    """Set gamma of the last BN (every set) of each residual block to 0, so every block starts as
    the identity (torchvision's ``zero_init_residual`` for ResNets, here for every architecture
    whose registry entry names a rule; ``arch`` defaults to the name :func:`create_model` gave the
    model). Returns how many BNs were zeroed; an architecture without residual blocks is a
    ValueError."""
    from . import archs      # as in build_single
    arch = arch or getattr(model, "rs_arch", None)
    if arch is None:
        raise TypeError("zero_init_residual: pass arch= (the model was not made by create_model)")
    rule = archs.get(arch).zero_init
    if rule is None:
        raise ValueError(f"{arch} has no residual blocks to start as the identity")
    n = 0
    for last in archs.load_attr(rule)(model):
        for bn in (last.bns if isinstance(last, SwitchableBatchNorm2d) else [last]):
            nn.init.zeros_(bn.weight)
        n += 1
    return n


def _load_expanded(model: nn.Module, expanded: dict[str, torch.Tensor], reinit_head: bool,
                   source: dict[str, torch.Tensor]) -> list[str]:
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
    # module versions (``_metadata``): the model's own, then the source's where it names the same
    # module (torchvision's MNASNet refuses a state dict without its version)
    meta = dict(getattr(own, "_metadata", {}))
    meta.update({k: v for k, v in getattr(source, "_metadata", {}).items() if k in meta})
    loaded = OrderedDict(expanded)
    loaded._metadata = meta
    model.load_state_dict(loaded)
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
    return _load_expanded(model, expanded, reinit_head, state_dict)


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
    return _load_expanded(model, expanded, reinit_head, state_dict)


@torch.no_grad()
def to_single_resolution(model: nn.Module, r: int, interpolate: bool | None = None) -> nn.Module:
    """The plain source model (its own norm classes: BatchNorm2d, BatchNormAct2d ...) holding
    resolution ``r``'s BN set: exactly what an individually trained network of that resolution
    would look like."""
    if interpolate is None:
        interpolate = getattr(model, "rs_interpolate", False)
    plan = bn_plan(model_resolutions(model), r, interpolate)
    single = copy.deepcopy(model)
    single._forward_pre_hooks.clear()
    for attr in ("rs_interpolate", "rs_allowed", "rs_arch"):
        if hasattr(single, attr):
            delattr(single, attr)

    def replace(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if isinstance(child, SwitchableBatchNorm2d):
                setattr(parent, name, single_from(child, plan))
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
