"""Evaluate an RS-Net at any list of resolutions (paper Table 2 layout; ``--matrix`` for Table 1).

    python -m training.evaluate --ckpt rs_mbv2.pt --data DIR [--resolutions 224 208 96] [--matrix] [--json out.json]

Untrained resolutions are served by interpolated BN (paper 4.3) and marked ``*`` in the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from rsnet_edge.checkpoint import CheckpointError, load_model
from rsnet_edge.flops import count_madds, human
from rsnet_edge.files import atomic_write_bytes
from rsnet_edge.models import normalize_resolutions
from training.data import collate_views, val_dataset
from training.mred import ensemble_logits


@dataclass
class EvalResult:
    resolutions: list[int]
    metrics: dict[str, dict[str, float]]          # str(r) or "ensemble" -> {"top1", "top5"} in %
    correct: dict[int, torch.Tensor] = field(repr=False)  # r -> bool[N] (top-1 right?)
    skipped: int = 0
    count: int = 0

    def matrix(self) -> dict[str, dict[str, float]]:
        """Table 1: % of images right at resolution c (column) and wrong at resolution w (row)."""
        out: dict[str, dict[str, float]] = {}
        for w in self.resolutions:
            out[str(w)] = {}
            for c in self.resolutions:
                if c == w:
                    continue
                both = self.correct[c] & ~self.correct[w]
                out[str(w)][str(c)] = 100.0 * both.float().mean().item()
        return out


def _topk_hits(logits: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == target[:, None]).any(dim=1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, resolutions: Sequence[int], device="cpu",
             alpha: torch.Tensor | None = None, progress: bool = True, desc: str = "eval") -> EvalResult:
    """Top-1/top-5 at every resolution of the loader's views (and of the alpha-weighted ensemble
    when ``alpha`` is given)."""
    was_training = model.training
    model.eval()
    resolutions = [int(r) for r in resolutions]
    top1 = {r: [] for r in resolutions}
    top5 = {r: [] for r in resolutions}
    ens1, ens5 = [], []
    skipped = 0
    for views, target, bad in tqdm(loader, desc=desc, disable=not progress, leave=False):
        skipped += bad
        if views is None:
            continue
        target = target.to(device)
        logits = [model(v.to(device, non_blocking=True)).float() for v in views]
        for r, z in zip(resolutions, logits):
            top1[r].append(_topk_hits(z, target, 1).cpu())
            top5[r].append(_topk_hits(z, target, 5).cpu())
        if alpha is not None:
            z0 = ensemble_logits(logits, alpha.to(device))
            ens1.append(_topk_hits(z0, target, 1).cpu())
            ens5.append(_topk_hits(z0, target, 5).cpu())
    model.train(was_training)
    if not top1[resolutions[0]]:
        raise ValueError("no readable validation image")
    correct = {r: torch.cat(top1[r]) for r in resolutions}
    metrics = {str(r): {"top1": 100.0 * correct[r].float().mean().item(),
                        "top5": 100.0 * torch.cat(top5[r]).float().mean().item()} for r in resolutions}
    if alpha is not None:
        metrics["ensemble"] = {"top1": 100.0 * torch.cat(ens1).float().mean().item(),
                               "top5": 100.0 * torch.cat(ens5).float().mean().item()}
    return EvalResult(resolutions, metrics, correct, skipped, int(correct[resolutions[0]].numel()))


class CastInput(nn.Module):
    """Feeds a model of another dtype (``training.train --dtype float64``) the float32 views of an
    evaluation loader."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x):
        return self.model(x.to(self.dtype))


def format_table(metrics: dict, madds: dict, trained: Sequence[int] = (), title: str = "") -> str:
    """Paper Table 2 layout: Resolution | MAdds | Top-1 / Top-5 (%)."""
    lines = [title] if title else []
    lines.append(f"{'Resolution':>12}  {'MAdds':>7}  {'Top-1 / Top-5 (%)':>17}")
    for key, m in metrics.items():
        if key == "ensemble":
            continue
        r = int(key)
        mark = "" if (not trained or r in trained) else "*"
        ma = human(madds[key]) if madds.get(key) else "-"
        lines.append(f"{f'{r} x {r}{mark}':>12}  {ma:>7}  {m['top1']:>7.1f} / {m['top5']:<7.1f}")
    if "ensemble" in metrics:
        m = metrics["ensemble"]
        lines.append(f"{'ensemble':>12}  {'':>7}  {m['top1']:>7.1f} / {m['top5']:<7.1f}")
    if trained and any(int(k) not in trained for k in metrics if k != "ensemble"):
        lines.append("* untrained resolution, served by interpolated BN (paper 4.3)")
    return "\n".join(lines)


def format_matrix(matrix: dict[str, dict[str, float]], title: str = "") -> str:
    """Paper Table 1 layout: rows = wrong at (x), columns = right at (check)."""
    rs = list(matrix)
    lines = [title] if title else []
    lines.append("x \\ v " + "".join(f"{r:>7}" for r in rs))
    for w in rs:
        cells = "".join(f"{'-':>7}" if c == w else f"{matrix[w][c]:>7.1f}" for c in rs)
        lines.append(f"{w:>5} " + cells)
    return "\n".join(lines)


def val_loader(data_dir, resolutions, ckpt, batch_size=64, workers=2) -> DataLoader:
    ds = val_dataset(data_dir, resolutions, ckpt["mean"], ckpt["std"], ckpt["crop_pct"], ckpt["class_names"])
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers,
                      collate_fn=collate_views, persistent_workers=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", required=True, help="ImageFolder root with a val/ folder")
    ap.add_argument("--resolutions", type=int, nargs="+", help="default: the trained ones; others interpolate BN")
    ap.add_argument("--matrix", action="store_true", help="also print the Table 1 matrix")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    try:
        from rsnet_edge.cli import Output, check_outputs
        check_outputs([Output(a.json, "--json")], inputs=[a.ckpt, a.data])   # before any work
        if a.resolutions:
            normalize_resolutions(a.resolutions)
        model, ckpt = load_model(a.ckpt, interpolate=True)
        rs = list(normalize_resolutions(a.resolutions or ckpt["resolutions"]))
        model.to(a.device)
        loader = val_loader(a.data, rs, ckpt, a.batch_size, a.workers)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    trained = list(ckpt["resolutions"])
    alpha = ckpt.get("alpha") if rs == trained else None
    res = evaluate(model, loader, rs, a.device, alpha=alpha)
    madds = {str(r): ckpt.get("madds", {}).get(str(r)) or count_madds(model, r) for r in rs}
    print(format_table(res.metrics, madds, trained, title=f"{ckpt['arch']} RS-Net, {res.count} val images"))
    if res.skipped:
        print(f"skipped {res.skipped} unreadable image(s)")
    out = {"checkpoint": str(a.ckpt), "arch": ckpt["arch"], "resolutions": rs, "trained": trained,
           "metrics": res.metrics, "madds": madds, "images": res.count, "skipped": res.skipped}
    if a.matrix:
        out["matrix"] = res.matrix()
        print()
        print(format_matrix(out["matrix"], title="% of val images right at column resolution, wrong at row"))
    if a.json:
        atomic_write_bytes(a.json, json.dumps(out, indent=2).encode())
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run
    sys.exit(run(main))
