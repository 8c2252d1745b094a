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
import csv
import json
import math
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsnet_edge.profile import PROFILE_FORMAT, PROFILE_VERSION, read_profile  # noqa: E402

TARGET_SHARED_VS_FOLDED = 1.05
TARGET_LOW_VS_HIGH = 0.30
TARGET_SWITCH_MS = 1.0
TARGET_SWITCH_GAIN = 20.0
CONVERTIBLE = {".pte": "executorch", ".tflite": "tflite", ".onnx": "onnx"}  # backends with a folded baseline


def baseline_backend(path: Path) -> str | None:
    """The backend whose folded single-resolution export is ``path``'s baseline (RSFOLD: the
    backend it unpacks to); None when no baseline can be made here."""
    if path.suffix.lower() == ".rsfold":
        from rsnet_edge.rsfold import RsfoldError, peek_inner
        from rsnet_edge.runtime import RSFOLD_INNER
        try:
            return RSFOLD_INNER[peek_inner(path)]
        except RsfoldError:
            return None
    return CONVERTIBLE.get(path.suffix.lower())


class BenchError(RuntimeError):
    """A bench run that cannot go on; one line, printed as ``error: ...``."""


# ------------------------------------------------------------------------------ statistics
def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    v = sorted(xs)
    if len(v) == 1:
        return float(v[0])
    k = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return float(v[lo] + (v[hi] - v[lo]) * (k - lo))


def summarize(ms: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "mean_ms": statistics.fmean(ms),
            "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def rss_mb() -> float | None:
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return None


def peak_rss_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 2**20 if sys.platform == "darwin" else ru / 1024      # bytes on macOS, KiB on Linux


# ------------------------------------------------------------------------------- measuring
@dataclass
class Loaded:
    """One artifact under test (the shared RS-Net artifact, or one folded baseline)."""
    path: Path
    kind: str                                   # "shared" (the artifact given) | "folded" (baseline)
    clf: Any
    load_ms: float
    rss_delta_mb: float | None
    peak_rss_mb: float
    first_ms: dict[int, float] = field(default_factory=dict)
    samples: dict[int, list[float]] = field(default_factory=dict)
    inputs: dict[int, np.ndarray] = field(default_factory=dict)
    switch: dict[int, float] = field(default_factory=dict)          # r -> switch overhead ms
    switch_min: dict[int, float] = field(default_factory=dict)      # same, from the fastest runs
    set_resolution_ms: float | None = None
    reload_ms: float | None = None                                   # load + first inference
    top1: dict[int, float | None] = field(default_factory=dict)
    top1_source: str = "manifest"
    best: dict[int, list[float]] = field(default_factory=dict)   # per round: fastest of the inner runs
    shipped_bytes: int = 0                 # what an app ships (the .rsfold itself, not the unpacked program)
    unpack_ms: float | None = None         # RSFOLD: unpack into an empty cache (inside load_ms)
    warm_load_ms: float | None = None      # RSFOLD: a later load, the cache already filled

    @property
    def backend(self) -> str:
        return self.clf.backend_name

    @property
    def resolutions(self) -> list[int]:
        return self.clf.resolutions


def _timed_run(clf, x, r) -> float:
    t = time.perf_counter()
    clf.run(x, r)
    return (time.perf_counter() - t) * 1e3


def warm_backend(path: Path) -> None:
    """Import the backend's runtime before any timed load (imports are not load time)."""
    s = path.suffix.lower()
    try:
        if s == ".pte":
            from executorch.runtime import Runtime
            Runtime.get()
        elif s == ".tflite":
            from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (import only)
        elif s == ".onnx":
            import onnxruntime  # noqa: F401
        elif s in (".pt", ".pth"):
            import torch  # noqa: F401
            import torchvision  # noqa: F401
    except ImportError:
        pass                       # rsnet_edge.load gives the one-line error


def set_threads(threads: int | None) -> None:
    """``--threads``: LiteRT interpreters get it per load; ExecuTorch's XNNPACK threadpool and torch
    are process-wide, set here once."""
    if not threads:
        return
    try:
        import executorch.extension.pybindings.portable_lib as et
        et._unsafe_reset_threadpool(int(threads))
    except (ImportError, AttributeError):
        pass
    import torch
    torch.set_num_threads(int(threads))


def open_artifact(path: Path, kind: str, threads: int | None = None, cache: Path | None = None) -> Loaded:
    """Load (timed) and run every entry once. An RSFOLD artifact is loaded COLD: unpacked into
    ``cache`` (a fresh folder), so ``load_ms`` is the first-load cost on a device; a second load
    from the filled cache is timed as ``warm_load_ms``."""
    from converters.prepare import artifact_size
    from rsnet_edge.runtime import load

    rsfold = path.suffix.lower() == ".rsfold"
    warm_backend(path.with_suffix("") if rsfold else path)
    before = rss_mb()
    t = time.perf_counter()
    kw: dict[str, Any] = {"num_threads": threads} if threads else {}
    if rsfold:
        kw["cache"] = cache
    clf = load(path, verify=False, **kw)
    load_ms = (time.perf_counter() - t) * 1e3
    it = Loaded(path, kind, clf, load_ms, None, 0.0)
    it.shipped_bytes = artifact_size(path)
    if rsfold:
        it.unpack_ms = clf.stats.unpack_s * 1e3
        t = time.perf_counter()
        again = load(path, verify=False, **kw)
        it.warm_load_ms = (time.perf_counter() - t) * 1e3
        del again
    for r in clf.resolutions:                      # first inference of every entry point
        x = clf.dummy_input(r)
        it.inputs[r] = x
        it.first_ms[r] = _timed_run(clf, x, r)
        it.samples[r] = []
    after = rss_mb()
    it.rss_delta_mb = None if before is None or after is None else after - before
    it.peak_rss_mb = peak_rss_mb()
    it.top1 = {e.resolution: e.top1 for e in clf.manifest.entries}
    return it


def measure_latency(items: Sequence[Loaded], runs: int, warmup: int, progress: bool = True,
                    inner: int = 3) -> None:
    """Warm-up, then ``runs`` interleaved rounds: in each round every (artifact, resolution) runs
    once untimed, then ``inner`` times timed back to back (steady state, as an app calling one entry
    repeatedly sees it), so slow phases of a noisy machine hit every artifact alike. Every timed
    run is a sample (p50/p90 of the profile); the fastest of each round's ``inner`` runs goes to
    ``best``, which the side-by-side ratios pair round by round (a run preempted by another process
    does not decide a ratio)."""
    from tqdm import tqdm

    keys = [(it, r) for it in items for r in it.resolutions]
    for it, r in keys:
        for _ in range(warmup):
            it.clf.run(it.inputs[r], r)
    for _ in tqdm(range(runs), desc="latency rounds", unit="round", disable=not progress, leave=False):
        for it, r in keys:
            it.clf.run(it.inputs[r], r)            # untimed: caches warm for this entry again
            ms = [_timed_run(it.clf, it.inputs[r], r) for _ in range(max(1, inner))]
            it.samples[r].extend(ms)
            it.best.setdefault(r, []).append(min(ms))


def measure_switch(it: Loaded, rounds: int) -> None:
    """Switch cost inside one loaded artifact: for each resolution r and each round, time a run at
    r right after a run at another resolution (switched) and right after a run at r (repeat);
    the switch cost of r is the median of the paired differences (>= 0)."""
    rs = it.resolutions
    if len(rs) < 2:
        return
    clf = it.clf
    diffs: dict[int, list[float]] = {r: [] for r in rs}
    sw_t: dict[int, list[float]] = {r: [] for r in rs}
    rep_t: dict[int, list[float]] = {r: [] for r in rs}
    sets = []
    for k in range(rounds):
        for i, r in enumerate(rs):
            other = rs[(i + 1 + k % (len(rs) - 1)) % len(rs)]          # never r itself
            clf.set_resolution(other)
            clf.run(it.inputs[other])
            t = time.perf_counter()
            clf.set_resolution(r)
            sets.append((time.perf_counter() - t) * 1e3)
            switched = _timed_run(clf, it.inputs[r], None)
            repeat = _timed_run(clf, it.inputs[r], None)
            diffs[r].append(switched - repeat)
            sw_t[r].append(switched)
            rep_t[r].append(repeat)
    it.switch = {r: max(0.0, statistics.median(d)) for r, d in diffs.items()}
    it.switch_min = {r: max(0.0, min(sw_t[r]) - min(rep_t[r])) for r in rs}   # noise-robust check
    it.set_resolution_ms = statistics.median(sets)


def measure_reload(path: Path, resolution: int, repeats: int = 3) -> float:
    """Switching by loading another model: fresh load + first inference, median of ``repeats``."""
    from rsnet_edge.runtime import load

    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        clf = load(path, verify=False)
        clf.run(clf.dummy_input(resolution), resolution)
        out.append((time.perf_counter() - t) * 1e3)
        del clf
    return statistics.median(out)


def measure_accuracy(it: Loaded, data_dir: Path, progress: bool = True, views: dict | None = None) -> None:
    """Top-1 per resolution through the artifact on ``data_dir/val`` (ImageFolder). ``views`` caches
    the preprocessed inputs across artifacts with the same preprocessing (decoded once)."""
    from tqdm import tqdm

    from rsnet_edge.demo import IMAGE_SUFFIXES
    from rsnet_edge.preprocess import load_rgb

    val = data_dir / "val" if (data_dir / "val").is_dir() else data_dir
    names = it.clf.manifest.class_names
    files = [(f, names.index(f.parent.name)) for f in sorted(val.rglob("*"))
             if f.suffix.lower() in IMAGE_SUFFIXES and f.parent.name in names]
    if not files:
        raise BenchError(f"--data {data_dir}: no images in class folders named like the manifest's "
                         f"classes under {val}")
    views = {} if views is None else views
    inp = it.clf.manifest.input
    key = (str(val), tuple(names), tuple(inp.mean), tuple(inp.std), inp.crop_pct, inp.layout)
    if key not in views:
        views[key] = {"images": [(load_rgb(f), y) for f, y in files]}
    cache = views[key]
    for r in tqdm(it.resolutions, desc=f"accuracy {it.path.name}", disable=not progress, leave=False):
        if r not in cache:
            cache[r] = [(it.clf.preprocess([img], r), y) for img, y in cache["images"]]
        hits = sum(int(np.argmax(it.clf.run(x, r)[0]) == y) for x, y in cache[r])
        it.top1[r] = 100.0 * hits / len(cache[r])
    it.top1_source = f"measured on {len(cache['images'])} images"


# ------------------------------------------------------------------------------- baselines
def find_checkpoint(artifact: Path, ckpt: str | None) -> Path | None:
    if ckpt:
        p = Path(ckpt)
        if not p.is_file():
            raise BenchError(f"--ckpt {p} does not exist")
        return p
    from rsnet_edge.manifest import read_sidecar
    try:
        name = read_sidecar(artifact).checkpoint.get("file")
    except ValueError:
        return None
    cand = artifact.with_name(name) if name else None
    return cand if cand is not None and cand.is_file() else None


@dataclass(frozen=True)
class Int8Calib:
    """How an int8 artifact's single-resolution baselines are calibrated: the same folder and
    number of images as the artifact itself (its manifest records them)."""
    folder: Path
    images: int


def folded_baseline(ckpt: Path, backend: str, resolution: int, out_dir: Path,
                    int8: Int8Calib | None = None) -> Path:
    """The folded single-resolution export of ``ckpt`` at ``resolution`` (converters' own
    ``--weights folded`` path; with ``int8``, the plain PT2E int8 export calibrated at that
    resolution); reused when ``out_dir`` already holds one made from this ckpt."""
    from converters import prepare
    from rsnet_edge.manifest import read_sidecar, sha256_file

    dtype = "int8" if int8 is not None else "fp32"
    suffix = prepare.SUFFIXES[backend]
    out = out_dir / f"{ckpt.stem}.folded_{resolution}{'.int8' if int8 else ''}{suffix}"
    if out.exists():
        try:
            m = read_sidecar(out)
            cal = (m.extra.get("int8") or {}).get("calibration") or {}
            if (m.checkpoint.get("sha256") == sha256_file(ckpt) and m.resolutions == [resolution]
                    and m.weights == "folded" and m.dtype == dtype and m.artifact.get("sha256") == sha256_file(out)
                    and (int8 is None or (cal.get("folder"), cal.get("images")) == (int8.folder.name, int8.images))):
                return out
        except ValueError:
            pass
    from converters.verify import lower_of
    lower = lower_of(backend)
    out_dir.mkdir(parents=True, exist_ok=True)
    prepare.convert(backend, lower, ckpt, out, resolutions=[resolution], weights="folded", quiet=True,
                    dtype=dtype, calib=int8.folder if int8 else None,
                    calib_images=int8.images if int8 else prepare.INT8_CALIB_IMAGES)
    return out


def int8_calib_of(it: "Loaded", calib: str | None) -> Int8Calib | None:
    """The calibration of an int8 artifact's baselines (None for a float artifact). Raises
    BenchError when its calibration folder is not given (``--calib``) or is not the one used."""
    m = it.clf.manifest
    if m.dtype != "int8":
        return None
    cal = (m.extra.get("int8") or {}).get("calibration") or {}
    if not calib:
        raise BenchError(f"{it.path.name} is int8: pass --calib DIR, the image folder it was calibrated on "
                         f"({cal.get('folder', '?')}), for its int8 single-resolution baselines (or --no-baselines)")
    folder = Path(calib)
    if not folder.is_dir():
        raise BenchError(f"--calib {folder} is not a folder")
    if cal.get("folder") and folder.name != cal["folder"]:
        raise BenchError(f"--calib {folder}: {it.path.name} was calibrated on a folder named {cal['folder']}")
    from converters.prepare import INT8_CALIB_IMAGES
    return Int8Calib(folder, int(cal.get("images") or 0) or INT8_CALIB_IMAGES)


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def build_baselines(jobs: list[tuple], out_dir: Path, workers: int,
                    progress: bool = True) -> list[Path]:
    """:func:`folded_baseline` for every (checkpoint, backend, resolution[, int8 calibration]),
    ``workers`` conversions at a time (separate processes, one thread each); results in the order
    of ``jobs``."""
    from tqdm import tqdm

    if workers <= 1 or len(jobs) <= 1:
        return [folded_baseline(*job[:3], out_dir, *job[3:]) for job in
                tqdm(jobs, desc="folded baselines (convert)", disable=not progress, leave=False)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_one_thread) as ex:
        futures = [ex.submit(folded_baseline, *job[:3], out_dir, *job[3:]) for job in jobs]
        return [f.result() for f in tqdm(futures, desc="folded baselines (convert)", disable=not progress,
                                         leave=False)]


# ---------------------------------------------------------------------------------- report
def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[k] / b[k]: both were timed in the same interleaved round, so slow
    phases of a busy machine cancel (the ratio of two medians would not pair them)."""
    n = min(len(a), len(b))
    return statistics.median(a[k] / b[k] for k in range(n))


def summary_table(shared: Sequence[Loaded], baselines: dict[Path, dict[int, Loaded]]) -> list[str]:
    """One row per shared artifact: shipped size and latency per resolution against the folded
    single-resolution exports of the same backend, from this run."""
    rows = []
    rs_all = sorted({r for it in shared for r in it.resolutions}, reverse=True)
    head = f"{'artifact':<26} {'backend':<10} {'weights':<7} {'dtype':<5} {'size/single':>11}  " + " ".join(
        f"{'@' + str(r):>7}" for r in rs_all) + "   first load (single)"
    rows.append(head)
    for it in shared:
        b = baselines.get(it.path, {})
        top = b.get(it.resolutions[0])
        size = f"{it.shipped_bytes / top.shipped_bytes:.3f}x" if top is not None and top.shipped_bytes else "-"
        cells = []
        for r in rs_all:
            if r in b and it.best.get(r) and b[r].best.get(r):
                cells.append(f"{paired_ratio(it.best[r], b[r].best[r]):>6.3f}x")
            else:
                cells.append(f"{'-':>7}")
        loads = [x.load_ms + x.first_ms.get(r, 0.0) for r, x in b.items()]
        first = it.load_ms + it.first_ms.get(it.resolutions[0], 0.0)
        fl = f"{first:.0f} ms ({statistics.median(loads):.0f} ms)" if loads else f"{first:.0f} ms"
        rows.append(f"{it.path.name[:26]:<26} {it.backend:<10} {it.clf.manifest.weights:<7} "
                    f"{it.clf.manifest.dtype:<5} {size:>11}  "
                    + " ".join(cells) + f"   {fl}")
    rows.append("latency columns: median over interleaved rounds of (this artifact / the folded "
                "single-resolution export of that resolution, same backend and dtype), each round's "
                "fastest of --inner runs, same run")
    return rows


def _ratio_lines(shared: Loaded, baselines: dict[int, Loaded]) -> tuple[list[str], dict[str, Any]]:
    lines, ratios = [], {"shared_vs_folded": {}, "artifact": shared.path.name, "backend": shared.backend}
    p50 = {r: statistics.median(s) for r, s in shared.samples.items() if s}
    for r in shared.resolutions:
        b = baselines.get(r)
        if b is None or not b.samples.get(r) or r not in p50:
            continue
        q = paired_ratio(shared.best[r], b.best[r])
        q_min = min(shared.samples[r]) / min(b.samples[r])      # noise-robust cross-check
        ratios["shared_vs_folded"][str(r)] = q
        ratios.setdefault("shared_vs_folded_min", {})[str(r)] = q_min
        lines.append(f"[{shared.backend}] shared/folded latency @{r}: {q:.3f} "
                     f"({p50[r]:.3f} vs {statistics.median(b.samples[r]):.3f} ms p50 of the "
                     f"single-resolution I-Net export; by min {q_min:.3f})")
    rs = shared.resolutions
    top = baselines.get(rs[0])
    if top is not None and top.shipped_bytes:
        ratios["shipped_vs_single"] = shared.shipped_bytes / top.shipped_bytes
        ratios["shipped_bytes"], ratios["single_bytes"] = shared.shipped_bytes, top.shipped_bytes
        lines.append(f"[{shared.backend}] {shared.path.name} ships {shared.shipped_bytes} bytes = "
                     f"{ratios['shipped_vs_single']:.3f} x one single-resolution export ({top.shipped_bytes} "
                     f"bytes); {len(rs)} single exports would ship {sum(b.shipped_bytes for b in baselines.values())}")
    loads = [b.load_ms + b.first_ms.get(r, 0.0) for r, b in baselines.items()]
    if loads:
        first = shared.load_ms + shared.first_ms.get(rs[0], 0.0)
        ratios["first_load_ms"] = first
        ratios["single_first_load_ms"] = statistics.median(loads)
        ratios["unpack_ms"] = shared.unpack_ms
        ratios["warm_load_ms"] = shared.warm_load_ms
        extra = (f" (unpack into an empty cache {shared.unpack_ms:.1f} ms; later loads "
                 f"{shared.warm_load_ms:.1f} ms)" if shared.unpack_ms is not None else "")
        lines.append(f"[{shared.backend}] first load + first inference: {first:.1f} ms{extra}; a single "
                     f"export: {statistics.median(loads):.1f} ms")
    if len(rs) >= 2 and rs[0] in p50 and rs[-1] in p50:
        q = p50[rs[-1]] / p50[rs[0]]
        q_min = min(shared.samples[rs[-1]]) / min(shared.samples[rs[0]])
        ratios["low_vs_high"] = {"low": rs[-1], "high": rs[0], "ratio": q, "ratio_min": q_min}
        lines.append(f"[{shared.backend}] latency({rs[-1]})/latency({rs[0]}): {q:.3f} (by min "
                     f"{q_min:.3f})")
    if shared.switch:
        sw = max(shared.switch.values())
        sw_min = max(shared.switch_min.values())
        ratios["switch_ms"] = sw
        ratios["switch_ms_min"] = sw_min
        ratios["set_resolution_ms"] = shared.set_resolution_ms
        line = (f"[{shared.backend}] switch inside {shared.path.name}: {sw:.3f} ms worst entry (by min "
                f"{sw_min:.3f})")
        reloads = [b.reload_ms for b in baselines.values() if b.reload_ms is not None]
        if reloads:
            rl = statistics.median(reloads)
            gain = rl / max(sw, shared.set_resolution_ms or 1e-6, 1e-6)
            ratios["reload_switch_ms"] = rl
            ratios["switch_gain"] = gain
            line += f"; switching by loading another model: {rl:.1f} ms -> {gain:.0f}x cheaper"
        lines.append(line)
    return lines, ratios


def _row(it: Loaded, r: int, host: str) -> dict[str, Any]:
    s = summarize(it.samples[r]) if it.samples.get(r) else {}
    m = it.clf.manifest
    e = next((e for e in m.entries if e.resolution == r), None)
    return {
        "where": host, "artifact": it.path.name, "backend": it.backend, "kind": it.kind,
        "weights": m.weights, "dtype": m.dtype, "resolution": r, "entry": e.entry if e else "",
        "trained": e.trained if e else "", "size_bytes": it.shipped_bytes,
        "unpack_ms": "" if it.unpack_ms is None else round(it.unpack_ms, 2),
        "warm_load_ms": "" if it.warm_load_ms is None else round(it.warm_load_ms, 2),
        "load_ms": round(it.load_ms, 3), "first_ms": round(it.first_ms.get(r, float("nan")), 3),
        "p50_ms": round(s.get("p50_ms", float("nan")), 4), "p90_ms": round(s.get("p90_ms", float("nan")), 4),
        "mean_ms": round(s.get("mean_ms", float("nan")), 4),
        "min_ms": round(s.get("min_ms", float("nan")), 4),
        "runs": s.get("runs", 0),
        "switch_ms": "" if r not in it.switch else round(it.switch[r], 4),
        "reload_switch_ms": "" if it.reload_ms is None else round(it.reload_ms, 3),
        "rss_delta_mb": "" if it.rss_delta_mb is None else round(it.rss_delta_mb, 2),
        "peak_rss_mb": round(it.peak_rss_mb, 2),
        "top1": "" if it.top1.get(r) is None else it.top1[r], "top1_source": it.top1_source,
        "madds": "" if e is None or e.madds is None else e.madds,
    }


CSV_FIELDS = ["where", "artifact", "backend", "kind", "weights", "dtype", "resolution", "entry", "trained",
              "size_bytes", "load_ms", "unpack_ms", "warm_load_ms", "first_ms", "p50_ms", "p90_ms", "mean_ms", "min_ms", "runs",
              "switch_ms", "reload_switch_ms", "rss_delta_mb", "peak_rss_mb", "top1", "top1_source",
              "madds", "device_model", "soc", "battery_pct", "battery_temp_c", "thermal"]


def host_info() -> dict[str, Any]:
    import torch
    return {"where": "host", "host": platform.node(), "system": platform.system(),
            "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def _entry_json(it: Loaded) -> dict[str, Any]:
    prof = {}
    for r in it.resolutions:
        d = summarize(it.samples[r]) if it.samples.get(r) else {}
        d.update({"first_ms": it.first_ms.get(r), "top1": it.top1.get(r), "switch_ms": it.switch.get(r),
                  "switch_ms_min": it.switch_min.get(r)})
        prof[str(r)] = d
    return {"artifact": it.path.name, "path": str(it.path), "backend": it.backend, "kind": it.kind,
            "weights": it.clf.manifest.weights, "resolutions": it.resolutions,
            "size_bytes": it.shipped_bytes, "unpack_ms": it.unpack_ms, "warm_load_ms": it.warm_load_ms,
            "load_ms": it.load_ms, "rss_delta_mb": it.rss_delta_mb, "peak_rss_mb": it.peak_rss_mb,
            "set_resolution_ms": it.set_resolution_ms, "reload_switch_ms": it.reload_ms,
            "top1_source": it.top1_source, "profile": prof}


def write_outputs(out_dir: Path, rows: list[dict], profile: dict, progress_note=print) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "bench.csv", "json": out_dir / "bench.json", "png": out_dir / "bench.png"}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)
    paths["json"].write_text(json.dumps(profile, indent=2, default=_json_default))
    plot(profile, paths["png"])
    if not paths["png"].exists():
        paths.pop("png")
    return paths


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def plot(profile: dict, png: Path) -> None:
    """Top-1 vs latency (p50) per backend: shared artifacts as lines, folded baselines as hollow
    markers (the paper's Fig. 1 compares RS-Net against individually trained/exported I-Nets)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib is not installed; no {png.name} (pip install 'rsnet-edge[bench]')")
        return

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    have_acc = any(v.get("top1") is not None for a in profile["artifacts"] for v in a["profile"].values())
    colors = {}
    for a in profile["artifacts"]:
        pts = sorted((v["p50_ms"], v["top1"] if have_acc else int(r), int(r))
                     for r, v in a["profile"].items() if v.get("p50_ms") is not None
                     and (not have_acc or v.get("top1") is not None))
        if not pts:
            continue
        label = f"{a['backend']} {a['kind']}" + ("" if a["kind"] == "folded" else f" ({a['artifact']})")
        c = colors.setdefault(a["backend"], f"C{len(colors)}")
        if a["kind"] == "folded":
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], facecolors="none", edgecolors=c, s=50,
                       label=None)
        else:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=c, label=label)
            for x, y, r in pts:
                ax.annotate(str(r), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    if any(a["kind"] == "folded" for a in profile["artifacts"]):
        ax.scatter([], [], facecolors="none", edgecolors="gray", label="folded single-res (I-Net export)")
    ax.set_xlabel(f"latency p50 (ms, {profile['device'].get('where', 'host')})")
    ax.set_ylabel("top-1 (%)" if have_acc else "resolution (no accuracy in the manifests)")
    ax.set_title("RS-Net: accuracy vs latency per backend")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


# the profile reader lives in the library core (rsnet_edge.demo/predict read profiles too)
profile_for = read_profile


# ------------------------------------------------------------------------------------ host
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
            shared.append(open_artifact(p, "shared", a.threads, cache=cold_cache / p.name))
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
                b = open_artifact(out, "folded", a.threads)
                baselines.setdefault(it.path, {})[r] = b
            baselines = {it.path: baselines[it.path] for it in shared if it.path in baselines}  # artifact order
        items = shared + [b for d in baselines.values() for b in d.values()]
        measure_latency(items, a.runs, a.warmup, progress, a.inner)
        for it in tqdm(shared, desc="switch inside artifact", disable=not progress, leave=False):
            measure_switch(it, a.switch_rounds)
        for d in baselines.values():
            for r, b in d.items():
                b.reload_ms = measure_reload(b.path, r)
        if a.data:
            views: dict = {}   # images decoded and preprocessed once, shared by every artifact
            for it in items:
                measure_accuracy(it, Path(a.data), progress, views)
        rows = [_row(it, r, "host") for it in items for r in it.resolutions]
        profile = {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "device": host_info(),
                   "settings": {"runs": a.runs, "warmup": a.warmup, "switch_rounds": a.switch_rounds,
                                "threads": a.threads, "interleaved": True},
                   "artifacts": [_entry_json(it) for it in items], "ratios": [], "notes": notes}
        lines = []
        for it in shared:
            ls, ratios = _ratio_lines(it, baselines.get(it.path, {}))
            lines += ls
            profile["ratios"].append(ratios)
        summary = summary_table(shared, baselines)
        profile["summary"] = summary
        paths = write_outputs(Path(a.out_dir), rows, profile)
    finally:
        if tmp_baselines is not None:
            shutil.rmtree(tmp_baselines, ignore_errors=True)
        shutil.rmtree(cold_cache, ignore_errors=True)
    _print_table(rows)
    print()
    for line in summary:
        print(line)
    print()
    for n in notes:
        print(f"note: {n}")
    for line in lines:
        print(line)
    from rsnet_edge.profile import recommendation
    for art in profile["artifacts"]:
        if art.get("kind") == "shared":
            print(recommendation(art))
    print("wrote " + ", ".join(str(v) for v in paths.values()))
    return 0


def _print_table(rows: list[dict]) -> None:
    print(f"{'artifact':<28} {'backend':<10} {'kind':<6} {'res':>4} {'load':>9} {'first':>9} "
          f"{'p50':>8} {'p90':>8} {'switch':>7} {'reload':>8} {'top1':>6}")
    for r in rows:
        t1 = r["top1"]
        print(f"{r['artifact'][:28]:<28} {r['backend']:<10} {r['kind']:<6} {r['resolution']:>4} "
              f"{r['load_ms']:>7.1f}ms {r['first_ms']:>7.2f}ms {r['p50_ms']:>6.3f}ms {r['p90_ms']:>6.3f}ms "
              f"{'' if r['switch_ms'] == '' else format(r['switch_ms'], '.3f'):>7} "
              f"{'' if r['reload_switch_ms'] == '' else format(r['reload_switch_ms'], '.1f'):>8} "
              f"{'' if t1 == '' else format(t1, '.1f'):>6}")


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


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        if a.runs < 1 or a.warmup < 0 or a.switch_rounds < 1:
            raise BenchError("--runs and --switch-rounds must be >= 1, --warmup >= 0")
        if a.adb:
            from bench.adb import run_adb
            return run_adb(a)
        if a.serial or a.runner:
            raise BenchError("--serial/--runner only apply with --adb")
        from rsnet_edge.cli import Output, check_outputs
        check_outputs([Output(a.out_dir, "--out-dir", "dir"), Output(a.baseline_dir, "--baseline-dir", "dir")],
                      inputs=list(a.artifacts) + [a.ckpt, a.data, a.calib])
        return run_host(a)
    except (BenchError, ValueError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except RuntimeError as e:           # ConversionError and native loader failures
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
