"""Multiply-adds per resolution, counted by PyTorch's own FLOP counter (convs and matmuls).

The table of every architecture's parameters and MAdds (paper Table 2 beside):
``python -m rsnet_edge.archs``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def count_madds(model: nn.Module, resolution: int) -> int:
    """MAdds of one forward pass of one image at ``resolution`` x ``resolution``.

    PyTorch counts a multiply-add as 2 FLOPs; MAdds (paper Table 2) are half of that.
    """
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        x = torch.zeros(1, 3, resolution, resolution, dtype=p.dtype, device=p.device)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
        return int(counter.get_total_flops()) // 2
    finally:
        model.train(was_training)


def count_madds_all(model: nn.Module, resolutions) -> dict[int, int]:
    return {int(r): count_madds(model, int(r)) for r in resolutions}


def human(n: float) -> str:
    """300774272 -> '301M', 1823522816 -> '1.82G' (paper Table 2 style)."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.0f}M"
    return f"{n / 1e3:.0f}K"
