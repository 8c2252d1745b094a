"""Bring your own model: ``training.compare --from MODEL``, the table a user needs to decide.

    python -m training.compare --from MODEL --data DIR --epochs E --resolutions 224 192 160 128 96 \
        --out-dir runs/byom [--seeds N] [--ft-epochs K] [--ft-lr LR] [--teacher-weight W] [--no-inets]

MODEL is the user's single model (an rsnet-edge checkpoint, or a torchvision-layout state dict of
``--arch`` with the data's classes), or ``inet``: the I-Net of the largest resolution, trained here
per seed with ``--epochs`` (the built-in protocol, docs/byom.md). For every seed it makes and
evaluates at every resolution, on DIR/val:

- **your model**: MODEL itself (its one BN set serves every size);
- **recalibrated**: ``training.recalibrate`` of MODEL (per-resolution BN statistics, no weight trained);
- **fine-tuned RS-Net**: ``training.train --init MODEL --teacher MODEL`` with the fine-tune recipe
  (``training.config.FINETUNE_RECIPE``; ``--ft-epochs``, ``--ft-lr``, ``--teacher-weight`` change it,
  ``--teacher-weight 0`` trains without the teacher);
- **I-Nets**: one model per resolution trained from scratch with ``--epochs`` and the command's
  training flags (``--lr``, ``--warmup-epochs``, ... are theirs; the fine-tune takes the recipe's),
  unless ``--no-inets``.

Every row shows top-1 (mean +- std over seeds) and its paired gain over the I-Nets (over your model
with ``--no-inets``); the report goes to ``compare.{txt,json,md,png}`` as ``training.compare``'s.
Models, results and reruns: as ``training.compare`` (``training/jobs.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import torch

from rsnet_edge.checkpoint import FORMAT, IMAGENET_MEAN, IMAGENET_STD, save_checkpoint, validate_checkpoint, versions
from rsnet_edge.files import atomic_write_bytes
from rsnet_edge.models import create_model, load_single_state_dict, normalize_resolutions, param_counts
from training.config import FINETUNE_FULL_LR_STEPS, FINETUNE_LR, FINETUNE_RECIPE, make_config, parse_overrides
from training.data import train_dataset
from training.finetune import read_init_file
from training.jobs import evaluate_everywhere, run_jobs, seeded_specs, seeds_of, settings_of, train_config, train_one
from training.recalibrate import DEFAULT_IMAGES, recalibrate
from training.report import format_report, mean_std, write_report
from training.train import arch_args_of

YOURS, RECAL, FT, INETS = "your model", "recalibrated", "fine-tuned RS-Net", "I-Nets"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``training.compare``'s flags for ``--from``."""
    ap.add_argument("--from", dest="from_", metavar="MODEL",
                    help="bring your own model: compare MODEL (a checkpoint or torchvision-layout state "
                         "dict; 'inet': the largest-resolution I-Net trained here) with its recalibrated "
                         "and fine-tuned RS-Nets and the I-Nets (training/byom.py)")
    ap.add_argument("--ft-epochs", type=int, help=f"--from: fine-tune epochs (default the recipe's "
                    f"{FINETUNE_RECIPE['epochs']})")
    ap.add_argument("--ft-lr", type=float, help=f"--from: fine-tune lr (default the recipe's "
                    f"{FINETUNE_LR:g} x batch/256, x steps/{FINETUNE_FULL_LR_STEPS} for a shorter run)")
    ap.add_argument("--teacher-weight", type=float, default=1.0, help="--from: weight of the teacher "
                    "term of the fine-tune (default 1; 0: no teacher)")
    ap.add_argument("--recal-images", type=int, default=DEFAULT_IMAGES,
                    help=f"--from: training views per resolution of the recalibration (default {DEFAULT_IMAGES})")
    ap.add_argument("--no-inets", action="store_true", help="--from: do not train the I-Nets")


def byom_settings(a: argparse.Namespace) -> dict:
    src = a.from_ if a.from_ == "inet" else str(Path(a.from_).resolve())
    return {**settings_of(a), "from": src, "ft_epochs": a.ft_epochs, "ft_lr": a.ft_lr,
            "teacher_weight": a.teacher_weight, "recal_images": a.recal_images}


def byom_specs(a: argparse.Namespace, out: Path, start: Path | None) -> tuple[list[dict], list[dict]]:
    """(phase 1: the I-Nets; phase 2: your model, recalibrated, fine-tuned) for every seed. The
    phase-2 jobs of a seed start from ``start`` or (``--from inet``) that seed's largest I-Net."""
    rs, seeds = a.resolutions, seeds_of(a)
    inets = [r for r in rs if not a.no_inets or (start is None and r == rs[0])]
    first = [{"name": f"inet_{r}", "label": f"I-{r}", "kind": "train", "options": {"mred": "none"},
              "resolutions": [r], "budget": 1, "inet": True} for r in inets]
    phase1 = seeded_specs(first, seeds)
    phase2 = []
    for k in seeds:
        sfx = "" if len(seeds) == 1 else f"_s{k}"
        src = start if start is not None else out / "models" / f"inet_{rs[0]}{sfx}.pt"
        teacher = {"teacher": str(src), "teacher_weight": a.teacher_weight} if a.teacher_weight > 0 else {}
        ft = {"mred": None, "init": str(src), "epochs": a.ft_epochs, "lr": a.ft_lr, "warmup_epochs": None,
              "resolution_loss": None, **teacher}  # None: the fine-tune recipe's value (training.config)
        phase2 += [{"name": "yours", "label": YOURS, "kind": "evaluate", "source": str(src), "resolutions": [rs[0]],
                    "seed": k, "file": f"yours{sfx}"},
                   {"name": "recal", "label": RECAL, "kind": "recalibrate", "source": str(src), "resolutions": rs,
                    "seed": k, "file": f"recal{sfx}"},
                   {"name": "finetune", "label": FT, "kind": "train", "options": ft, "resolutions": rs,
                    "seed": k, "file": f"finetune{sfx}"}]
    for sp in phase2:
        sp.update(budget=1, inet=False)
    return phase1, phase2


def byom_one(a: argparse.Namespace, spec: dict, out: Path, overrides: dict, settings: dict,
             quiet: bool = False) -> dict:
    """One job of :func:`byom_specs` (in this process or a ``--jobs`` worker): train (as
    ``training.compare``), recalibrate, or only evaluate; writes and returns its results."""
    if spec["kind"] == "train":
        return train_one(a, spec, out, overrides, settings, quiet)
    if a.threads:
        torch.set_num_threads(a.threads)
    path = Path(spec["source"])
    if spec["kind"] == "recalibrate":
        path = out / "models" / f"{spec['file']}.pt"
        ns = argparse.Namespace(init=spec["source"], data=a.data, resolutions=a.resolutions, out=str(path),
                                images=a.recal_images, arch=None, width_mult=None, dropout=None,
                                batch_size=a.batch_size or 64, crop_scale=a.crop_scale, seed=spec["seed"],
                                workers=a.workers or 0, threads=a.threads, device=a.device, force=True,
                                no_progress=a.no_progress or quiet)
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            recalibrate(ns)
    r = evaluate_everywhere(path, a, a.resolutions)
    r.update(settings=settings, name=spec["name"], label=spec["label"])
    atomic_write_bytes(out / "results" / f"{spec['file']}.json", json.dumps(r).encode())
    return r


def load_source(a: argparse.Namespace, out: Path) -> tuple[Path, dict | None]:
    """MODEL as an rsnet-edge checkpoint, checked against the data and ``--arch`` before any work:
    ``(its path, None)`` for a checkpoint; for a state dict ``(OUT/models/source.pt, the checkpoint
    to write there)``: the single model of the largest resolution."""
    obj = read_init_file(a.from_, flag="--from")
    classes = train_dataset(a.data, [a.resolutions[0]], IMAGENET_MEAN, IMAGENET_STD).classes
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        validate_checkpoint(obj, f"--from {a.from_}")
        if obj["arch"] != a.arch:
            raise ValueError(f"--from {a.from_} holds a {obj['arch']} model; pass --arch {obj['arch']}")
        if list(obj["class_names"]) != classes:
            raise ValueError(f"--from {a.from_} predicts other classes ({len(obj['class_names'])}) than "
                             f"{a.data}/train ({len(classes)})")
        return Path(a.from_), None
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())):
        raise ValueError(f"--from {a.from_} is neither a state dict (a dict of tensors) nor an rsnet-edge checkpoint")
    path = out / "models" / "source.pt"
    cfg = make_config(data=a.data, out=str(path), arch=a.arch, resolutions=[a.resolutions[0]],
                      **{k: getattr(a, k) for k in ("width_mult", "dropout") if getattr(a, k) is not None})
    arch_args = arch_args_of(cfg, len(classes))
    model = create_model(cfg.arch, cfg.resolutions, **arch_args)
    try:
        load_single_state_dict(model, obj)
    except ValueError as e:
        raise ValueError(f"--from {a.from_} does not fit a {cfg.arch} of these arguments with {len(classes)} "
                         f"classes: {str(e).replace('state dict does not fit this RS-Net: ', '')}") from None
    return path, {"arch": cfg.arch, "arch_args": arch_args, "resolutions": cfg.resolutions, "class_names": classes,
                  "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "crop_pct": 0.875,
                  "state_dict": model.state_dict(), "alpha": torch.zeros(1), "params": param_counts(model),
                  "train_args": {"mred": "none", "source": str(a.from_)}, "versions": versions()}


def build_byom_report(a: argparse.Namespace, results: dict, settings: dict) -> dict:
    """The report dict of ``training.compare`` (columns, stds, paired gains over the I-Nets or your
    model, parameters, per-seed top-1) for the four rows, plus each row's gain over your model."""
    rs, keys = a.resolutions, [str(r) for r in a.resolutions]
    seeds = sorted(results["finetune"])
    cols = {YOURS: lambda sd: results["yours"][sd]["metrics"], RECAL: lambda sd: results["recal"][sd]["metrics"],
            FT: lambda sd: results["finetune"][sd]["metrics"]}
    if not a.no_inets:
        cols[INETS] = lambda sd: {k: results[f"inet_{k}"][sd]["metrics"][k] for k in keys}
    base = INETS if INETS in cols else YOURS
    per_seed = {sd: {c: f(sd) for c, f in cols.items()} for sd in seeds}
    columns, columns_std, gains, gains_std, over_yours = {}, {}, {}, {}, {}
    for c in cols:
        columns[c], columns_std[c] = {}, {}
        for k in keys:
            t1 = mean_std([per_seed[sd][c][k]["top1"] for sd in seeds])
            t5 = mean_std([per_seed[sd][c][k]["top5"] for sd in seeds])
            columns[c][k], columns_std[c][k] = {"top1": t1[0], "top5": t5[0]}, {"top1": t1[1], "top5": t5[1]}
        for target, out_mean, out_std in ((base, gains, gains_std), (YOURS, over_yours, None)):
            if c == target:
                continue
            g = {k: mean_std([per_seed[sd][c][k]["top1"] - per_seed[sd][target][k]["top1"] for sd in seeds])
                 for k in keys}
            out_mean[c] = {k: v[0] for k, v in g.items()}
            if out_std is not None:
                out_std[c] = {k: v[1] for k, v in g.items()}
    first = seeds[0]
    params = {YOURS: results["yours"][first]["params"].get("total", 0),
              RECAL: results["recal"][first]["params"].get("total", 0),
              FT: results["finetune"][first]["params"].get("total", 0)}
    if INETS in cols:
        params[INETS] = sum(results[f"inet_{k}"][first]["params"].get("total", 0) for k in keys)
    return {"settings": settings, "seeds": seeds, "resolutions": rs, "madds": results["finetune"][first]["madds"],
            "columns": columns, "columns_std": columns_std, "top1_gain_over_inets": gains,
            "top1_gain_std": gains_std, "gain_base": {c: base for c in gains},
            "top1_gain_over_your_model": over_yours,
            "per_seed": {str(sd): {c: {k: v["top1"] for k, v in col.items()} for c, col in per_seed[sd].items()}
                         for sd in seeds},
            "total_params": params, "matrices": {}, "ensemble": {},
            "train_time_s": {FT: mean_std([results["finetune"][sd]["train_time_s"] or 0.0 for sd in seeds])[0]},
            "val_images": results["finetune"][first]["images"]}


def run_from(a: argparse.Namespace, extra: list[str]) -> dict:
    """``training.compare --from``: check everything, train/recalibrate/evaluate, write the report."""
    a.resolutions = list(normalize_resolutions(a.resolutions))
    out = Path(a.out_dir)
    report_dir = Path(a.report_dir or out)
    seeds_of(a)
    if a.ablation is not None or a.budgets:
        raise ValueError("--from compares your model, its recalibrated and fine-tuned RS-Nets and the I-Nets: "
                         "not with --ablation or --budgets")
    if a.ft_epochs is not None and a.ft_epochs < 1 or a.teacher_weight < 0 or a.recal_images < 1:
        raise ValueError("--ft-epochs and --recal-images must be >= 1, --teacher-weight >= 0")
    from rsnet_edge.cli import Output, check_outputs
    check_outputs([Output(out, "--out-dir", "dir"), Output(report_dir, "--report-dir", "dir")],
                  inputs=[a.data] + ([] if a.from_ == "inet" else [a.from_]))
    for sub in ("train", "val"):
        if not (Path(a.data) / sub).is_dir():
            raise FileNotFoundError(f"--data {a.data} has no {sub}/ folder (ImageFolder layout expected)")
    start, to_write = (None, None) if a.from_ == "inet" else load_source(a, out)   # checked before any work
    overrides = parse_overrides(extra)
    phase1, phase2 = byom_specs(a, out, start)
    for spec in phase1 + phase2:                                 # every bad value before anything is made
        if spec["kind"] == "train":
            train_config(a, spec, out / "models" / f"{spec['file']}.pt", overrides)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    if to_write is not None:
        save_checkpoint(to_write, start)
    settings = byom_settings(a)
    t0 = time.time()
    total = len(phase1) + len(phase2)
    results = run_jobs(a, phase1, out, overrides, settings, byom_one, 1, total)
    results.update(run_jobs(a, phase2, out, overrides, settings, byom_one, len(phase1) + 1, total))
    rep = build_byom_report(a, results, settings)
    text = format_report(rep, a.arch) + "\n" + "\n".join(
        f"{c} - {YOURS}: " + "  ".join(f"{k}:{g:+.1f}" for k, g in rep["top1_gain_over_your_model"][c].items())
        for c in (RECAL, FT))
    print()
    print(text)
    write_report(report_dir, text, rep, t0, a.arch, styles=BYOM_STYLES, label=FT,
                 title=f"{a.arch}: your model, recalibrated, fine-tuned RS-Net, I-Nets")
    return rep


BYOM_STYLES = [(FT, dict(color="tab:red", marker="o", lw=2.2, zorder=4)),
               (INETS, dict(color="tab:blue", marker="s", lw=1.6)),
               (RECAL, dict(color="tab:green", marker="d", lw=1.2, ls=":")),
               (YOURS, dict(color="tab:gray", marker="^", lw=1.4, ls="--"))]
