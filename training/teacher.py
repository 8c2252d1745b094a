"""``training.train --teacher MODEL``: distillation from a frozen model the user already has.

MODEL is
  (a) an rsnet-edge checkpoint (an I-Net or an RS-Net): its own resolution is its largest trained
      one, and its class names must be the run's; or
  (b) a single-model state dict in torchvision's layout of the run's ``--arch`` and arguments with
      the run's number of classes: its own resolution is ``--teacher-resolution`` (default: the
      largest training resolution).
``--teacher-resolution R`` picks another one for either (a checkpoint serves an untrained R by BN
interpolation). The teacher is frozen: eval mode (its BN running statistics, no dropout), no
gradient, no optimizer; it is no part of the model DDP wraps, so under ``torchrun`` every rank computes
the teacher logits of its own share of the batch. It sees the SAME crop as the S views (the one crop
each image's views come from, rendered at the teacher's resolution: ``training.data.TrainViews``
``extra``); its logits enter the MRED objective as ``tea`` (``training.mred.mred_loss``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from rsnet_edge.checkpoint import FORMAT, model_from_checkpoint, validate_checkpoint
from rsnet_edge.models import create_model, load_single_state_dict, set_interpolation
from training.finetune import read_init_file


@dataclass
class Teacher:
    """The frozen teacher, the resolution it sees the crop at, and a one-line description."""
    model: nn.Module
    resolution: int
    note: str

    def to(self, device, dtype: torch.dtype = torch.float32) -> Teacher:
        self.model = self.model.to(device=device, dtype=dtype)
        return self

    @torch.no_grad()
    def logits(self, view: torch.Tensor) -> torch.Tensor:
        return self.model(view)

    def view_index(self, resolutions: Sequence[int]) -> int:
        """Where the teacher's view is among the views the data yields (``extra_views``)."""
        rs = [int(r) for r in resolutions]
        return rs.index(self.resolution) if self.resolution in rs else len(rs)


def extra_views(teacher: Teacher | None, resolutions: Sequence[int]) -> list[int]:
    """The resolution to render besides the training ones: the teacher's, when it is not one of them."""
    if teacher is None or teacher.resolution in [int(r) for r in resolutions]:
        return []
    return [teacher.resolution]


def load_teacher(path: str | os.PathLike, arch: str, arch_args: dict, classes: Sequence[str],
                 resolutions: Sequence[int], resolution: int | None = None) -> Teacher:
    """The frozen teacher of ``path`` for a run of ``arch`` (``arch_args`` without num_classes) on
    ``classes`` at ``resolutions``; every file that cannot teach this run is one ValueError line."""
    p = Path(path)
    obj = read_init_file(p, flag="--teacher")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        try:
            validate_checkpoint(obj, f"--teacher {p}")
        except ValueError as e:
            raise ValueError(str(e)) from None
        if list(obj["class_names"]) != list(classes):
            raise ValueError(f"--teacher {p} predicts other classes ({len(obj['class_names'])}: "
                             f"{', '.join(obj['class_names'][:4])}...) than the data ({len(classes)}: "
                             f"{', '.join(list(classes)[:4])}...)")
        model = model_from_checkpoint(obj, interpolate=True)
        r = int(resolution or max(int(x) for x in obj["resolutions"]))
        what = f"{obj['arch']} checkpoint trained at {list(obj['resolutions'])}"
    else:
        if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v)
                                                     for k, v in obj.items())):
            raise ValueError(f"--teacher {p} is neither a state dict (a dict of tensors) nor an "
                             f"rsnet-edge checkpoint")
        r = int(resolution or max(int(x) for x in resolutions))
        model = create_model(arch, [r], num_classes=len(classes), **arch_args)
        try:
            load_single_state_dict(model, obj)
        except ValueError as e:
            msg = str(e).replace("state dict does not fit this RS-Net: ", "")
            raise ValueError(f"--teacher {p} does not fit a {arch} of these arguments with {len(classes)} "
                             f"classes: {msg}") from None
        set_interpolation(model, True)
        what = f"{arch} single-model state dict"
    model.eval().requires_grad_(False)
    return Teacher(model, r, f"teacher: {p}, a {what}, frozen, sees each crop at {r} px")
