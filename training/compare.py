"""Compare RS-Nets with individually trained networks (paper Table 2, Table 1, Fig. 1; ablations 4.3).

    python -m training.compare --data DIR --arch mobilenet_v2 --epochs E [--resolutions 224 192 160 128 96] \
        [--ablation] --out-dir runs/compare [--batch-size 64 --lr 0.02 --width-mult 0.35 ...]

Trains, one after another, with the same data, seed and per-model budget (epochs, batch, lr):

- I-Nets: one individual model per resolution (``--resolutions r``), each tested at its own resolution;
- I-max: the I-Net of the largest resolution tested at every resolution (its one BN set serves all);
- Parallel: shared weights + private BN, plain sum of cross-entropies (``--mred none``);
- RS-Net: parallel training + full MRED (``--mred full``);
- with ``--ablation``: vanilla MRED (Eq. 8), from-students (Eq. 10 without the ensemble teacher),
  multi-crop (full MRED, one random crop per resolution), RS-Net with the other ``--resolution-loss``
  (mean instead of the paper's sum, or back) and RS-Net with dropout switched (MobileNetV2: off if
  the run uses it, 0.2 if not);
- with ``--budgets 2 4``: the I-Nets and the RS-Net again at 2x and 4x the epochs (is a gap just
  underfitting?); their gains are against the I-Nets of the same budget.

``--seeds N`` trains every model once per seed (``--seed``, ``--seed``+1, ...): the tables show the
mean and the sample standard deviation over seeds, gains as mean +- std of the per-seed (paired) gain.

Every model is evaluated at every resolution on the validation set. Prints the Table 2 layout (top-1 /
top-5, top-1 gain over I-Nets, total parameters: I-Nets count all S models), the Table 1 matrices of
I-Nets, Parallel and RS-Net, and writes ``compare.json``, ``compare.txt`` and ``compare.png``
(accuracy vs MAdds as paper Fig. 1). Checkpoints go to ``OUT/models``, per-model results to
``OUT/results``: a rerun (after an interruption) skips models whose results exist and resumes a
model whose checkpoint is unfinished. Unknown flags are passed to ``training.train`` as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from rsnet_edge.checkpoint import CheckpointError, load_model
from rsnet_edge.flops import human
from rsnet_edge.manifest import atomic_write_bytes
from rsnet_edge.models import DEFAULT_RESOLUTIONS, normalize_resolutions
from training import train as trainer
from training.data import collate_views, val_dataset
from training.evaluate import evaluate, format_matrix

ABLATIONS = ("vanilla", "from_students", "multi_crop", "resolution_loss", "dropout")

# flags forwarded to training.train when given (name, type)
PASS = (("batch-size", int), ("lr", float), ("weight-decay", float), ("momentum", float),
        ("width-mult", float), ("max-steps-per-epoch", int), ("workers", int), ("device", str),
        ("save-every", int), ("views", str), ("threads", int), ("resolution-loss", str), ("dropout", float),
        ("crop-scale", float), ("warmup-epochs", float), ("head-lr-scale", float))
SETTINGS = ("data", "arch", "epochs", "resolutions", "seed") + tuple(n.replace("-", "_") for n, _ in PASS
                                                                     if n not in ("workers", "device", "threads", "save-every"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--arch", default="mobilenet_v2", choices=sorted(trainer.ARCH_DEFAULTS))
    ap.add_argument("--epochs", type=int, required=True, help="per model")
    ap.add_argument("--resolutions", type=int, nargs="+", default=list(DEFAULT_RESOLUTIONS))
    ap.add_argument("--ablation", nargs="*", choices=ABLATIONS, metavar="NAME",
                    help="also train RS-Net variants: vanilla (MRED Eq. 8), from_students, multi_crop, "
                    "resolution_loss (the other --resolution-loss), dropout (switched); no NAME: all of them")
    ap.add_argument("--seeds", type=int, default=1, help="train every model with N seeds (--seed, --seed+1, ...); "
                    "tables show mean +- std")
    ap.add_argument("--budgets", type=int, nargs="*", default=[], metavar="M",
                    help="also train the I-Nets and the RS-Net with M x --epochs (e.g. 2 4)")
    ap.add_argument("--out-dir", required=True, help="checkpoints, per-model results and the report")
    ap.add_argument("--report-dir", help="where compare.{txt,json,png} go (default: --out-dir)")
    ap.add_argument("--seed", type=int, default=0)
    for name, typ in PASS:
        ap.add_argument(f"--{name}", type=typ, help="passed to training.train")
    ap.add_argument("--jobs", type=int, default=1, help="models trained at the same time, each in its own "
                    "process with --threads (default: cores / jobs) threads (CPU; default 1)")
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--no-progress", action="store_true")
    return ap


def model_specs(resolutions: list[int], ablation=None, budgets=(), resolution_loss: str | None = None,
                dropout: float | None = None, arch: str = "mobilenet_v2") -> list[dict]:
    """(name, label, extra training flags, trained resolutions, epoch multiplier ``budget``) of every
    model to train for one seed. ``ablation``: None/False (none), True or [] (all), or names from
    :data:`ABLATIONS`."""
    if ablation is None or ablation is False:
        ablation = ()
    elif ablation is True or len(ablation) == 0:
        ablation = ABLATIONS
    def inets(m):
        sfx, lsfx = ("", "") if m == 1 else (f"_x{m}", f" x{m}")
        return [{"name": f"inet_{r}{sfx}", "label": f"I-{r}{lsfx}", "flags": ["--mred", "none"],
                 "resolutions": [r], "budget": m, "inet": True} for r in resolutions]

    specs = inets(1)
    specs += [{"name": "parallel", "label": "Parallel", "flags": ["--mred", "none"], "resolutions": resolutions},
              {"name": "rsnet", "label": "RS-Net", "flags": ["--mred", "full"], "resolutions": resolutions}]
    other_loss = "mean" if (resolution_loss or "sum") == "sum" else "sum"
    variants = {"vanilla": {"name": "vanilla", "label": "Vanilla MRED", "flags": ["--mred", "vanilla"]},
                "from_students": {"name": "from_students", "label": "From students",
                                  "flags": ["--mred", "from_students"]},
                "multi_crop": {"name": "multi_crop", "label": "Multi-crop", "flags": ["--mred", "full", "--multi-crop"]},
                "resolution_loss": {"name": f"rsnet_{other_loss}_loss", "label": f"RS-Net {other_loss} loss",
                                    "flags": ["--mred", "full", "--resolution-loss", other_loss]}}
    specs += [dict(variants[k], resolutions=resolutions) for k in ABLATIONS if k in ablation and k in variants]
    if "dropout" in ablation:
        if arch == "mobilenet_v2":
            effective = 0.2 if dropout is None else dropout
            other = 0.0 if effective > 0 else 0.2
            specs.append({"name": f"rsnet_dropout_{other:g}", "label": f"RS-Net dropout {other:g}",
                          "flags": ["--mred", "full", "--dropout", str(other)], "resolutions": resolutions})
    for m in budgets:
        if m != 1:
            specs += inets(m) + [{"name": f"rsnet_x{m}", "label": f"RS-Net x{m}", "flags": ["--mred", "full"],
                                  "resolutions": resolutions, "budget": m}]
    for sp in specs:
        sp.setdefault("budget", 1)
        sp.setdefault("inet", False)
    return specs


def seeds_of(a: argparse.Namespace) -> list[int]:
    if a.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {a.seeds}")
    if a.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {a.jobs}")
    if any(m < 1 for m in a.budgets):
        raise ValueError(f"--budgets must be >= 1, got {a.budgets}")
    return [a.seed + k for k in range(a.seeds)]


def seeded_specs(specs: list[dict], seeds: list[int]) -> list[dict]:
    """One training job per (seed, model); with one seed the files carry no seed suffix."""
    return [dict(sp, seed=sd, file=sp["name"] if len(seeds) == 1 else f"{sp['name']}_s{sd}")
            for sd in seeds for sp in specs]


def settings_of(a: argparse.Namespace) -> dict:
    return {k: (str(Path(getattr(a, k)).resolve()) if k == "data" else getattr(a, k)) for k in SETTINGS}


def train_argv(a: argparse.Namespace, spec: dict, ckpt: Path, extra: list[str]) -> list[str]:
    argv = ["--data", a.data, "--arch", a.arch, "--epochs", str(a.epochs * spec.get("budget", 1)),
            "--seed", str(spec.get("seed", a.seed)), "--resolutions", *map(str, spec["resolutions"]),
            "--out", str(ckpt), "--resume", "auto", "--eval-every", "0"]  # evaluate_everywhere tests it after
    for name, _ in PASS:
        v = getattr(a, name.replace("-", "_"))
        if v is not None:
            argv += [f"--{name}", str(v)]
    if a.no_progress:
        argv.append("--no-progress")
    return argv + list(spec["flags"]) + list(extra)  # the model's own flags win over the shared ones


@torch.no_grad()
def evaluate_everywhere(ckpt_path: Path, a: argparse.Namespace, resolutions: list[int]) -> dict:
    """A trained model at every compared resolution: top-1/top-5, per-image top-1 hits, MAdds."""
    model, ckpt = load_model(ckpt_path, interpolate=True)  # an I-Net's one BN set serves all sizes
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    ds = val_dataset(a.data, resolutions, ckpt["mean"], ckpt["std"], ckpt["crop_pct"], ckpt["class_names"])
    loader = DataLoader(ds, batch_size=a.eval_batch_size, shuffle=False, num_workers=a.workers or 0,
                        collate_fn=collate_views, worker_init_fn=trainer._worker_init)
    trained = list(ckpt["resolutions"])
    learned = (ckpt.get("train_args") or {}).get("mred", "full") != "none"  # Parallel: alpha stays 0
    alpha = ckpt.get("alpha") if trained == resolutions and len(trained) > 1 and learned else None
    res = evaluate(model, loader, resolutions, device, alpha=alpha, progress=not a.no_progress, desc="evaluate")
    madds = {str(r): ckpt.get("madds", {}).get(str(r)) for r in resolutions}
    if any(v is None for v in madds.values()):
        from rsnet_edge.flops import count_madds
        madds = {str(r): count_madds(model, r) for r in resolutions}
    return {"trained": trained, "metrics": res.metrics, "madds": madds, "params": ckpt.get("params", {}),
            "correct": {str(r): res.correct[r].int().tolist() for r in resolutions},
            "images": res.count, "train_time_s": ckpt.get("train_time_s"),
            "alpha": torch.softmax(ckpt["alpha"].float(), 0).tolist() if alpha is not None else None}


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


def _columns_one_seed(rs: list[int], specs: list[dict], res: dict[str, dict]) -> tuple[dict, dict]:
    """Table 2 columns of ONE seed: {column: {res: {"top1", "top5"}}} and each column's gain base."""
    keys = [str(r) for r in rs]
    columns, base = {}, {}
    for m in sorted({sp["budget"] for sp in specs if sp["inet"]}):
        sfx = "" if m == 1 else f"_x{m}"
        col = "I-Nets" if m == 1 else f"I-Nets x{m}"
        columns[col] = {k: res[f"inet_{k}{sfx}"]["metrics"][k] for k in keys}
        base[col] = None
        if m == 1:
            imax = f"I-{rs[0]} (I-max)"
            columns[imax] = {k: res[f"inet_{rs[0]}"]["metrics"][k] for k in keys}
            base[imax] = "I-Nets"
    for sp in specs:
        if not sp["inet"]:
            columns[sp["label"]] = {k: res[sp["name"]]["metrics"][k] for k in keys}
            base[sp["label"]] = "I-Nets" if sp["budget"] == 1 else f"I-Nets x{sp['budget']}"
    return columns, base


def build_report(a: argparse.Namespace, specs: list[dict], results: dict[str, dict[int, dict]]) -> dict:
    """``results[model name][seed]`` -> the report: means over seeds (``columns``, gains, matrices),
    sample standard deviations (``columns_std``, ``top1_gain_std``) and every seed's top-1 (``per_seed``)."""
    rs = list(a.resolutions)
    keys = [str(r) for r in rs]
    seeds = sorted(next(iter(results.values())))
    first = {name: by_seed[seeds[0]] for name, by_seed in results.items()}
    per_seed = {sd: _columns_one_seed(rs, specs, {n: results[n][sd] for n in results}) for sd in seeds}
    base = per_seed[seeds[0]][1]
    cols = list(base)
    columns, columns_std, gains, gains_std = {}, {}, {}, {}
    for c in cols:
        columns[c], columns_std[c] = {}, {}
        for k in keys:
            t1 = mean_std([per_seed[sd][0][c][k]["top1"] for sd in seeds])
            t5 = mean_std([per_seed[sd][0][c][k]["top5"] for sd in seeds])
            columns[c][k] = {"top1": t1[0], "top5": t5[0]}
            columns_std[c][k] = {"top1": t1[1], "top5": t5[1]}
        if base[c] is not None:  # paired by seed: gain of this seed's model over this seed's I-Nets
            g = {k: mean_std([per_seed[sd][0][c][k]["top1"] - per_seed[sd][0][base[c]][k]["top1"] for sd in seeds])
                 for k in keys}
            gains[c] = {k: v[0] for k, v in g.items()}
            gains_std[c] = {k: v[1] for k, v in g.items()}
    imax_col = f"I-{rs[0]} (I-max)"
    drop = mean_std([per_seed[sd][0][imax_col][keys[0]]["top1"] - per_seed[sd][0][imax_col][keys[-1]]["top1"]
                     for sd in seeds])
    params = {"I-Nets": sum(first[f"inet_{k}"]["params"].get("total", 0) for k in keys),
              imax_col: first[f"inet_{rs[0]}"]["params"].get("total", 0)}
    for sp in specs:
        if not sp["inet"]:
            params[sp["label"]] = first[sp["name"]]["params"].get("total", 0)
        elif sp["budget"] != 1:
            params[f"I-Nets x{sp['budget']}"] = params["I-Nets"]

    def mean_matrix(correct_of) -> dict:
        mats = [matrix_from(correct_of(sd), rs) for sd in seeds]
        return {w: {c: sum(m[w][c] for m in mats) / len(mats) for c in mats[0][w]} for w in mats[0]}
    matrices = {"I-Nets": mean_matrix(lambda sd: {k: results[f"inet_{k}"][sd]["correct"][k] for k in keys}),
                "Parallel": mean_matrix(lambda sd: results["parallel"][sd]["correct"]),
                "RS-Net": mean_matrix(lambda sd: results["rsnet"][sd]["correct"])}
    each_inet = {f"I-{r}": {k: {"top1": mean_std([results[f"inet_{r}"][sd]["metrics"][k]["top1"] for sd in seeds])[0]}
                            for k in keys} for r in rs}
    multi = [sp for sp in specs if not sp["inet"]]
    ens = {}
    for sp in multi:
        if first[sp["name"]]["metrics"].get("ensemble"):
            ens[sp["label"]] = {t: mean_std([results[sp["name"]][sd]["metrics"]["ensemble"][t] for sd in seeds])[0]
                                for t in ("top1", "top5")}
    return {"settings": settings_of(a), "seeds": seeds, "resolutions": rs, "madds": first[specs[0]["name"]]["madds"],
            "columns": columns, "columns_std": columns_std, "top1_gain_over_inets": gains,
            "top1_gain_std": gains_std, "gain_base": {c: b for c, b in base.items() if b is not None},
            "imax_drop_at_lowest": {"mean": drop[0], "std": drop[1]},
            "per_seed": {str(sd): {c: {k: v["top1"] for k, v in col.items()} for c, col in per_seed[sd][0].items()}
                         for sd in seeds},
            "total_params": params, "matrices": matrices,
            "each_inet_at_every_resolution": each_inet, "ensemble": ens,
            "alpha": {sp["label"]: first[sp["name"]]["alpha"] for sp in multi},
            "train_time_s": {sp["label"]: mean_std([results[sp["name"]][sd]["train_time_s"] or 0.0 for sd in seeds])[0]
                             for sp in specs},
            "val_images": first["rsnet"]["images"]}


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


def plot(rep: dict, path: Path, arch: str) -> bool:
    """Paper Fig. 1 style: top-1 vs MAdds. False (and a note) when matplotlib is missing."""
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
    imax = next(c for c in rep["columns"] if c.endswith("(I-max)"))
    styles = [("RS-Net", dict(color="tab:red", marker="o", lw=2.2, zorder=4)),
              ("I-Nets", dict(color="tab:blue", marker="s", lw=1.6)),
              (imax, dict(color="tab:gray", marker="^", lw=1.4, ls="--")),
              ("Parallel", dict(color="tab:green", marker="d", lw=1.0, ls=":"))]
    for col, st in styles:
        y = [rep["columns"][col][k]["top1"] for k in keys]
        ax.plot(x, y, label=col, ms=5, **st)
    for k, xx in zip(keys, x):
        ax.annotate(k, (xx, rep["columns"]["RS-Net"][k]["top1"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7, color="tab:red")
    ax.set_xlabel("MAdds (M)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{arch}: one RS-Net vs {len(keys)} I-Nets vs I-{keys[0]}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return True


def train_one(a: argparse.Namespace, spec: dict, out: Path, extra: list[str], settings: dict,
              quiet: bool = False) -> dict:
    """Train one model (resuming an unfinished checkpoint), evaluate it at every compared resolution
    and write its results file; returns the results. Runs in the main process or a pool worker."""
    if a.threads:
        torch.set_num_threads(a.threads)
    ckpt = out / "models" / f"{spec['file']}.pt"
    targs = trainer.build_parser().parse_args(train_argv(a, spec, ckpt, extra))
    if quiet:
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):   # per-epoch lines of parallel jobs would interleave
            trainer.train(targs)
    else:
        trainer.train(targs)
    r = evaluate_everywhere(ckpt, a, a.resolutions)
    r["settings"] = settings
    r["name"], r["label"] = spec["name"], spec["label"]
    atomic_write_bytes(out / "results" / f"{spec['file']}.json", json.dumps(r).encode())
    return r


def run(a: argparse.Namespace, extra: list[str]) -> dict:
    a.resolutions = list(normalize_resolutions(a.resolutions))
    out = Path(a.out_dir)
    report_dir = Path(a.report_dir or out)
    specs = model_specs(a.resolutions, a.ablation, a.budgets, a.resolution_loss, a.dropout, a.arch)
    jobs = seeded_specs(specs, seeds_of(a))
    # every argument is checked before anything is created (no empty out-dir skeleton on refusal)
    from rsnet_edge.cli import Output, check_outputs
    check_outputs([Output(out, "--out-dir", "dir"), Output(report_dir, "--report-dir", "dir")],
                  inputs=[a.data])
    for sub in ("train", "val"):
        if not (Path(a.data) / sub).is_dir():
            raise FileNotFoundError(f"--data {a.data} has no {sub}/ folder (ImageFolder layout expected)")
    for spec in jobs:                      # training.train's argparse refuses bad pass-through flags here
        trainer.resolve_defaults(trainer.build_parser().parse_args(
            train_argv(a, spec, out / "models" / f"{spec['name']}.pt", extra)))
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    settings = settings_of(a)
    results: dict[str, dict] = {}
    t0 = time.time()
    todo = []
    for i, spec in enumerate(jobs, 1):
        rpath = out / "results" / f"{spec['file']}.json"
        head = f"[{i}/{len(jobs)}] {spec['label']} ({spec['file']}, resolutions {spec['resolutions']})"
        if rpath.is_file():
            r = json.loads(rpath.read_text())
            if {k: (r.get("settings") or {}).get(k) for k in settings} != settings:
                raise ValueError(f"{rpath} was made with other settings ({r.get('settings')}); "
                                 f"use another --out-dir")
            print(f"{head}: finished earlier, skipped ({rpath})", flush=True)
            results.setdefault(spec["name"], {})[spec["seed"]] = r
        else:
            todo.append((head, spec))

    def done(head: str, spec: dict, r: dict) -> None:
        results.setdefault(spec["name"], {})[spec["seed"]] = r
        print(f"{head}: top-1 " + "  ".join(f"{k}:{v['top1']:.1f}" for k, v in r["metrics"].items())
              + f" ({time.time() - t0:.0f} s)", flush=True)

    if a.jobs == 1 or len(todo) <= 1:
        for head, spec in todo:
            print(f"{head}: training", flush=True)
            done(head, spec, train_one(a, spec, out, extra, settings))
    else:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        b = argparse.Namespace(**vars(a))
        b.no_progress = True                  # parallel bars would interleave; one line per finished model
        if b.threads is None:
            b.threads = max(1, (os.cpu_count() or 1) // a.jobs)
        with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context("spawn")) as pool:
            running = {}
            # the longest first (epochs x pixels), so that the last one to finish is a short one
            todo.sort(key=lambda hs: -hs[1].get("budget", 1) * sum(r * r for r in hs[1]["resolutions"]))
            for head, spec in todo:
                running[pool.submit(train_one, b, spec, out, extra, settings, True)] = (head, spec)
            print(f"training {len(todo)} model(s), {a.jobs} at a time, {b.threads} thread(s) each", flush=True)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    head, spec = running.pop(f)
                    done(head, spec, f.result())
    rep = build_report(a, specs, results)
    text = format_report(rep, a.arch)
    print()
    print(text)
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(report_dir / "compare.txt", (text + "\n").encode())
    atomic_write_bytes(report_dir / "compare.json", json.dumps(rep, indent=1).encode())
    atomic_write_bytes(report_dir / "compare.md", format_markdown(rep).encode())
    drew = plot(rep, report_dir / "compare.png", a.arch)
    print(f"\nwrote {report_dir / 'compare.txt'}, {report_dir / 'compare.json'}, {report_dir / 'compare.md'}"
          + (f", {report_dir / 'compare.png'}" if drew else "") + f" ({time.time() - t0:.0f} s)")
    return rep


def main(argv=None) -> int:
    a, extra = build_parser().parse_known_args(argv)
    try:
        run(a, extra)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # training.train's argparse refusing a passed-through flag
        return int(e.code or 2)
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
