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

Which BN folds into which conv follows the data flow (:func:`trace_pairing`): a BN folds when its
input is a conv's output that nothing else reads. Any other BN (DenseNet's pre-activation BN after a
concatenation) is a per-resolution :class:`ChannelAffine` in every encoding: its scale and shift are
the only per-resolution part, whatever reads its input stays shared.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from rsnet_edge import backends
from rsnet_edge.checkpoint import model_from_checkpoint
from rsnet_edge.manifest import DEFAULT_ENTRY, entry_name
from rsnet_edge.models import normalize_resolutions, to_single_resolution
from rsnet_edge.norms import post_ops

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
    """``y[:, c] = x[:, c] * scale[c] + shift[c]`` as a depthwise 1x1 convolution (then ``post``).

    Written as a conv (not mul/add) on purpose: the backends fuse a mul/add after a conv into the
    conv's weights (which would make them private again), but keep a conv as a conv."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, post: nn.Module | None = None):
        super().__init__()
        c = scale.numel()
        self.conv = nn.Conv2d(c, c, 1, groups=c, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(scale.reshape(c, 1, 1, 1))
            self.conv.bias.copy_(shift)
        self.post = post                  # what the replaced norm applied after it (None: nothing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y if self.post is None else self.post(y)


@dataclass
class ConvBN:
    """A conv and the BN that normalises its output, resolved in one model."""
    model: nn.Module
    name: str                 # qualified name of the conv
    bn_name: str              # qualified name of its BN

    @property
    def conv(self) -> nn.Conv2d:
        return self.model.get_submodule(self.name)

    @property
    def bn(self) -> nn.BatchNorm2d:
        return self.model.get_submodule(self.bn_name)


@dataclass(frozen=True)
class Pairing:
    """Which BN of a model folds into which conv (names), found once on the data flow
    (:func:`trace_pairing`); ``unpaired``: every other BN (a per-channel affine in every encoding)."""
    pairs: tuple[tuple[str, str], ...]
    unpaired: tuple[str, ...]

    def resolve(self, model: nn.Module) -> list[ConvBN]:
        """The pairs in ``model`` (any copy of the traced model, e.g. another resolution's)."""
        return [ConvBN(model, c, b) for c, b in self.pairs]


class _Consumers(TorchFunctionMode):
    """Counts, per tensor, the torch calls that read it and return a tensor (a shape query is not a
    consumer); keeps every tensor it saw alive so that ids are not reused during the trace."""

    def __init__(self, keep: list):
        super().__init__()
        self.uses: Counter = Counter()
        self.keep = keep

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) for t in tree_leaves(out)):
            for t in tree_leaves((args, kwargs or {})):
                if isinstance(t, torch.Tensor) and not isinstance(t, nn.Parameter):
                    self.uses[id(t)] += 1
                    self.keep.append(t)
        return out


@torch.no_grad()
def trace_pairing(model: nn.Module, resolution: int = 64) -> Pairing:
    """Pair each BN with a conv by following one forward pass (eval, one ``resolution`` input): the
    BN's input IS the conv's output and no other op reads that output (and each is called once).
    Registration order is not trusted: DenseNet's pre-activation BNs read a concatenation, and such
    a BN stays unpaired (kept as a per-resolution scale and shift after a shared input)."""
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    bns = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    produced: dict[int, str] = {}
    reads: dict[str, int] = {}
    calls: Counter = Counter()
    keep: list = []

    def conv_hook(name):
        def hook(mod, args, out):
            produced[id(out)] = name
            calls[name] += 1
            keep.append(out)
        return hook

    def bn_hook(name):
        def hook(mod, args):
            reads[name] = id(args[0])
            calls[name] += 1
            keep.append(args[0])
        return hook

    hooks = [m.register_forward_hook(conv_hook(n)) for n, m in convs.items()]
    hooks += [m.register_forward_pre_hook(bn_hook(n)) for n, m in bns.items()]
    was_training = model.training
    consumers = _Consumers(keep)
    try:
        with consumers:
            model.eval()(torch.zeros(1, 3, resolution, resolution))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    pairs, unpaired = [], []
    for b, bn in bns.items():
        c = produced.get(reads.get(b, -1))
        if (c is not None and consumers.uses[reads[b]] == 1 and calls[c] == 1 and calls[b] == 1
                and convs[c].out_channels == bn.num_features):
            pairs.append((c, b))
        else:
            unpaired.append(b)
    return Pairing(tuple(pairs), tuple(unpaired))


def conv_bn_pairs(model: nn.Module, resolution: int = 64) -> list[ConvBN]:
    """Every conv whose output only its BN reads, with that BN (:func:`trace_pairing`)."""
    return trace_pairing(model, resolution).resolve(model)


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
               fold_budget: float = 0.0, pairing: Pairing | None = None) -> set[str]:
    """Names of the convs whose BN is folded per entry (the rest keep a shared weight + affine)."""
    pairs = (pairing or trace_pairing(single, resolution)).resolve(single)
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


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


@torch.no_grad()
def encode(single: nn.Module, folds: set[str], pairing: Pairing | None = None) -> nn.Module:
    """A copy of a plain-BN model with each paired BN folded (conv in ``folds``) or turned into a
    :class:`ChannelAffine` (conv weight kept bit-identical, so backends can share it), and every
    unpaired BN a :class:`ChannelAffine`. What a norm applies after its batch norm (timm's
    BatchNormAct2d: drop, act) stays after it. ``pairing``: traced on ``single`` when not given."""
    pairing = pairing or trace_pairing(single)
    m = copy.deepcopy(single).eval()
    for p in pairing.resolve(m):
        conv, bn = p.conv, p.bn
        s, t = bn_scale_shift(bn)
        post = post_ops(bn)
        if p.name in folds:
            new = copy.deepcopy(conv)             # its own class: timm's Conv2dSame pads in forward
            new.weight = nn.Parameter(conv.weight * s.reshape(-1, 1, 1, 1))
            new.bias = nn.Parameter(t + (conv.bias * s if conv.bias is not None else 0))
            _set(m, p.name, new)
            _set(m, p.bn_name, post if post is not None else nn.Identity())
        else:
            _set(m, p.bn_name, ChannelAffine(s, t, post))
    for name in pairing.unpaired:
        bn = m.get_submodule(name)
        _set(m, name, ChannelAffine(*bn_scale_shift(bn), post_ops(bn)))
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
    references: dict[int, nn.Module]      # resolution -> plain source module (BN unfolded)
    pairing: Pairing                      # which BN folds into which conv (the rest: affine)
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

    def conv_bn(self, resolution: int) -> list[ConvBN]:
        """The paired convs and BNs of one resolution's reference module (the folded convs of a
        folded program: what fold at load packs or rewrites)."""
        return self.pairing.resolve(self.references[resolution])

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
    pairing = trace_pairing(refs[served[-1]], served[-1])
    folds = plan_folds(refs[served[0]], enc, len(served), served[0], fold_budget, pairing)
    modules = {r: encode(refs[r], folds, pairing) for r in served}
    if check:
        gen = torch.Generator().manual_seed(0)
        for r in served:
            x = torch.randn(1, 3, r, r, generator=gen)
            with torch.no_grad():
                ref, got = refs[r](x), modules[r](x)
            diff = (ref - got).abs().max().item()
            if not diff <= PARITY_TOL * max(1.0, ref.abs().max().item()):
                raise ConversionError(f"encoded module for {r} differs from the checkpoint by {diff:.3g}")
    return Prepared(ckpt, model, served, weights, enc, modules, refs, pairing, folded_convs=len(folds),
                    total_convs=len(pairing.pairs), fold_budget=fold_budget,
                    info={"affine_bns": len(pairing.unpaired)} if pairing.unpaired else {})


def sample_input(resolution: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


