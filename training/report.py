"""The report of ``training.compare``: Table 2 as text (``format_report``) and Markdown
(``format_markdown``), the accuracy-vs-MAdds figure (``plot``, paper Fig. 1), and the statistics they
show (``matrix_from``: Table 1; ``mean_std``: mean and sample standard deviation over seeds). The
report dict itself is assembled by ``training.compare.build_report``.
"""

from __future__ import annotations

from pathlib import Path

import torch

import json

from rsnet_edge.files import atomic_write_bytes
from rsnet_edge.flops import human
from training.evaluate import format_matrix


def matrix_from(correct: dict[str, list[int]], resolutions: list[int]) -> dict[str, dict[str, float]]:
    """Table 1: % of images right at column resolution and wrong at row resolution."""
    c = {str(r): torch.tensor(correct[str(r)], dtype=torch.bool) for r in resolutions}
    return {str(w): {str(k): 100.0 * (c[str(k)] & ~c[str(w)]).float().mean().item()
                     for k in resolutions if k != w} for w in resolutions}


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    n = len(xs)
    m = sum(xs) / n
    return m, (sum((x - m) ** 2 for x in xs) / (n - 1)) ** 0.5 if n > 1 else 0.0


def _mparams(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def format_report(rep: dict, arch: str) -> str:
    keys = [str(r) for r in rep["resolutions"]]
    cols = list(rep["columns"])
    n = len(rep.get("seeds", [0]))
    w = 22 if n == 1 else 26
    pm = "+-"
    lines = [f"{arch}: top-1 / top-5 (%) on {rep['val_images']} val images, (top-1 gain over I-Nets); "
             f"{rep['settings']['epochs']} epoch(s) per model" + (
                 "" if n == 1 else f"; mean {pm} std over {n} seeds {rep['seeds']}, gains paired by seed"),
             f"{'Resolution':>10} {'MAdds':>6}  " + "".join(f"{c:>{w}}" for c in cols)]
    std = rep.get("columns_std", {})
    gstd = rep.get("top1_gain_std", {})
    for k in keys:
        cells = []
        for c in cols:
            m = rep["columns"][c][k]
            if n == 1:
                cell = f"{m['top1']:.1f} / {m['top5']:.1f}"
            else:
                cell = f"{m['top1']:.1f}{pm}{std[c][k]['top1']:.1f}"
            if c in rep["top1_gain_over_inets"]:
                g = rep["top1_gain_over_inets"][c][k]
                cell += f" ({g:+.1f})" if n == 1 else f" ({g:+.1f}{pm}{gstd[c][k]:.1f})"
            cells.append(f"{cell:>{w}}")
        lines.append(f"{k + ' x ' + k:>10} {human(rep['madds'][k]):>6}  " + "".join(cells))
    lines.append(f"{'Total params':>17}  " + "".join(f"{_mparams(rep['total_params'].get(c, 0)):>{w}}" for c in cols))
    mean_gain = {c: sum(g.values()) / len(g) for c, g in rep["top1_gain_over_inets"].items()}
    lines.append(f"{'mean gain':>17}  " + "".join(f"{mean_gain[c]:>+{w}.2f}" if c in mean_gain else f"{'':>{w}}"
                                                  for c in cols))
    if rep.get("gain_base"):
        other = {c: b for c, b in rep["gain_base"].items() if b != "I-Nets"}
        if other:
            lines.append("gains of " + ", ".join(f"{c} are over {b}" for c, b in other.items()))
    if "imax_drop_at_lowest" in rep:
        d = rep["imax_drop_at_lowest"]
        lines.append(f"I-max drop from {keys[0]} to {keys[-1]}: {d['mean']:.1f}" + ("" if n == 1 else f" {pm} {d['std']:.1f}")
                     + " points")
    if rep["ensemble"]:
        lines.append("ensemble (alpha-weighted logits): " + ", ".join(
            f"{c} {m['top1']:.1f} / {m['top5']:.1f}" for c, m in rep["ensemble"].items()))
    for name, mat in rep["matrices"].items():
        lines += ["", format_matrix(mat, title=f"Table 1, {name}: % of val images right at column "
                                               f"resolution (v), wrong at row resolution (x)"
                                               + ("" if n == 1 else f", mean over {n} seeds"))]
    if rep.get("each_inet_at_every_resolution"):
        lines += ["", "each I-Net tested at every resolution (top-1):",
                  f"{'':>8}" + "".join(f"{k:>7}" for k in keys)]
        for name, row in rep["each_inet_at_every_resolution"].items():
            lines.append(f"{name:>8}" + "".join(f"{row[k]['top1']:>7.1f}" for k in keys))
    lines.append("")
    lines.append("training time per model (s" + ("" if n == 1 else ", mean over seeds") + "): " + ", ".join(
        f"{c} {t:.0f}" for c, t in rep["train_time_s"].items() if t is not None))
    return "\n".join(lines)


def format_markdown(rep: dict) -> str:
    """The Table 2 part of the report as a Markdown table (``compare.md``): one row per model, one
    column per resolution, top-1 as mean +- std over seeds and the paired gain over the I-Nets of
    the same budget in parentheses."""
    keys = [str(r) for r in rep["resolutions"]]
    n = len(rep.get("seeds", [0]))
    std, gstd = rep.get("columns_std", {}), rep.get("top1_gain_std", {})
    base = rep.get("gain_base", {})
    head = (f"top-1 % ({'mean ± std over ' + str(n) + ' seeds; ' if n > 1 else ''}"
            f"gain over the I-Nets{', paired by seed' if n > 1 else ''})")
    lines = [f"| {head} | " + " | ".join(keys) + " | params |", "|---" * (len(keys) + 2) + "|"]
    for c, col in rep["columns"].items():
        cells = []
        for k in keys:
            cell = f"{col[k]['top1']:.1f}" + (f" ± {std[c][k]['top1']:.1f}" if n > 1 else "")
            if c in rep["top1_gain_over_inets"]:
                g = rep["top1_gain_over_inets"][c][k]
                cell += f" ({g:+.1f}" + (f" ± {gstd[c][k]:.1f}" if n > 1 else "") + ")"
            cells.append(cell)
        label = c + (f" (vs {base[c]})" if base.get(c, "I-Nets") != "I-Nets" else "")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_mparams(rep['total_params'].get(c, 0))} |")
    if "imax_drop_at_lowest" in rep:
        d = rep["imax_drop_at_lowest"]
        lines += ["", f"I-max drop from {keys[0]} to {keys[-1]}: {d['mean']:.1f}"
                  + (f" ± {d['std']:.1f}" if n > 1 else "") + " points"]
    return "\n".join(lines) + "\n"


def plot(rep: dict, path: Path, arch: str, styles: list | None = None, label: str = "RS-Net",
         title: str | None = None) -> bool:
    """Paper Fig. 1 style: top-1 vs MAdds of the ``styles`` columns (``[(column, plot kwargs)]``;
    default RS-Net, I-Nets, I-max, Parallel), the ``label`` column's points marked with their
    resolution. False (and a note) when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install 'rsnet-edge[train]'): no PNG written")
        return False
    keys = [str(r) for r in rep["resolutions"]]
    x = [rep["madds"][k] / 1e6 for k in keys]
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=130)
    if styles is None:
        imax = next(c for c in rep["columns"] if c.endswith("(I-max)"))
        styles = [("RS-Net", dict(color="tab:red", marker="o", lw=2.2, zorder=4)),
                  ("I-Nets", dict(color="tab:blue", marker="s", lw=1.6)),
                  (imax, dict(color="tab:gray", marker="^", lw=1.4, ls="--")),
                  ("Parallel", dict(color="tab:green", marker="d", lw=1.0, ls=":"))]
    for col, st in styles:
        if col in rep["columns"]:
            y = [rep["columns"][col][k]["top1"] for k in keys]
            ax.plot(x, y, label=col, ms=5, **st)
    for k, xx in zip(keys, x):
        ax.annotate(k, (xx, rep["columns"][label][k]["top1"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7, color="tab:red")
    ax.set_xlabel("MAdds (M)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title or f"{arch}: one RS-Net vs {len(keys)} I-Nets vs I-{keys[0]}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return True


def write_report(report_dir: Path, text: str, rep: dict, t0: float, arch: str, **plot_kw) -> None:
    """Write compare.txt/.json/.md and the plot into ``report_dir`` (each atomically) and say where."""
    import time
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(report_dir / "compare.txt", (text + "\n").encode())
    atomic_write_bytes(report_dir / "compare.json", json.dumps(rep, indent=1).encode())
    atomic_write_bytes(report_dir / "compare.md", format_markdown(rep).encode())
    drew = plot(rep, report_dir / "compare.png", arch, **plot_kw)
    print(f"\nwrote {report_dir / 'compare.txt'}, {report_dir / 'compare.json'}, {report_dir / 'compare.md'}"
          + (f", {report_dir / 'compare.png'}" if drew else "") + f" ({time.time() - t0:.0f} s)")
