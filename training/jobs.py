"""Training jobs of ``training.compare``: the flags every model gets, one model's config, training
and evaluation at every compared resolution (``train_one``), and a list of such jobs run one at a
time or ``--jobs N`` at once in spawned processes, finished ones skipped (``run_jobs``). Used by the
paper comparison (``training/compare.py``) and the bring-your-own-model comparison
(``training/byom.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from rsnet_edge.checkpoint import load_model
from rsnet_edge import jsonio
from rsnet_edge.files import atomic_write_bytes
from training.config import make_config
from training.data import collate_views, val_dataset, worker_init
from training.evaluate import evaluate
from training.train import train

# flags forwarded to training.train when given (name, type)
PASS = (("batch-size", int), ("lr", float), ("weight-decay", float), ("momentum", float),
        ("width-mult", float), ("max-steps-per-epoch", int), ("workers", int), ("device", str),
        ("save-every", int), ("views", str), ("threads", int), ("resolution-loss", str), ("dropout", float),
        ("crop-scale", float), ("warmup-epochs", float), ("head-lr-scale", float))
SETTINGS = ("data", "arch", "epochs", "resolutions", "seed") + tuple(n.replace("-", "_") for n, _ in PASS
                                                                     if n not in ("workers", "device", "threads", "save-every"))


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


def train_config(a: argparse.Namespace, spec: dict, ckpt: Path, overrides: dict) -> argparse.Namespace:
    """The training config of one model: the shared settings, then the model's own options, then
    ``overrides`` (the training flags compare did not know, :func:`training.config.parse_overrides`)."""
    opts = {"data": a.data, "arch": a.arch, "epochs": a.epochs * spec.get("budget", 1),
            "seed": spec.get("seed", a.seed), "resolutions": list(spec["resolutions"]),
            "out": str(ckpt), "resume": "auto", "eval_every": 0}  # evaluate_everywhere tests it after
    for name, _ in PASS:
        v = getattr(a, name.replace("-", "_"))
        if v is not None:
            opts[name.replace("-", "_")] = v
    if a.no_progress:
        opts["no_progress"] = True
    return make_config(**{**opts, **spec["options"], **overrides})  # the model's own options win


@torch.no_grad()
def evaluate_everywhere(ckpt_path: Path, a: argparse.Namespace, resolutions: list[int]) -> dict:
    """A trained model at every compared resolution: top-1/top-5, per-image top-1 hits, MAdds."""
    model, ckpt = load_model(ckpt_path, interpolate=True)  # an I-Net's one BN set serves all sizes
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    ds = val_dataset(a.data, resolutions, ckpt["mean"], ckpt["std"], ckpt["crop_pct"], ckpt["class_names"])
    loader = DataLoader(ds, batch_size=a.eval_batch_size, shuffle=False, num_workers=a.workers or 0,
                        collate_fn=collate_views, worker_init_fn=worker_init)
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


def train_one(a: argparse.Namespace, spec: dict, out: Path, overrides: dict, settings: dict,
              quiet: bool = False) -> dict:
    """Train one model (resuming an unfinished checkpoint), evaluate it at every compared resolution
    and write its results file; returns the results. Runs in the main process or a pool worker."""
    if a.threads:
        torch.set_num_threads(a.threads)
    ckpt = out / "models" / f"{spec['file']}.pt"
    cfg = train_config(a, spec, ckpt, overrides)
    if quiet:
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):   # per-epoch lines of parallel jobs would interleave
            train(cfg)
    else:
        train(cfg)
    r = evaluate_everywhere(ckpt, a, a.resolutions)
    r["settings"] = settings
    r["name"], r["label"] = spec["name"], spec["label"]
    atomic_write_bytes(out / "results" / f"{spec['file']}.json", json.dumps(r).encode())
    return r


def run_jobs(a: argparse.Namespace, jobs: list[dict], out: Path, overrides: dict, settings: dict,
             worker: Callable = train_one, first: int = 1, total: int | None = None) -> dict[str, dict]:
    """Run ``worker(a, spec, out, overrides, settings, quiet)`` for every job whose results file
    ``out/results/<file>.json`` does not exist yet (an existing one made with other ``settings`` is
    refused), one at a time or ``a.jobs`` at once (spawned processes, ``--threads`` each, the
    longest first); returns ``{name: {seed: results}}`` of every job. ``first``/``total`` number the
    progress lines."""
    total = total or len(jobs)
    results: dict[str, dict] = {}
    t0 = time.time()
    todo = []
    for i, spec in enumerate(jobs, first):
        rpath = out / "results" / f"{spec['file']}.json"
        head = f"[{i}/{total}] {spec['label']} ({spec['file']}, resolutions {spec['resolutions']})"
        if rpath.is_file():
            r = jsonio.read(rpath)
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
            done(head, spec, worker(a, spec, out, overrides, settings))
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
                running[pool.submit(worker, b, spec, out, overrides, settings, True)] = (head, spec)
            print(f"training {len(todo)} model(s), {a.jobs} at a time, {b.threads} thread(s) each", flush=True)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    head, spec = running.pop(f)
                    done(head, spec, f.result())
    return results
