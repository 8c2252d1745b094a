"""Checkpoint -> one eval-mode ``nn.Module`` per served resolution, shared by every backend.

The BatchNorm of each resolution is either folded into the preceding conv per entry point or kept
as a per-channel affine op after a SHARED conv (``encoding=``):

``folded``  BN folded into every conv, per entry. Fastest; ~S x the size. What ``--weights shared``
            lowers too (then packed for fold at load: converters/compact.py, converters/onnx.py,
            converters/coreml.py).
``affine``  every BN becomes a depthwise-1x1 affine after its (shared) conv. Smallest; one extra
            per-channel pass per BN at run time.
``hybrid``  ``affine`` for the big dense convs, but BN folded per entry into depthwise convs and
            other convs whose weights are tiny (< ``SMALL_CONV``).

With ``fold_budget=b`` (``affine`` only) the convs with the best ratio (activation elements saved)
/ (weight elements duplicated) are folded greedily until the duplicated weights reach ``b`` x the
shared weight bytes (see bench/encodings.py). What each ``--weights`` form ships: docs/formats.md.
The converter pipeline and CLI that use this module: converters/pipeline.py.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from rsnet_edge import backends
from rsnet_edge.checkpoint import model_from_checkpoint
from rsnet_edge.manifest import DEFAULT_ENTRY, entry_name
from rsnet_edge.models import normalize_resolutions, to_single_resolution

#: --weights -> the encoding lowered (shared: the folded program, packed for fold at load afterwards)
WEIGHTS = {"shared": "folded", "affine": "affine", "folded": "folded"}
ENCODINGS = ("folded", "affine", "hybrid")
SMALL_CONV = 4096          # hybrid: convs with fewer weight elements than this are folded per entry
PARITY_TOL = 1e-4          # encoded module vs plain BN module, checked at prepare time


class ConversionError(RuntimeError):
    """A conversion that cannot go on (bad arguments, unsupported option, parity failure)."""


class BackendError(ConversionError):
    """An unexpected exception inside a backend's lowering step (the original is ``__cause__``)."""

    def __init__(self, backend: str, cause: BaseException):
        self.backend = backend
        text = str(cause).strip()
        first = text.splitlines()[0].strip() if text else type(cause).__name__
        super().__init__(f"{backend} conversion failed: {first}")


def default_entry(backend: str, default_resolution: int) -> str:
    """The name under which ``backend`` serves the default (highest) resolution: ``forward``, or
    where the registry says the default is a pointer (Core ML's default function) ``forward_<r>``."""
    return entry_name(default_resolution) if backends.get(backend).default_is_pointer else DEFAULT_ENTRY


# ------------------------------------------------------------------------------------ encoding
class ChannelAffine(nn.Module):
    """``y[:, c] = x[:, c] * scale[c] + shift[c]`` as a depthwise 1x1 convolution.

    Written as a conv (not mul/add) on purpose: the backends fuse a mul/add after a conv into the
    conv's weights (which would make them private again), but keep a conv as a conv."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        c = scale.numel()
        self.conv = nn.Conv2d(c, c, 1, groups=c, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(scale.reshape(c, 1, 1, 1))
            self.conv.bias.copy_(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@dataclass
class ConvBN:
    parent: nn.Module
    conv_attr: str
    bn_attr: str
    name: str                 # qualified name of the conv

    @property
    def conv(self) -> nn.Conv2d:
        return getattr(self.parent, self.conv_attr)

    @property
    def bn(self) -> nn.BatchNorm2d:
        return getattr(self.parent, self.bn_attr)


def conv_bn_pairs(model: nn.Module) -> list[ConvBN]:
    """Every Conv2d directly followed (in registration order, as torchvision builds MobileNetV2 and
    ResNet) by the BatchNorm2d that normalises its output. Every BN of the model must be covered."""
    pairs = []
    for pname, parent in model.named_modules():
        kids = list(parent.named_children())
        for (an, a), (bn_name, b) in zip(kids, kids[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and a.out_channels == b.num_features:
                pairs.append(ConvBN(parent, an, bn_name, f"{pname}.{an}" if pname else an))
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if n_bn != len(pairs):
        raise ConversionError(f"found {n_bn} BatchNorm2d but only {len(pairs)} directly follow a conv; "
                              f"this architecture's layout is not supported by the BN encoder")
    return pairs


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    s = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
    return s, bn.bias.detach() - bn.running_mean.detach() * s


def is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels


@torch.no_grad()
def conv_output_elements(model: nn.Module, resolution: int) -> dict[str, int]:
    """Output activation elements of every conv at one resolution (forward hooks on a copy)."""
    sizes: dict[str, int] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: sizes.__setitem__(n, o[0].numel()))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    finally:
        for h in hooks:
            h.remove()
    return sizes


def plan_folds(single: nn.Module, encoding: str, n_entries: int, resolution: int,
               fold_budget: float = 0.0) -> set[str]:
    """Names of the convs whose BN is folded per entry (the rest keep a shared weight + affine)."""
    pairs = conv_bn_pairs(single)
    if encoding == "folded":
        return {p.name for p in pairs}
    if encoding == "hybrid":
        return {p.name for p in pairs if is_depthwise(p.conv) or p.conv.weight.numel() < SMALL_CONV}
    if encoding != "affine":
        raise ConversionError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    if fold_budget <= 0 or n_entries < 2:
        return set()
    shared = sum(p.numel() for p in single.parameters())
    budget = fold_budget * shared
    acts = conv_output_elements(single, resolution)
    # extra weight elements if folded: (n-1) more private copies; saving: one pass over the output
    ranked = sorted(pairs, key=lambda p: acts[p.name] / p.conv.weight.numel(), reverse=True)
    chosen, spent = set(), 0.0
    for p in ranked:
        cost = (n_entries - 1) * p.conv.weight.numel()
        if spent + cost <= budget:
            chosen.add(p.name)
            spent += cost
    return chosen


@torch.no_grad()
def encode(single: nn.Module, folds: set[str]) -> nn.Module:
    """A copy of a plain-BN model with each BN folded (conv in ``folds``) or turned into a
    :class:`ChannelAffine` (conv weight kept bit-identical, so backends can share it)."""
    m = copy.deepcopy(single).eval()
    for p in conv_bn_pairs(m):
        conv, bn = p.conv, p.bn
        s, t = bn_scale_shift(bn)
        if p.name in folds:
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                            conv.padding, conv.dilation, conv.groups, bias=True,
                            padding_mode=conv.padding_mode)
            new.weight.copy_(conv.weight * s.reshape(-1, 1, 1, 1))
            new.bias.copy_(t + (conv.bias * s if conv.bias is not None else 0))
            setattr(p.parent, p.conv_attr, new)
            setattr(p.parent, p.bn_attr, nn.Identity())
        else:
            setattr(p.parent, p.bn_attr, ChannelAffine(s, t))
    return m.eval()


# ------------------------------------------------------------------------------- preparation
@dataclass
class Prepared:
    ckpt: dict[str, Any]
    model: nn.Module                      # the RS-Net (eval, BN interpolation allowed)
    resolutions: list[int]                # served, highest first
    weights: str                          # "shared" | "folded"
    encoding: str
    modules: dict[int, nn.Module]         # resolution -> encoded eval module (input NCHW float32)
    references: dict[int, nn.Module]      # resolution -> plain torchvision module (BN unfolded)
    folded_convs: int = 0
    total_convs: int = 0
    fold_budget: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    #: --dtype int8: resolution -> converters.quantize.QuantizedEntry (calibrated, converted module)
    quantized: dict[int, Any] = field(default_factory=dict)
    #: this program also holds the default entry (``forward``, the highest resolution); False for
    #: the per-resolution programs of a fold-at-load artifact other than the top one (:meth:`subset`)
    serves_default: bool = True

    @property
    def default_resolution(self) -> int:
        return self.resolutions[0]

    def entries(self) -> dict[str, tuple[int, nn.Module]]:
        """Entry-point name -> (resolution, module), the default entry ``forward`` last."""
        out = {entry_name(r): (r, self.modules[r]) for r in self.resolutions}
        if self.serves_default:
            out[DEFAULT_ENTRY] = (self.default_resolution, self.modules[self.default_resolution])
        return out

    def subset(self, resolution: int) -> "Prepared":
        """The program of one resolution (a fold-at-load artifact ships one per resolution); it
        holds the default entry too when ``resolution`` is the highest."""
        r = int(resolution)
        return dataclasses.replace(self, resolutions=[r], modules={r: self.modules[r]},
                                   references={r: self.references[r]},
                                   quantized={r: self.quantized[r]} if r in self.quantized else {},
                                   serves_default=r == self.default_resolution)

    def manifest_extra(self, backend: str) -> dict[str, Any]:
        return {"encoding": self.encoding, "fold_budget": self.fold_budget,
                "folded_convs": self.folded_convs, "convs": self.total_convs,
                "default_entry": default_entry(backend, self.default_resolution), **self.info}


def prepare(ckpt: dict[str, Any], resolutions: Sequence[int] | None = None, weights: str = "shared",
            encoding: str | None = None, fold_budget: float = 0.0, check: bool = True) -> Prepared:
    """Build the per-resolution modules of a validated checkpoint.

    ``resolutions``: a subset of the trained ones and/or extra ones served by interpolated BN
    (default: the trained ones). ``weights="shared"`` lowers the folded modules (every backend packs
    or rewrites them afterwards for fold at load)."""
    if weights not in WEIGHTS:
        raise ConversionError(f"--weights must be one of {sorted(WEIGHTS)}, got {weights!r}")
    if encoding is not None and weights != "affine":
        raise ConversionError(f"--encoding is for --weights affine (got --weights {weights})")
    enc = encoding or WEIGHTS[weights]
    if weights == "affine" and enc == "folded":
        raise ConversionError("--encoding folded is --weights folded")
    if enc not in ENCODINGS:
        raise ConversionError(f"unknown encoding {enc!r} (known: {', '.join(ENCODINGS)})")
    model = model_from_checkpoint(ckpt, interpolate=True)
    try:
        served = list(normalize_resolutions(resolutions or ckpt["resolutions"]))
    except ValueError as e:
        raise ConversionError(f"bad --resolutions: {e}") from None
    refs = {r: to_single_resolution(model, r, interpolate=True).eval() for r in served}
    folds = plan_folds(refs[served[0]], enc, len(served), served[0], fold_budget)
    modules = {r: encode(refs[r], folds) for r in served}
    if check:
        gen = torch.Generator().manual_seed(0)
        for r in served:
            x = torch.randn(1, 3, r, r, generator=gen)
            with torch.no_grad():
                ref, got = refs[r](x), modules[r](x)
            diff = (ref - got).abs().max().item()
            if not diff <= PARITY_TOL * max(1.0, ref.abs().max().item()):
                raise ConversionError(f"encoded module for {r} differs from the checkpoint by {diff:.3g}")
    n = len(conv_bn_pairs(refs[served[0]]))
    return Prepared(ckpt, model, served, weights, enc, modules, refs, folded_convs=len(folds),
                    total_convs=n, fold_budget=fold_budget)


def sample_input(resolution: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


