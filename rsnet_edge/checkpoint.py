"""RS-Net checkpoints: one plain dict, loadable with ``torch.load(path, weights_only=True)``.

The model and its preprocessing metadata travel together (as timm's pretrained_cfg does)::

    {"format": "rsnet-edge-checkpoint", "version": 1,
     "arch": "mobilenet_v2", "arch_args": {"width_mult": 1.0, "num_classes": 10},
     "resolutions": [224, 192, 160, 128, 96],           # highest first, one BN set each
     "class_names": [...], "mean": [...], "std": [...], "crop_pct": 0.875,
     "state_dict": {...}, "alpha": tensor[S],             # learned ensemble scores (MRED)
     "metrics": {"224": {"top1": .., "top5": ..}, ..., "ensemble": {...}},
     "madds": {"224": 300774272, ...}, "params": {...},
     "train_args": {...}, "versions": {"torch": ..., "torchvision": ..., "rsnet_edge": ...},
     "train_state": {...}                                 # optional: optimizer/scheduler/RNG for --resume
    }

This module is the one place that writes, reads and validates them, rebuilds the model, and turns
them into a :class:`rsnet_edge.manifest.Manifest`.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from . import __version__
from .files import atomic_write_bytes, sha256_file
from .manifest import DEFAULT_ENTRY, Entry, InputSpec, Manifest, entry_name
from . import archs
from .models import create_model, normalize_resolutions, set_interpolation

FORMAT = "rsnet-edge-checkpoint"
VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REQUIRED = ("arch", "arch_args", "resolutions", "class_names", "mean", "std", "crop_pct", "state_dict")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, truncated, or not what was asked for."""


def versions() -> dict[str, str]:
    import torchvision
    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__), "rsnet_edge": __version__}


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Serialise then write atomically (temp file + rename): an interrupted save never leaves a
    truncated checkpoint under the final name."""
    ckpt = dict(ckpt)
    ckpt.setdefault("format", FORMAT)
    ckpt.setdefault("version", VERSION)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_error_reason(e: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one whole line: for PyTorch's
    long "Weights only load failed" message, the part that says what the file holds that is not
    plain weights (its boilerplate dropped); else the first line of the message."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        why = []
        for ln in lines[1:]:
            if "WeightsUnpickler error:" in ln:
                ln = ln.split("WeightsUnpickler error:", 1)[1].strip()
            if ln and not ln.startswith(("Please file an issue", "Check the documentation")):
                why.append(ln)
        return f"torch.load(weights_only=True) refused it: {' '.join(why) or 'not plain weights'}"
    return lines[0] if lines else type(e).__name__


def load_checkpoint(path: str | os.PathLike, arch: str | None = None) -> dict[str, Any]:
    """Read and validate a checkpoint; every failure is one CheckpointError line."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{p} is not a readable checkpoint (truncated or corrupt?): "
                              f"{load_error_reason(e)}") from None
    validate_checkpoint(ckpt, str(p))
    if arch is not None and ckpt["arch"] != arch:
        raise CheckpointError(f"{p} holds a {ckpt['arch']} RS-Net, not {arch}")
    return ckpt


def validate_checkpoint(ckpt: Any, where: str = "checkpoint") -> None:
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an rsnet-edge checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{where} has checkpoint version {ckpt['version']}, newer than this "
                              f"library ({VERSION}); upgrade rsnet-edge")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{where} lacks {', '.join(missing)}")
    try:
        spec = archs.get(ckpt["arch"])
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None
    try:
        normalize_resolutions(ckpt["resolutions"])
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None
    names = ckpt["class_names"]
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{where}: class_names must be a non-empty list of strings")
    outputs = (ckpt["arch_args"] or {}).get("num_classes") if isinstance(ckpt["arch_args"], dict) else None
    sd = ckpt["state_dict"] if isinstance(ckpt["state_dict"], dict) else {}
    w = sd.get(f"{spec.head}.weight")                        # the classifier the registry names
    if w is not None and getattr(w, "ndim", 0) == 2:
        outputs = int(w.shape[0]) if outputs is None or int(w.shape[0]) != outputs else outputs
    if outputs is not None and outputs != len(names):
        raise CheckpointError(f"{where}: class_names has {len(names)} names but the classifier has "
                              f"{outputs} outputs; fix class_names")


def model_from_checkpoint(ckpt: dict[str, Any], interpolate: bool = False) -> nn.Module:
    """Rebuild the RS-Net (eval mode) from a validated checkpoint dict."""
    args = dict(ckpt["arch_args"])
    num_classes = args.pop("num_classes", len(ckpt["class_names"]))
    try:
        archs.check(ckpt["arch"])
    except ValueError as e:
        raise CheckpointError(f"checkpoint of {e}") from None
    model = create_model(ckpt["arch"], ckpt["resolutions"], num_classes=num_classes, **args)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint weights do not fit a {ckpt['arch']} RS-Net with "
                              f"{ckpt['arch_args']}: {first}") from None
    set_interpolation(model, interpolate)
    return model.eval()


def load_model(path: str | os.PathLike, arch: str | None = None, interpolate: bool = False):
    """Convenience: (model, ckpt) from a path."""
    ckpt = load_checkpoint(path, arch)
    return model_from_checkpoint(ckpt, interpolate), ckpt


def manifest_for(ckpt: dict[str, Any], backend: str, resolutions: Sequence[int] | None = None,
                 weights: str = "shared", dtype: str = "fp32", layout: str = "NCHW",
                 checkpoint_path: str | os.PathLike | None = None,
                 extra: dict[str, Any] | None = None) -> Manifest:
    """The manifest for an artifact made from ``ckpt``, serving ``resolutions`` (default: the trained
    ones; untrained ones are served by interpolated BN and flagged ``trained: false``)."""
    from .policy import default_policy  # local import: policy is stdlib-only and optional here

    trained = list(normalize_resolutions(ckpt["resolutions"]))
    served = list(normalize_resolutions(resolutions)) if resolutions else trained
    metrics = ckpt.get("metrics") or {}
    madds = ckpt.get("madds") or {}
    entries = []
    for r in served:
        m = metrics.get(str(r)) or {}
        entries.append(Entry(resolution=r, entry=entry_name(r), madds=madds.get(str(r)),
                             top1=m.get("top1"), top5=m.get("top5"), trained=r in trained))
    ck: dict[str, Any] = {}
    if checkpoint_path is not None:
        ck = {"file": Path(checkpoint_path).name, "sha256": sha256_file(checkpoint_path)}
    return Manifest(
        backend=backend, arch=ckpt["arch"], arch_args=dict(ckpt["arch_args"]),
        input=InputSpec(mean=[float(x) for x in ckpt["mean"]], std=[float(x) for x in ckpt["std"]],
                        crop_pct=float(ckpt["crop_pct"]), layout=layout),
        class_names=list(ckpt["class_names"]), entries=entries, default_resolution=served[0],
        weights=weights, dtype=dtype, policy=default_policy(served).to_dict(),
        checkpoint=ck, params=dict(ckpt.get("params") or {}),
        extra={"default_entry": DEFAULT_ENTRY, **(extra or {})},
    )
