"""Size/latency frontier of the BN encodings, per backend, side by side in one run.

For each backend (ExecuTorch/XNNPACK, LiteRT) and each encoding (folded, affine, hybrid, affine
with a fold budget) it converts a multi-entry artifact, measures its size against a
single-resolution folded export, checks parity, and times every entry point against the
single-resolution folded export of that resolution (the fastest possible artifact). Timing is
interleaved round-robin over all artifacts (so background load hits them alike); each sample is the
minimum of ``--inner`` runs, the figure is the median of ``--rounds`` samples.

    python -m bench.encodings --ckpt rs_mbv2.pt [--backends executorch tflite]
        [--encodings folded affine hybrid affine:0.02] [--rounds 15] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from converters.pipeline import convert, lower_of
from converters.prepare import prepare, sample_input
from rsnet_edge import backends
from rsnet_edge.checkpoint import load_checkpoint
from rsnet_edge.files import artifact_size, atomic_write_bytes
from rsnet_edge.manifest import entry_name
from rsnet_edge.runtime import load

#: backends that lower the affine encodings and run here (ONNX folds its BN itself: folded only)
ENCODING_BACKENDS = tuple(b.name for b in backends.converted() if "affine" in b.encodings and b.runs_here())


def entry_runner(clf, resolution: int):
    """A callable running one preprocessed batch through ``forward_<resolution>`` of an artifact
    opened by the library runtime (the entry loaded once, on the first call)."""
    name = entry_name(resolution)
    return lambda x: clf.run_entry(name, x)


def parse_encoding(spec: str) -> tuple[str, str | None, float]:
    """'folded' | 'affine' | 'hybrid' | 'affine:0.02' -> (weights, encoding, fold_budget)."""
    name, _, budget = spec.partition(":")
    if name == "folded":
        return "folded", None, 0.0
    return "affine", name, float(budget or 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.encodings", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--backends", nargs="+", default=list(ENCODING_BACKENDS), choices=ENCODING_BACKENDS)
    ap.add_argument("--encodings", nargs="+", default=["folded", "affine", "hybrid", "affine:0.02"])
    ap.add_argument("--resolutions", type=int, nargs="+")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--inner", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="LiteRT interpreter threads")
    ap.add_argument("--workdir", help="keep the artifacts here (default: a temp dir)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    ckpt = load_checkpoint(args.ckpt)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rsnet-enc-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    calls = {}          # (backend, label, resolution) -> callable
    xs = {}
    for backend in args.backends:
        lower, suf = lower_of(backend), backends.get(backend).suffix
        res = args.resolutions or list(prepare(ckpt, check=False).resolutions)
        # single-resolution folded baselines, one per resolution
        for r in res:
            out = work / f"{backend}_single_{r}{suf}"
            if not out.exists():
                convert(backend, lower, args.ckpt, out, resolutions=[r], weights="folded", quiet=True)
            calls[(backend, "single", r)] = entry_runner(load(out, verify=False, num_threads=args.threads), r)
            results.setdefault(backend, {}).setdefault("single", {})[r] = {"size": artifact_size(out)}
        for spec in args.encodings:
            weights, enc, budget = parse_encoding(spec)
            out = work / f"{backend}_{spec.replace(':', '_')}{suf}"
            t = time.time()
            prep = prepare(ckpt, res, weights, enc, budget)
            if not out.exists():
                convert(backend, lower, args.ckpt, out, resolutions=res, weights=weights, encoding=enc,
                        fold_budget=budget, quiet=True)
            row = {"size": artifact_size(out), "convert_s": round(time.time() - t, 1),
                   "folded_convs": f"{prep.folded_convs}/{prep.total_convs}", "maxdiff": 0.0}
            clf = load(out, verify=False, num_threads=args.threads)
            for r in res:
                f = entry_runner(clf, r)
                calls[(backend, spec, r)] = f
                x = xs.setdefault(r, sample_input(r).numpy())
                with torch.no_grad():
                    want = prep.references[r](torch.from_numpy(x)).numpy()
                row["maxdiff"] = max(row["maxdiff"], float(np.abs(f(x) - want).max()))
            results[backend][spec] = row
            print(f"converted {backend} {spec}: {row['size']} bytes", file=sys.stderr, flush=True)

    # interleaved timing
    samples = {k: [] for k in calls}
    for k, f in calls.items():
        for _ in range(3):
            f(xs.setdefault(k[2], sample_input(k[2]).numpy()))
    for _ in range(args.rounds):
        for k, f in calls.items():
            x, best = xs[k[2]], float("inf")
            for _ in range(args.inner):
                t = time.perf_counter()
                f(x)
                best = min(best, time.perf_counter() - t)
            samples[k].append(best)
    for (backend, label, r), v in samples.items():
        results[backend][label].setdefault("ms", {})[r] = statistics.median(v) * 1e3

    for backend, rows in results.items():
        res = sorted(rows["single"]["ms"], reverse=True)
        base_size = rows["single"][res[0]]["size"]
        print(f"\n{backend}: size ratio vs single-resolution folded export ({base_size} bytes); "
              f"latency ms (ratio vs folded single-resolution export), median of {args.rounds}")
        print(f"{'encoding':14s} {'ratio':>6s} {'folded':>7s} {'maxdiff':>8s} " +
              " ".join(f"{r:>14d}" for r in res))
        single_ms = rows["single"]["ms"]
        print(f"{'single(folded)':14s} {1.0:6.3f} {'-':>7s} {'-':>8s} " +
              " ".join(f"{single_ms[r]:7.2f}(1.00x)" for r in res))
        for label, row in rows.items():
            if label == "single":
                continue
            print(f"{label:14s} {row['size'] / base_size:6.3f} {row['folded_convs']:>7s} "
                  f"{row['maxdiff']:8.1e} " +
                  " ".join(f"{row['ms'][r]:7.2f}({row['ms'][r] / single_ms[r]:.2f}x)" for r in res))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(results, indent=2, default=str).encode())
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
