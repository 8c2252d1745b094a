"""Checkpoint -> one eval-mode ``nn.Module`` per served resolution, shared by every backend.

Why an encoding at all: exported plainly, each backend folds BatchNorm into the preceding conv
*per entry point*, so an artifact with S entry points stores S copies of every conv weight (~S x
the size of a single-resolution export). To keep the shared conv/FC weights stored once, the
resolution-private BN of a shared conv is written as an op the backends do not fold: a per-channel
affine ``y = x * s + t`` expressed as a depthwise 1x1 convolution (groups = C). ExecuTorch (XNNPACK
named data, keyed by content hash), Core ML (``save_multifunction`` constant de-duplication) and
LiteRT (litert-torch constant cache) then store each shared weight once.

Encodings (``encoding=``):

``folded``  BN folded into every conv, per entry. Fastest; ~S x the size.
``affine``  every BN becomes a depthwise-1x1 affine after its (shared) conv. Smallest; one extra
            per-channel pass per BN at run time.
``hybrid``  ``affine`` for the big dense convs, but BN folded per entry into depthwise convs and
            other convs whose weights are tiny (< ``SMALL_CONV``), where a private copy per entry
            costs little size and saves a pass over a large activation.

With ``fold_budget=b`` (``affine`` only) the convs with the best ratio (activation elements saved)
/ (weight elements duplicated) are folded greedily until the duplicated weights reach ``b`` x the
shared weight bytes: a knob along the size/latency frontier (see bench/encodings.py).

``--weights`` picks what a converter ships (the default is ``shared``):

``shared``  small AND fast: the conv weights stored once, BN folded on the device when the model is
            loaded. ExecuTorch / LiteRT: the FOLDED program is lowered, then packed into an RSFOLD
            file (``.pte.rsfold`` / ``.tflite.rsfold``: ``W`` once + one scale vector per
            resolution, see rsnet_edge/rsfold.py and converters/compact.py) that the runtime
            unpacks once into a cache before the stock runtime loads it. ONNX: shared ``W`` with a
            per-channel Mul+Add per resolution, which ONNX Runtime folds into the conv when it
            creates the session (converters/onnx.py). Core ML: each function's conv weight is
            ``constexpr_blockwise_shift_scale(W, s_r)`` (iOS 18), ``W`` de-duplicated across
            functions; Core ML materialises the product itself (converters/coreml.py).
``affine``  the ``affine`` (or ``--encoding hybrid``) encoding, a stock-runtime file: small, slower.
``folded``  the ``folded`` encoding: fastest, ~S x the size; with one resolution it is the
            single-resolution export every ratio is measured against.

This module also holds what the three converter CLIs share: argument parsing, checkpoint loading,
the manifest, atomic output and the one-line error exit (an unexpected failure inside a backend's
lowering is reported as ``error: <backend> conversion failed: <first line>``, exit status 2, no
artifact left behind; ``--debug`` re-raises it with the full traceback).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from rsnet_edge.checkpoint import CheckpointError, load_checkpoint, manifest_for, model_from_checkpoint
from rsnet_edge.manifest import (DEFAULT_ENTRY, Manifest, ManifestError, entry_name, sha256_file,
                                 sidecar_path, write_sidecar)
from rsnet_edge.models import ResolutionError, normalize_resolutions, to_single_resolution
from rsnet_edge.rsfold import SUFFIX as RSFOLD_SUFFIX

WEIGHTS = {"shared": "folded", "affine": "affine", "folded": "folded"}
#: backends whose ``--weights shared`` is not a fold at load (yet): the encoding they use instead
SHARED_ENCODING: dict[str, str] = {}
#: artifact suffix per backend, and the compact (fold-at-load) suffix where it differs
SUFFIXES = {"executorch": ".pte", "tflite": ".tflite", "coreml": ".mlpackage", "onnx": ".onnx"}
RSFOLD_BACKENDS = ("executorch", "tflite")
ENCODINGS = ("folded", "affine", "hybrid")
INT8_CALIB_IMAGES = 256   # --dtype int8: default number of calibration images (converters.quantize)
SMALL_CONV = 4096          # hybrid: convs with fewer weight elements than this are folded per entry
PARITY_TOL = 1e-4          # encoded module vs plain BN module, checked at prepare time
MANIFEST_KEY = "rsnet_edge.manifest"   # name of the embedded manifest (Core ML metadata, LiteRT metadata)
ET_MANIFEST_METHOD = "manifest_json"   # ExecuTorch constant method returning the manifest JSON
#: backends whose default entry is not an entry point of its own but a pointer to the highest
#: resolution's ``forward_<r>`` (Core ML: the package's default function; a duplicate ``forward``
#: function would store its whole program description again). Elsewhere: ``forward``.
DEFAULT_IS_POINTER = frozenset({"coreml"})


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
    """The name under which ``backend`` serves the default (highest) resolution."""
    return entry_name(default_resolution) if backend in DEFAULT_IS_POINTER else DEFAULT_ENTRY


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

    @property
    def default_resolution(self) -> int:
        return self.resolutions[0]

    def entries(self) -> dict[str, tuple[int, nn.Module]]:
        """Entry-point name -> (resolution, module), the default entry ``forward`` last."""
        out = {entry_name(r): (r, self.modules[r]) for r in self.resolutions}
        out[DEFAULT_ENTRY] = (self.default_resolution, self.modules[self.default_resolution])
        return out

    def manifest_extra(self, backend: str = "") -> dict[str, Any]:
        return {"encoding": self.encoding, "fold_budget": self.fold_budget,
                "folded_convs": self.folded_convs, "convs": self.total_convs,
                "default_entry": default_entry(backend, self.default_resolution), **self.info}


def prepare(ckpt: dict[str, Any], resolutions: Sequence[int] | None = None, weights: str = "shared",
            encoding: str | None = None, fold_budget: float = 0.0, check: bool = True,
            backend: str | None = None) -> Prepared:
    """Build the per-resolution modules of a validated checkpoint.

    ``resolutions``: a subset of the trained ones and/or extra ones served by interpolated BN
    (default: the trained ones). ``backend`` decides what ``weights="shared"`` lowers (the folded
    modules, packed or rewritten afterwards; Core ML: the affine encoding)."""
    if weights not in WEIGHTS:
        raise ConversionError(f"--weights must be one of {sorted(WEIGHTS)}, got {weights!r}")
    default_enc = SHARED_ENCODING.get(backend, WEIGHTS[weights]) if weights == "shared" else WEIGHTS[weights]
    if encoding is not None and weights != "affine" and default_enc != "affine":
        raise ConversionError(f"--encoding is for --weights affine (got --weights {weights})")
    enc = encoding or default_enc
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


# ------------------------------------------------------------------------------ output files
def temp_path(out: Path) -> Path:
    """Same directory (so the final rename is atomic), hidden, same suffix (Core ML insists)."""
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")


def remove_path(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def publish(tmp: Path, out: Path) -> None:
    """Move a finished temp file/directory to its final name (replacing an old one)."""
    if tmp.is_dir():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)
            raise
        remove_path(old)
    else:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)


def artifact_size(path: str | os.PathLike) -> int:
    p = Path(path)
    if p.is_dir():
        return sum(q.stat().st_size for q in p.rglob("*") if q.is_file())
    return p.stat().st_size


# ------------------------------------------------------------------------------------- CLI
# A backend lowers: (prepared, manifest JSON to embed, temp output path, dtype) -> extra facts.
Lower = Callable[[Prepared, str, Path, str], dict]


def build_parser(backend: str, suffix: str, dtypes: Sequence[str]) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m converters.{backend}",
                                 description=f"RS-Net checkpoint -> one {suffix} with one entry point "
                                             f"per resolution (forward_<r>) and a default entry (the highest "
                                             f"resolution).")
    ap.add_argument("--ckpt", required=True, help="RS-Net checkpoint (.pt)")
    ap.add_argument("--out", help=f"output artifact (default: beside the checkpoint, its name with "
                                  f"{artifact_suffix(backend, 'shared')} for --weights shared, {suffix} "
                                  f"otherwise)")
    ap.add_argument("--resolutions", type=lambda s: [int(x) for x in s.replace(",", " ").split()],
                    nargs="+", help="served resolutions (default: the trained ones); untrained ones "
                                    "get interpolated BN")
    ap.add_argument("--weights", choices=sorted(WEIGHTS), default="shared",
                    help="shared (default): conv weights stored once, BN folded when the model is "
                         "loaded (small and fast); affine: weights stored once, BN as an extra "
                         "per-channel op (small, slower; a stock-runtime file); folded: BN folded per "
                         "entry (fast, ~S x size)")
    ap.add_argument("--encoding", choices=[e for e in ENCODINGS if e != "folded"],
                    help="advanced: BN encoding for --weights affine (default affine)")
    ap.add_argument("--fold-budget", type=float, default=0.0,
                    help="advanced (affine): fold BN per entry into the convs that save the most "
                         "run time, up to this fraction of the weight bytes (default 0)")
    ap.add_argument("--dtype", choices=list(dtypes), default="fp32")
    if "int8" in dtypes:
        ap.add_argument("--calib", metavar="DIR",
                        help="--dtype int8: folder of real training images to calibrate every "
                             "resolution on (e.g. DATA/train; searched recursively)")
        ap.add_argument("--calib-images", type=int, default=INT8_CALIB_IMAGES, metavar="N",
                        help=f"--dtype int8: images used for calibration (default {INT8_CALIB_IMAGES}, "
                             f"spread over the folder)")
    ap.add_argument("--verbose", action="store_true", help="show the backend's own conversion logs")
    ap.add_argument("--debug", action="store_true",
                    help="re-raise a failure with its full traceback instead of one error line")
    return ap


def artifact_suffix(backend: str, weights: str, dtype: str = "fp32") -> str:
    """What a converter writes: the backend's file, or its RSFOLD compact form. int8 ``shared`` is
    a plain file: its canonical int8 weights are bit-identical across entries (converters.quantize)."""
    base = SUFFIXES[backend]
    rsfold = weights == "shared" and backend in RSFOLD_BACKENDS and dtype != "int8"
    return base + RSFOLD_SUFFIX if rsfold else base


def default_out(ckpt_path: str | os.PathLike, backend: str, weights: str, dtype: str = "fp32") -> Path:
    """``runs/rs_mbv2.pt`` -> ``runs/rs_mbv2.pte.rsfold`` (shared) / ``runs/rs_mbv2.pte`` (affine,
    folded) / ``runs/rs_mbv2.int8.pte`` (int8: never the name of a float export)..."""
    p = Path(ckpt_path)
    return p.with_name(p.stem + (".int8" if dtype == "int8" else "") + artifact_suffix(backend, weights, dtype))


def run_cli(backend: str, suffix: str, lower: Lower, argv: Sequence[str] | None = None,
            dtypes: Sequence[str] = ("fp32",)) -> int:
    from rsnet_edge import cli

    args = build_parser(backend, suffix, dtypes).parse_args(argv)
    res = [r for group in (args.resolutions or []) for r in group] or None
    if args.out is None:
        args.out = str(default_out(args.ckpt, backend, args.weights, args.dtype))
    calib = getattr(args, "calib", None)

    def work() -> int:
        out = Path(args.out)           # checked before any work (rsnet_edge.cli's output rule)
        if res:
            try:
                normalize_resolutions(res)
            except ValueError as e:
                raise cli.UsageError(f"--resolutions: {e}") from None
        cli.check_outputs([cli.Output(out, "--out"), cli.Output(sidecar_path(out), "--out's manifest")],
                          inputs=[args.ckpt])
        for p in (out, sidecar_path(out)):
            cli.clean_stale_temps(p)
        convert(backend, lower, args.ckpt, args.out, resolutions=res, weights=args.weights,
                encoding=args.encoding, fold_budget=args.fold_budget, dtype=args.dtype,
                verbose=args.verbose, calib=calib,
                calib_images=getattr(args, "calib_images", INT8_CALIB_IMAGES))
        return 0

    return cli.run(work, debug=args.debug, known=(ConversionError,))


def convert(backend: str, lower: Lower, ckpt_path: str | os.PathLike, out: str | os.PathLike,
            resolutions: Sequence[int] | None = None, weights: str = "shared",
            encoding: str | None = None, fold_budget: float = 0.0, dtype: str = "fp32",
            quiet: bool = False, verbose: bool = False, calib: str | os.PathLike | None = None,
            calib_images: int = INT8_CALIB_IMAGES) -> Manifest:
    """Checkpoint file -> artifact + sidecar manifest, atomically. Returns the sidecar manifest.
    ``dtype="int8"`` needs ``calib`` (a folder of training images; converters.quantize)."""
    out = Path(out)
    if dtype == "int8":
        from converters.quantize import check_int8_args
        check_int8_args(backend, weights, calib)
    elif calib is not None:
        raise ConversionError("--calib is for --dtype int8")
    want = artifact_suffix(backend, weights, dtype)
    if want.endswith(RSFOLD_SUFFIX) != out.name.endswith(RSFOLD_SUFFIX) or out.name == want:
        hint = (f"for a plain {SUFFIXES[backend]} pass --weights affine or folded"
                if want.endswith(RSFOLD_SUFFIX) else "only --weights shared writes .rsfold files"
                if dtype != "int8" else "int8 artifacts share their weights in a plain file")
        raise ConversionError(f"--out {out.name}: --weights {weights} writes a {want} file for {backend}, "
                              f"e.g. {Path(ckpt_path).stem}{want} ({hint})")
    cal = None
    if dtype == "int8":
        from converters.quantize import load_calibration
        cal = load_calibration(calib, calib_images)          # refuses before anything is written
    ckpt = load_checkpoint(ckpt_path)
    prep = prepare(ckpt, resolutions, weights, encoding, fold_budget, backend=backend)
    if cal is not None:
        from converters.quantize import quantize_prepared
        try:
            prep.quantized, prep.info["int8"] = quantize_prepared(prep, cal, canonical=weights == "shared",
                                                                  verbose=verbose, progress=not quiet,
                                                                  backend=backend)
        except ConversionError:
            raise
        except Exception as e:
            raise BackendError(backend, e) from e
    manifest = manifest_for(ckpt, backend, resolutions=prep.resolutions, weights=weights, dtype=dtype,
                            checkpoint_path=ckpt_path, extra=prep.manifest_extra(backend))
    manifest.artifact = {"file": out.name}          # embedded copy: no sha256 (cannot hold its own)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out)
    remove_path(tmp)
    try:
        try:
            from rsnet_edge.cli import quiet as quiet_logs
            with quiet_logs(verbose):          # backend logs / progress bars only with --verbose
                facts = lower(prep, manifest.to_json(), tmp, dtype) or {}
        except ConversionError:
            raise
        except Exception as e:
            raise BackendError(backend, e) from e
        if not tmp.exists():
            raise ConversionError(f"{backend} lowering wrote nothing")
        manifest.extra.update(facts)
        unpacked = None
        if want.endswith(RSFOLD_SUFFIX):                 # fold at load: ship W once + scales
            from converters.compact import pack_program
            program = tmp.read_bytes()
            blob, rep = pack_program(program, prep, backend)
            unpacked = {"format": SUFFIXES[backend].lstrip("."), "sha256": hashlib.sha256(program).hexdigest(),
                        "size_bytes": len(program)}
            manifest.extra.update({"fold_at_load": "rsfold", "rsfold_holes": rep.holes,
                                   "rsfold_unfound": rep.missing[:8]})
            with open(tmp, "wb") as f:
                f.write(blob)
        manifest.artifact = {"file": out.name, "sha256": sha256_file(tmp), "size_bytes": artifact_size(tmp)}
        if unpacked is not None:
            manifest.artifact["unpacked"] = unpacked
        publish(tmp, out)
    finally:
        remove_path(tmp)
    write_sidecar(manifest, out)
    if not quiet:
        print(f"wrote {out} ({manifest.artifact['size_bytes'] / 1e6:.2f} MB, entries "
              f"{', '.join(e.entry for e in manifest.entries)}, default {manifest.extra['default_entry']}, "
              f"weights={weights}, dtype={dtype}, "
              f"encoding={prep.encoding}) and {sidecar_path(out).name}")
    return manifest
