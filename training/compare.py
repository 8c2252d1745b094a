"""Compare RS-Nets with individually trained networks (paper Table 2, Table 1, Fig. 1; ablations 4.3).

    python -m training.compare --data DIR --arch mobilenet_v2 --epochs E [--resolutions 224 192 160 128 96] \
        [--ablation] --out-dir runs/compare [--batch-size 64 --lr 0.02 --width-mult 0.35 ...]

Trains, one after another, with the same data, seed and per-model budget (epochs, batch, lr):

- I-Nets: one individual model per resolution (``--resolutions r``), each tested at its own resolution;
- I-max: the I-Net of the largest resolution tested at every resolution (its one BN set serves all);
- Parallel: shared weights + private BN, plain sum of cross-entropies (``--mred none``);
- RS-Net: parallel training + full MRED (``--mred full``);
- with ``--ablation``: vanilla MRED (Eq. 8), from-students (Eq. 10 without the ensemble teacher) and
  multi-crop (full MRED, one random crop per resolution).

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

# flags forwarded to training.train when given (name, type)
PASS = (("batch-size", int), ("lr", float), ("weight-decay", float), ("momentum", float),
        ("width-mult", float), ("max-steps-per-epoch", int), ("workers", int), ("device", str),
        ("save-every", int), ("views", str), ("threads", int))
SETTINGS = ("data", "arch", "epochs", "resolutions", "seed") + tuple(n.replace("-", "_") for n, _ in PASS
                                                                     if n not in ("workers", "device", "threads", "save-every"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--arch", default="mobilenet_v2", choices=sorted(trainer.ARCH_DEFAULTS))
    ap.add_argument("--epochs", type=int, required=True, help="per model")
    ap.add_argument("--resolutions", type=int, nargs="+", default=list(DEFAULT_RESOLUTIONS))
    ap.add_argument("--ablation", action="store_true", help="also vanilla MRED, from-students, multi-crop")
    ap.add_argument("--out-dir", required=True, help="checkpoints, per-model results and the report")
    ap.add_argument("--report-dir", help="where compare.{txt,json,png} go (default: --out-dir)")
    ap.add_argument("--seed", type=int, default=0)
    for name, typ in PASS:
        ap.add_argument(f"--{name}", type=typ, help="passed to training.train")
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--no-progress", action="store_true")
    return ap


def model_specs(resolutions: list[int], ablation: bool) -> list[dict]:
    """(name, label, extra training flags, trained resolutions) of every model to train."""
    specs = [{"name": f"inet_{r}", "label": f"I-{r}", "flags": ["--mred", "none"], "resolutions": [r]}
             for r in resolutions]
    specs += [{"name": "parallel", "label": "Parallel", "flags": ["--mred", "none"], "resolutions": resolutions},
              {"name": "rsnet", "label": "RS-Net", "flags": ["--mred", "full"], "resolutions": resolutions}]
    if ablation:
        specs += [{"name": "vanilla", "label": "Vanilla MRED", "flags": ["--mred", "vanilla"], "resolutions": resolutions},
                  {"name": "from_students", "label": "From students", "flags": ["--mred", "from_students"],
                   "resolutions": resolutions},
                  {"name": "multi_crop", "label": "Multi-crop", "flags": ["--mred", "full", "--multi-crop"],
                   "resolutions": resolutions}]
    return specs


def settings_of(a: argparse.Namespace) -> dict:
    return {k: (str(Path(getattr(a, k)).resolve()) if k == "data" else getattr(a, k)) for k in SETTINGS}


def train_argv(a: argparse.Namespace, spec: dict, ckpt: Path, extra: list[str]) -> list[str]:
    argv = ["--data", a.data, "--arch", a.arch, "--epochs", str(a.epochs), "--seed", str(a.seed),
            "--resolutions", *map(str, spec["resolutions"]), *spec["flags"], "--out", str(ckpt),
            "--resume", "auto"]
    for name, _ in PASS:
        v = getattr(a, name.replace("-", "_"))
        if v is not None:
            argv += [f"--{name}", str(v)]
    if a.no_progress:
        argv.append("--no-progress")
    return argv + list(extra)


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


def build_report(a: argparse.Namespace, specs: list[dict], results: dict[str, dict]) -> dict:
    rs = list(a.resolutions)
    keys = [str(r) for r in rs]
    madds = results[specs[0]["name"]]["madds"]
    inets = {k: results[f"inet_{k}"]["metrics"][k] for k in keys}
    imax = results[f"inet_{rs[0]}"]
    columns = {"I-Nets": inets, f"I-{rs[0]} (I-max)": {k: imax["metrics"][k] for k in keys}}
    params = {"I-Nets": sum(results[f"inet_{k}"]["params"].get("total", 0) for k in keys),
              f"I-{rs[0]} (I-max)": imax["params"].get("total", 0)}
    for s in specs[len(rs):]:
        columns[s["label"]] = {k: results[s["name"]]["metrics"][k] for k in keys}
        params[s["label"]] = results[s["name"]]["params"].get("total", 0)
    gains = {col: {k: m[k]["top1"] - inets[k]["top1"] for k in keys} for col, m in columns.items() if col != "I-Nets"}
    inet_correct = {k: results[f"inet_{k}"]["correct"][k] for k in keys}
    matrices = {"I-Nets": matrix_from(inet_correct, rs),
                "Parallel": matrix_from(results["parallel"]["correct"], rs),
                "RS-Net": matrix_from(results["rsnet"]["correct"], rs)}
    each_inet = {f"I-{r}": {k: results[f"inet_{r}"]["metrics"][k] for k in keys} for r in rs}
    return {"settings": settings_of(a), "resolutions": rs, "madds": madds, "columns": columns,
            "top1_gain_over_inets": gains, "total_params": params, "matrices": matrices,
            "each_inet_at_every_resolution": each_inet,
            "ensemble": {s["label"]: results[s["name"]]["metrics"].get("ensemble")
                         for s in specs[len(rs):] if results[s["name"]]["metrics"].get("ensemble")},
            "alpha": {s["label"]: results[s["name"]]["alpha"] for s in specs[len(rs):]},
            "train_time_s": {s["label"]: results[s["name"]]["train_time_s"] for s in specs},
            "val_images": results["rsnet"]["images"]}


def _mparams(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def format_report(rep: dict, arch: str) -> str:
    keys = [str(r) for r in rep["resolutions"]]
    cols = list(rep["columns"])
    w = 22
    lines = [f"{arch}: top-1 / top-5 (%) on {rep['val_images']} val images, (top-1 gain over I-Nets); "
             f"{rep['settings']['epochs']} epoch(s) per model",
             f"{'Resolution':>10} {'MAdds':>6}  " + "".join(f"{c:>{w}}" for c in cols)]
    for k in keys:
        cells = []
        for c in cols:
            m = rep["columns"][c][k]
            cell = f"{m['top1']:.1f} / {m['top5']:.1f}"
            if c != "I-Nets":
                cell += f" ({rep['top1_gain_over_inets'][c][k]:+.1f})"
            cells.append(f"{cell:>{w}}")
        lines.append(f"{k + ' x ' + k:>10} {human(rep['madds'][k]):>6}  " + "".join(cells))
    lines.append(f"{'Total params':>17}  " + "".join(f"{_mparams(rep['total_params'][c]):>{w}}" for c in cols))
    mean_gain = {c: sum(g.values()) / len(g) for c, g in rep["top1_gain_over_inets"].items()}
    lines.append(f"{'mean gain':>17}  {'':>{w}}" + "".join(f"{mean_gain[c]:>+{w}.2f}" for c in cols[1:]))
    if rep["ensemble"]:
        lines.append("ensemble (alpha-weighted logits): " + ", ".join(
            f"{c} {m['top1']:.1f} / {m['top5']:.1f}" for c, m in rep["ensemble"].items()))
    for name, mat in rep["matrices"].items():
        lines += ["", format_matrix(mat, title=f"Table 1, {name}: % of val images right at column "
                                               f"resolution (v), wrong at row resolution (x)")]
    lines += ["", "each I-Net tested at every resolution (top-1):",
              f"{'':>8}" + "".join(f"{k:>7}" for k in keys)]
    for name, row in rep["each_inet_at_every_resolution"].items():
        lines.append(f"{name:>8}" + "".join(f"{row[k]['top1']:>7.1f}" for k in keys))
    lines.append("")
    lines.append("training time per model (s): " + ", ".join(
        f"{c} {t:.0f}" for c, t in rep["train_time_s"].items() if t is not None))
    return "\n".join(lines)


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


def run(a: argparse.Namespace, extra: list[str]) -> dict:
    a.resolutions = list(normalize_resolutions(a.resolutions))
    out = Path(a.out_dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    report_dir = Path(a.report_dir or out)
    specs = model_specs(a.resolutions, a.ablation)
    settings = settings_of(a)
    results: dict[str, dict] = {}
    t0 = time.time()
    for i, spec in enumerate(specs, 1):
        rpath = out / "results" / f"{spec['name']}.json"
        ckpt = out / "models" / f"{spec['name']}.pt"
        head = f"[{i}/{len(specs)}] {spec['label']} ({spec['name']}, resolutions {spec['resolutions']})"
        if rpath.is_file():
            r = json.loads(rpath.read_text())
            if {k: (r.get("settings") or {}).get(k) for k in settings} != settings:
                raise ValueError(f"{rpath} was made with other settings ({r.get('settings')}); "
                                 f"use another --out-dir")
            print(f"{head}: finished earlier, skipped ({rpath})", flush=True)
            results[spec["name"]] = r
            continue
        print(f"{head}: training", flush=True)
        targs = trainer.build_parser().parse_args(train_argv(a, spec, ckpt, extra))
        trainer.train(targs)
        print(f"{head}: evaluating at {a.resolutions}", flush=True)
        r = evaluate_everywhere(ckpt, a, a.resolutions)
        r["settings"] = settings
        r["name"], r["label"] = spec["name"], spec["label"]
        atomic_write_bytes(rpath, json.dumps(r).encode())
        results[spec["name"]] = r
        print(f"{head}: top-1 " + "  ".join(f"{k}:{v['top1']:.1f}" for k, v in r["metrics"].items()), flush=True)
    rep = build_report(a, specs, results)
    text = format_report(rep, a.arch)
    print()
    print(text)
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(report_dir / "compare.txt", (text + "\n").encode())
    atomic_write_bytes(report_dir / "compare.json", json.dumps(rep, indent=1).encode())
    drew = plot(rep, report_dir / "compare.png", a.arch)
    print(f"\nwrote {report_dir / 'compare.txt'}, {report_dir / 'compare.json'}"
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
    sys.exit(main())
