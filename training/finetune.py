"""``training.train --init PATH``: seed a new run's weights from what a user already has.

PATH is either
  (a) a single-model state dict in the layout of the architecture's source
      (``torch.save(model.state_dict(), PATH)`` of the torchvision or timm model ``--arch`` names,
      e.g. ImageNet weights already on disk): shared weights copied and EVERY BN set starts as the
      single model's BN, so before any step the RS-Net computes exactly the single model's logits
      at every size (tests/test_archs.py checks it for every registered architecture); or
  (b) an rsnet-edge checkpoint: its weights only (a fresh run: new optimizer, schedule and alpha);
      a resolution list that differs is mapped through BN interpolation (the nearest set outside
      the checkpoint's range).

A classifier with another number of classes is re-initialised (one notice line), as timm does for
``num_classes``. Files are read with ``torch.load(..., weights_only=True)``; nothing is downloaded.
Any file that cannot be used is one ``ValueError`` line naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from rsnet_edge.checkpoint import FORMAT, load_error_reason, validate_checkpoint
from rsnet_edge.models import load_rsnet_state_dict, load_single_state_dict, model_resolutions


def read_init_file(path: str | os.PathLike, flag: str = "--init"):
    """The object in ``path`` (``weights_only``); a missing or unreadable file is one ValueError
    line starting with ``flag``."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{flag} {p} is a folder; give the state dict or checkpoint file")
    if not p.is_file():
        raise ValueError(f"{flag} {p}: no such file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one error line (never cut)
        raise ValueError(f"{flag} {p} is not a readable state dict or checkpoint: "
                         f"{load_error_reason(e)}") from None


def non_finite_tensor(sd: dict) -> str | None:
    """The name of the first floating-point tensor of a state dict holding NaN or infinity."""
    return next((k for k, v in sd.items()
                 if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()), None)


def init_model(model: nn.Module, path: str | os.PathLike, arch: str) -> list[str]:
    """Load ``path`` into ``model`` (an RS-Net of ``arch``); returns the notice lines to print."""
    p = Path(path)
    obj = read_init_file(p)
    sd = obj.get("state_dict") if isinstance(obj, dict) and obj.get("format") == FORMAT else obj
    bad = non_finite_tensor(sd) if isinstance(sd, dict) else None
    if bad is not None:                   # refused before anything is written (no empty log)
        raise ValueError(f"--init {p}: tensor {bad!r} holds NaN or infinite values; these weights "
                         f"cannot start a run")
    try:
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            validate_checkpoint(obj, f"--init {p}")
            if obj["arch"] != arch:
                raise ValueError(f"--init {p} holds a {obj['arch']} RS-Net; this run trains {arch}")
            reinit = load_rsnet_state_dict(model, obj["state_dict"], obj["resolutions"], reinit_head=True)
            own = list(model_resolutions(model))
            src = [int(r) for r in obj["resolutions"]]
            between = [r for r in own if r not in src and min(src) < r < max(src)]
            outside = [r for r in own if r not in src and not min(src) < r < max(src)]
            what = f"rsnet-edge checkpoint (resolutions {src})" + (
                f"; BN of {between} interpolated from its sets" if between else "") + (
                f"; BN of {outside} from its nearest set" if outside else "")
        else:
            if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v)
                                                         for k, v in obj.items())):
                raise ValueError(f"--init {p} is neither a state dict (a dict of tensors) nor an "
                                 f"rsnet-edge checkpoint")
            reinit = load_single_state_dict(model, obj, reinit_head=True)
            what = "single-model state dict (every BN set starts from its BN)"
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith("--init") else f"--init {p} does not fit a {arch} RS-Net "
                         f"of these arguments: {msg.replace('state dict does not fit this RS-Net: ', '')}") from None
    notes = [f"init: weights from {p}, a {what}"]
    if reinit:
        sd = obj["state_dict"] if isinstance(obj, dict) and obj.get("format") == FORMAT else obj
        k = reinit[0]
        notes.append(f"init: classifier re-initialised ({k.rsplit('.', 1)[0]}: {sd[k].shape[0]} classes "
                     f"in {p.name}, {model.state_dict()[k].shape[0]} in this run)")
    return notes
