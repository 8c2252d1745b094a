"""Multiply-adds per resolution, counted by PyTorch's own FLOP counter (convs and matmuls)."""

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


# Paper Table 2 (ImageNet, 1000 classes), for side-by-side comparison only: (MAdds per resolution,
# single-model params, RS-Net params) as printed in the paper.
PAPER_TABLE2 = {
    "mobilenet_v2": ({224: "301M", 192: "221M", 160: "154M", 128: "99M", 96: "56M"}, "3.34M", "3.47M"),
    "resnet18": ({224: "1.82G", 192: "1.34G", 160: "931M", 128: "596M", 96: "335M"}, "11.15M", "11.18M"),
    "resnet50": ({224: "4.14G", 192: "3.04G", 160: "2.11G", 128: "1.35G", 96: "760M"}, "24.37M", "24.58M"),
}


def table(archs=tuple(PAPER_TABLE2), resolutions=(224, 192, 160, 128, 96), num_classes: int = 1000) -> str:
    """Parameters and MAdds of each RS-Net next to the paper's Table 2 values."""
    from .models import create_model, param_counts

    lines = [f"{'arch':<13} {'res':>4} {'MAdds':>7} {'paper':>7}   params (RS-Net = single + (S-1) x BN affine)"]
    for arch in archs:
        model = create_model(arch, resolutions, num_classes=num_classes)
        c = param_counts(model)
        paper_madds, paper_single, paper_rs = PAPER_TABLE2.get(arch, ({}, "-", "-"))
        for i, r in enumerate(resolutions):
            note = ""
            if i == 0:
                note = (f"  single {c['single'] / 1e6:.2f}M (paper {paper_single}), RS-Net {c['total'] / 1e6:.2f}M "
                        f"(paper {paper_rs}) = {c['single']:,} + {len(resolutions) - 1} x {c['bn_per_resolution']:,}")
            lines.append(f"{arch:<13} {r:>4} {human(count_madds(model, r)):>7} {paper_madds.get(r, '-'):>7}{note}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m rsnet_edge.flops",
                                 description="Parameters and MAdds per resolution, next to paper Table 2")
    ap.add_argument("--arch", nargs="+", default=list(PAPER_TABLE2))
    ap.add_argument("--resolutions", type=int, nargs="+", default=[224, 192, 160, 128, 96])
    ap.add_argument("--num-classes", type=int, default=1000)
    a = ap.parse_args(argv)
    print(table(a.arch, a.resolutions, a.num_classes))
    return 0


if __name__ == "__main__":
    from .cli import run as _run
    raise SystemExit(_run(main))
