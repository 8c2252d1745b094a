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
model whose checkpoint is unfinished. Unknown flags are training flags: parsed once with
``training.train``'s parser, they are passed on to every model (after the model's own options).

``--from MODEL`` (bring your own model, ``training/byom.py``) compares a model you have with its
recalibrated and fine-tuned RS-Nets and the I-Nets instead.

Each model is trained in this process (or a ``--jobs`` worker) by ``training.train.train`` with a
config from ``training.config.make_config``. The report's text, Markdown and figure are
``training/report.py``'s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rsnet_edge.checkpoint import CheckpointError
from rsnet_edge import archs
from rsnet_edge.models import DEFAULT_RESOLUTIONS, normalize_resolutions
from training.byom import add_arguments, run_from
from training.config import arch_names, parse_overrides
from training.jobs import (PASS, SETTINGS, evaluate_everywhere, run_jobs, seeded_specs, seeds_of,  # noqa: F401
                           settings_of, train_config, train_one)
from training.report import format_report, matrix_from, mean_std, write_report

ABLATIONS = ("vanilla", "from_students", "multi_crop", "resolution_loss", "dropout")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--arch", default="mobilenet_v2", choices=arch_names())
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
    add_arguments(ap)
    return ap


def model_specs(resolutions: list[int], ablation=None, budgets=(), resolution_loss: str | None = None,
                dropout: float | None = None, arch: str = "mobilenet_v2") -> list[dict]:
    """(name, label, its own training ``options`` (:func:`training.config.make_config` keywords),
    trained resolutions, epoch multiplier ``budget``) of every model to train for one seed.
    ``ablation``: None/False (none), True or [] (all), or names from :data:`ABLATIONS`."""
    if ablation is None or ablation is False:
        ablation = ()
    elif ablation is True or len(ablation) == 0:
        ablation = ABLATIONS
    def inets(m):
        sfx, lsfx = ("", "") if m == 1 else (f"_x{m}", f" x{m}")
        return [{"name": f"inet_{r}{sfx}", "label": f"I-{r}{lsfx}", "options": {"mred": "none"},
                 "resolutions": [r], "budget": m, "inet": True} for r in resolutions]

    specs = inets(1)
    specs += [{"name": "parallel", "label": "Parallel", "options": {"mred": "none"}, "resolutions": resolutions},
              {"name": "rsnet", "label": "RS-Net", "options": {"mred": "full"}, "resolutions": resolutions}]
    other_loss = "mean" if (resolution_loss or "sum") == "sum" else "sum"
    variants = {"vanilla": {"name": "vanilla", "label": "Vanilla MRED", "options": {"mred": "vanilla"}},
                "from_students": {"name": "from_students", "label": "From students",
                                  "options": {"mred": "from_students"}},
                "multi_crop": {"name": "multi_crop", "label": "Multi-crop",
                               "options": {"mred": "full", "multi_crop": True}},
                "resolution_loss": {"name": f"rsnet_{other_loss}_loss", "label": f"RS-Net {other_loss} loss",
                                    "options": {"mred": "full", "resolution_loss": other_loss}}}
    specs += [dict(variants[k], resolutions=resolutions) for k in ABLATIONS if k in ablation and k in variants]
    if "dropout" in ablation:
        spec = archs.get(arch)
        if spec.dropout_arg:                         # the architecture has a classifier dropout
            effective = spec.recipe.dropout if dropout is None else dropout
            other = 0.0 if effective > 0 else 0.2
            specs.append({"name": f"rsnet_dropout_{other:g}", "label": f"RS-Net dropout {other:g}",
                          "options": {"mred": "full", "dropout": other}, "resolutions": resolutions})
    for m in budgets:
        if m != 1:
            specs += inets(m) + [{"name": f"rsnet_x{m}", "label": f"RS-Net x{m}", "options": {"mred": "full"},
                                  "resolutions": resolutions, "budget": m}]
    for sp in specs:
        sp.setdefault("budget", 1)
        sp.setdefault("inet", False)
    return specs


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
    overrides = parse_overrides(extra)     # training.train's argparse refuses bad pass-through flags here
    for spec in jobs:                      # and make_config every bad value, before anything is created
        train_config(a, spec, out / "models" / f"{spec['name']}.pt", overrides)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    settings = settings_of(a)
    t0 = time.time()
    results = run_jobs(a, jobs, out, overrides, settings, train_one)
    rep = build_report(a, specs, results)
    text = format_report(rep, a.arch)
    print()
    print(text)
    write_report(report_dir, text, rep, t0, a.arch)
    return rep


def main(argv=None) -> int:
    a, extra = build_parser().parse_known_args(argv)
    try:
        run_from(a, extra) if a.from_ else run(a, extra)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # training.train's argparse refusing a passed-through flag
        return int(e.code or 2)
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
