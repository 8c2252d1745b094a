"""Multi-Resolution Ensemble Distillation (paper 3.3, Eq. 2 and 5-10).

``mred_loss(logits, target, alpha, mode)`` with ``logits`` the S per-resolution logits [N, C],
highest resolution first, and ``alpha`` the S unnormalised importance scores:

- ``cls``  = sum_s CE(z_s, y)                                    (Eq. 2)
- ``z_0``  = sum_s softmax(alpha)_s * detach(z_s); ``ens`` = CE(z_0, y)   (Eq. 5-6: moves alpha only)
- ``dis``  vanilla: sum_s KL(p_0 || p_s)                          (Eq. 8)
           full:    2/(S+1) * sum_{t=0}^{S-1} sum_{s>t} KL(p_t || p_s)   (Eq. 10; t=0 is the ensemble)
           none:    0  (the paper's "Parallel" training)
           from_students: Eq. 10 without the ensemble teacher (only p_1..p_{S-1} teach; Table 5):
                    2/S * sum_{t=1}^{S-1} sum_{s>t} KL(p_t || p_s)  (S(S-1)/2 pairs)
  every teacher p_t is detached; KL is averaged over the batch (Eq. 7).
- ``tea``  = sum_s KL(p_T || p_s) with ``teacher_logits`` z_T given (not the paper's; ``training.train
  --teacher``): a frozen model's logits on the same crop (its own resolution) teach every resolution;
  0 without a teacher
- ``total`` = cls + ens + dis + teacher_weight * tea               (Eq. 9, plus the teacher term)

``resolution_loss="mean"`` (not the paper's) divides ``cls``, ``dis`` and ``tea`` by S, so the shared
weights get about an individual network's gradient at the same learning rate; ``"sum"`` (default) is
Eq. 2. With ``teacher_weight`` 1 the teacher term weighs as much as the cross-entropy term ``cls``.

:class:`MultiResolutionNet` is what the trainer optimises (and DDP wraps): the RS-Net plus alpha,
one forward from the S views to these loss terms.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("full", "vanilla", "none", "from_students")
RESOLUTION_LOSSES = ("sum", "mean")


def kl_div(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """D_kl(p_t || p_s) of Eq. 7, batch-averaged; the teacher is detached."""
    t = F.log_softmax(teacher_logits.detach().float(), dim=1)
    s = F.log_softmax(student_logits.float(), dim=1)
    return F.kl_div(s, t, reduction="batchmean", log_target=True)


def ensemble_logits(logits: Sequence[torch.Tensor], alpha: torch.Tensor) -> torch.Tensor:
    """z_0 = sum_s softmax(alpha)_s z_s, from DETACHED z_s (Eq. 5): gradients reach alpha only."""
    w = torch.softmax(alpha.float(), dim=0)
    return sum(w[s] * z.detach().float() for s, z in enumerate(logits))


def teacher_loss(logits: Sequence[torch.Tensor], teacher_logits: torch.Tensor) -> torch.Tensor:
    """sum_s KL(p_T || p_s), batch-averaged: the frozen teacher's distribution taught to every
    resolution (no gradient reaches the teacher)."""
    return sum(kl_div(teacher_logits, z) for z in logits)


def mred_loss(logits: Sequence[torch.Tensor], target: torch.Tensor, alpha: torch.Tensor,
              mode: str = "full", resolution_loss: str = "sum", teacher_logits: torch.Tensor | None = None,
              teacher_weight: float = 1.0) -> Mapping[str, torch.Tensor]:
    if mode not in MODES:
        raise ValueError(f"unknown MRED mode {mode!r} (expected one of {MODES})")
    if resolution_loss not in RESOLUTION_LOSSES:
        raise ValueError(f"unknown resolution loss {resolution_loss!r} (expected one of {RESOLUTION_LOSSES})")
    S = len(logits)
    if alpha.numel() != S:
        raise ValueError(f"alpha has {alpha.numel()} scores for {S} resolutions")
    per_res = 1.0 / S if resolution_loss == "mean" else 1.0
    cls = sum(F.cross_entropy(z.float(), target) for z in logits) * per_res
    zero = cls.new_zeros(())
    tea = zero if teacher_logits is None else teacher_loss(logits, teacher_logits) * per_res

    def total(t):  # no teacher: the MRED total as it always was (no added zero in the graph)
        return t if teacher_logits is None else t + teacher_weight * tea
    if mode == "none":
        return {"total": total(cls), "cls": cls, "ens": zero, "dis": zero, "tea": tea}
    z0 = ensemble_logits(logits, alpha)
    ens = F.cross_entropy(z0, target)
    if mode == "vanilla":
        dis = sum(kl_div(z0, z) for z in logits)
    else:
        chain = ([z0] if mode == "full" else []) + list(logits)
        dis = sum(kl_div(chain[t], chain[s]) for t in range(len(chain)) for s in range(t + 1, len(chain)))
        dis = dis * (2.0 / (S + 1)) if mode == "full" else dis * (2.0 / S if S > 1 else 0.0)
    dis = dis * per_res if torch.is_tensor(dis) else zero
    return {"total": total(cls + ens + dis), "cls": cls, "ens": ens, "dis": dis, "tea": tea}


class MultiResolutionNet(nn.Module):
    """What DDP wraps: the RS-Net plus the MRED scores alpha. One forward runs all S views and, given
    targets, returns the MRED loss terms, so DDP sees one forward and one backward per step."""

    def __init__(self, model: nn.Module, num_resolutions: int, learn_alpha: bool, mode: str = "full",
                 resolution_loss: str = "sum", teacher_weight: float = 1.0):
        super().__init__()
        self.model = model
        self.mode = mode
        self.resolution_loss = resolution_loss
        self.teacher_weight = teacher_weight
        self.alpha = nn.Parameter(torch.zeros(num_resolutions), requires_grad=learn_alpha)

    def forward(self, views: list[torch.Tensor], target: torch.Tensor | None = None,
                teacher_logits: torch.Tensor | None = None):
        """``teacher_logits``: a frozen teacher's logits on the same images (computed outside, so the
        teacher is no part of this module, of DDP or of the optimizer)."""
        logits = [self.model(v) for v in views]
        if target is None:
            return logits
        return mred_loss(logits, target, self.alpha, self.mode if len(views) > 1 else "none",
                         self.resolution_loss, teacher_logits, self.teacher_weight)
