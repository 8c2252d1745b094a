"""Benchmark RS-Net artifacts on this host (default) or on an Android phone over adb (``--adb``).

    python -m bench.run_device ARTIFACT... [--ckpt CKPT] [--runs N] [--warmup W] [--data DIR]
                               [--out-dir DIR] [--baseline-dir DIR] [--no-baselines]
    python -m bench.run_device ARTIFACT... --adb --runner PATH [--serial S] [--backend xnnpack|qnn|..]

Host mode measures, for every artifact and every entry point (resolution): load time, first
inference (includes loading that entry point), warm latency (median/p90 over N runs after W
warm-up runs), RSS growth and peak RSS, and the switch time inside one loaded artifact (a run at
``r`` right after a run at another resolution, minus a run at ``r`` right after a run at ``r``,
paired, median). Accuracy per resolution comes from the manifest, or is measured through the
artifact with ``--data DIR`` (``DIR/val/<class>/*``).

In the same run it measures the deployment a user would otherwise ship: one plain
single-resolution export per resolution of the same checkpoint with BN folded (the I-Net
deployment; made with the converters' ``--weights folded`` path into ``--baseline-dir`` or a temp
folder), and the time to switch resolution by loading that other model (load + first inference).
Latencies of all artifacts are sampled in interleaved rounds, so machine noise hits them alike.

Writes ``bench.csv`` (one row per artifact x resolution), ``bench.json`` (the device profile: per
artifact, per resolution ``p50_ms``/``p90_ms``/...; :func:`profile_for` returns the mapping
:mod:`rsnet_edge.policy` takes as ``profile=``) and ``bench.png`` (top-1 vs latency per backend,
in the style of the paper's Fig. 1), and prints the results and a recommendation:

* shared artifact latency / the folded single-resolution (I-Net) export's latency, per resolution;
* latency(lowest) / latency(highest) resolution;
* switch inside one artifact and how much cheaper it is than loading another model;
* which resolutions are on this device's accuracy/latency frontier (worth switching among), as
  :func:`rsnet_edge.profile.recommendation` says; ``python -m rsnet_edge.profile`` writes the
  policy derived from ``bench.json`` into the manifest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.adb import run_adb
from bench.baselines import baseline_backend, build_baselines, find_checkpoint, int8_calib_of
from bench.measure import (BenchError, Loaded, load_timed, measure_accuracy, measure_latency,
                           measure_lean_switch, measure_reload, measure_switch, set_threads)
from bench.memory import in_fresh_process
from bench.report import (entry_json, host_info, print_table, ratio_lines, row, summary_table,
                          write_outputs)
from rsnet_edge import cli
from rsnet_edge.cli import Output, check_outputs
from rsnet_edge.profile import PROFILE_FORMAT, PROFILE_VERSION, recommendation


def run_host(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    artifacts = [Path(p) for p in a.artifacts]
    for p in artifacts:
        if not p.exists():
            raise BenchError(f"{p} does not exist")
    progress = not a.no_progress
    set_threads(a.threads)
    tmp_baselines = None
    baseline_dir = Path(a.baseline_dir) if a.baseline_dir else None
    cold_cache = Path(tempfile.mkdtemp(prefix="rsnet-bench-cache-"))   # RSFOLD loads start cold
    try:
        shared: list[Loaded] = []
        for p in tqdm(artifacts, desc="loading artifacts", disable=not progress, leave=False):
            shared.append(load_timed(p, "shared", a.threads, cache=cold_cache / p.name))
        # the I-Net deployment: folded single-resolution exports, one per resolution
        baselines: dict[Path, dict[int, Loaded]] = {}
        notes = []
        if not a.no_baselines:
            jobs = []
            for it in shared:
                backend = baseline_backend(it.path)
                if backend is None:
                    notes.append(f"{it.path.name}: no folded baseline for the {it.backend} backend")
                    continue
                ck = find_checkpoint(it.path, a.ckpt)
                if ck is None:
                    notes.append(f"{it.path.name}: no folded baseline (pass --ckpt; the manifest's "
                                 f"checkpoint is not beside the artifact)")
                    continue
                int8 = int8_calib_of(it, a.calib)
                jobs += [(it, backend, ck, r, int8) for r in it.resolutions]
            if jobs and baseline_dir is None:
                tmp_baselines = Path(tempfile.mkdtemp(prefix="rsnet-bench-baselines-"))
            jobs.sort(key=lambda j: j[4] is None)      # the longest conversions (int8: calibration) first
            outs = build_baselines([(ck, backend, r, int8) for _, backend, ck, r, int8 in jobs],
                                   baseline_dir or tmp_baselines, a.jobs, progress)
            for (it, backend, ck, r, _), out in zip(jobs, outs):
                b = load_timed(out, "folded", a.threads)
                baselines.setdefault(it.path, {})[r] = b
            baselines = {it.path: baselines[it.path] for it in shared if it.path in baselines}  # artifact order
        items = shared + [b for d in baselines.values() for b in d.values()]
        measure_latency(items, a.runs, a.warmup, progress, a.inner)
        for it in tqdm(shared, desc="switch inside artifact", disable=not progress, leave=False):
            measure_switch(it, a.switch_rounds)
        for d in baselines.values():
            for r, b in d.items():
                b.reload_ms = measure_reload(b.path, r)
        if not a.no_memory:           # after the timing: the fresh processes would disturb it
            for it in tqdm(shared, desc="memory and lean switch", disable=not progress, leave=False):
                measure_memory(it, baselines.get(it.path, {}), a.threads, a.switch_rounds)
        if a.data:
            views: dict = {}   # images decoded and preprocessed once, shared by every artifact
            for it in items:
                measure_accuracy(it, Path(a.data), progress, views)
        rows = [row(it, r, "host") for it in items for r in it.resolutions]
        profile = {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "device": host_info(),
                   "settings": {"runs": a.runs, "warmup": a.warmup, "switch_rounds": a.switch_rounds,
                                "threads": a.threads, "interleaved": True},
                   "artifacts": [entry_json(it) for it in items], "ratios": [], "notes": notes}
        lines = []
        for it in shared:
            ls, ratios = ratio_lines(it, baselines.get(it.path, {}))
            lines += ls
            profile["ratios"].append(ratios)
        summary = summary_table(shared, baselines)
        profile["summary"] = summary
        paths = write_outputs(Path(a.out_dir), rows, profile)
    finally:
        if tmp_baselines is not None:
            shutil.rmtree(tmp_baselines, ignore_errors=True)
        shutil.rmtree(cold_cache, ignore_errors=True)
    print_table(rows)
    print()
    for line in summary:
        print(line)
    print()
    for n in notes:
        print(f"note: {n}")
    for line in lines:
        print(line)
    for art in profile["artifacts"]:
        if art.get("kind") == "shared":
            print(recommendation(art))
    print("wrote " + ", ".join(str(v) for v in paths.values()))
    return 0


# -------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.run_device", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help=".pte / .tflite / .onnx / .pt")
    ap.add_argument("--ckpt", help="checkpoint for the folded baselines (default: the manifest's, "
                                   "beside the artifact)")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per entry point (default 50)")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up runs per entry point (default 10)")
    ap.add_argument("--inner", type=int, default=3,
                    help="timed runs per entry point and round; ratios pair each round's fastest (default 3)")
    ap.add_argument("--switch-rounds", type=int, default=20, help="paired switch measurements per entry")
    ap.add_argument("--data", help="ImageFolder root (DIR/val/<class>/*): measure top-1 through the "
                                   "artifact")
    ap.add_argument("--out-dir", default="runs/bench", help="where bench.csv/.json/.png go")
    ap.add_argument("--baseline-dir", help="keep (and reuse) the folded baselines here (default: temp)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="folded baselines converted in parallel (processes; default 2)")
    ap.add_argument("--no-baselines", action="store_true", help="skip the folded single-resolution baselines")
    ap.add_argument("--no-memory", action="store_true",
                    help="skip the resident-memory readings (fresh processes) and the resident='one' switch")
    ap.add_argument("--calib", metavar="DIR", help="int8 artifacts: the image folder they were calibrated on; "
                                                   "their baselines are int8 single-resolution exports calibrated "
                                                   "on the same images")
    ap.add_argument("--threads", type=int,
                    help="CPU threads (LiteRT interpreter, ExecuTorch threadpool, torch)")
    ap.add_argument("--no-progress", action="store_true")
    g = ap.add_argument_group("Android (adb)")
    g.add_argument("--adb", action="store_true", help="run on a phone over adb instead of the host")
    g.add_argument("--serial", help="adb device serial (needed when several are connected)")
    g.add_argument("--runner", help="runner binary built for the phone: ExecuTorch executor_runner (.pte) "
                                    "or LiteRT benchmark_model (.tflite)")
    g.add_argument("--backend", default="xnnpack",
                   help="delegate: xnnpack (default), gpu, nnapi, qnn, npu... (LiteRT: runner flag; "
                        "ExecuTorch: fixed at conversion, recorded)")
    g.add_argument("--runner-arg", action="append", default=[], metavar="ARG",
                   help="extra flag passed to the runner as is (repeatable), "
                        "e.g. --runner-arg=--num_threads=4")
    g.add_argument("--push", action="append", default=[], metavar="FILE",
                   help="extra file for the phone, e.g. a delegate library (repeatable); pushed to "
                        "--remote-dir, which is the runner's LD_LIBRARY_PATH/ADSP_LIBRARY_PATH")
    g.add_argument("--remote-dir", default="/data/local/tmp/rsnet_edge")
    g.add_argument("--timeout", type=float, default=600, help="seconds per adb call")
    return ap


def measure_memory(it: Loaded, baselines: dict, threads: int | None, rounds: int) -> None:
    """Resident memory of the artifact with every entry ready and with one (each in a fresh
    process), of the folded single export of its top resolution, and the switch cost of
    ``resident="one"``."""
    cache = str(it.cache) if it.cache else None
    it.memory = {"all": in_fresh_process(it.path, "all", cache, threads)["resident_mb"],
                 "one": in_fresh_process(it.path, "one", cache, threads)["resident_mb"]}
    top = baselines.get(it.resolutions[0])
    if top is not None:
        it.memory["single"] = in_fresh_process(top.path, "all", None, threads)["resident_mb"]
    measure_lean_switch(it, max(1, min(rounds, 5)), threads)


def check_args(a: argparse.Namespace) -> None:
    for flag, value, low in (("--runs", a.runs, 1), ("--warmup", a.warmup, 0), ("--switch-rounds", a.switch_rounds, 1),
                             ("--inner", a.inner, 1), ("--jobs", a.jobs, 1), ("--threads", a.threads, 1)):
        if value is not None and value < low:
            raise BenchError(f"{flag} must be >= {low}, got {value}")


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)

    def work() -> int:
        check_args(a)
        if a.adb:
            return run_adb(a)
        if a.serial or a.runner:
            raise BenchError("--serial/--runner only apply with --adb")
        check_outputs([Output(a.out_dir, "--out-dir", "dir"), Output(a.baseline_dir, "--baseline-dir", "dir")],
                      inputs=list(a.artifacts) + [a.ckpt, a.data, a.calib])
        return run_host(a)

    # BenchError, ConversionError and native loader failures (RuntimeError): one line, exit 2
    return cli.run(work, known=(RuntimeError,))


if __name__ == "__main__":
    sys.exit(main())
