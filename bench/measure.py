"""Measuring loaded artifacts on this host: load and first-inference times, warm latency in
interleaved rounds, switch cost inside one artifact, the cost of switching by loading another model,
accuracy through the artifact, and process memory. Used by ``bench.run_device`` (the CLI and report
live there and in :mod:`bench.report`)."""

from __future__ import annotations

import importlib
import math
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsnet_edge import backends
from rsnet_edge.files import artifact_size
from rsnet_edge.preprocess import list_images, load_rgb
from rsnet_edge.runtime import load


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
    cache: Path | None = None              # RSFOLD: the unpack cache this artifact was loaded from
    #: resident memory (MB, each in a fresh process; bench.memory): "all" / "one" for the artifact,
    #: "single" for the folded single-resolution export of its top resolution
    memory: dict[str, float | None] = field(default_factory=dict)
    lean_switch: dict[int, float] = field(default_factory=dict)   # resident="one": switch to r, ms

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
    spec = backends.for_suffix(backends.program_suffix(path))
    if spec is None or spec.runtime_import is None:
        return
    try:
        importlib.import_module(spec.runtime_import)
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


def load_timed(path: Path, kind: str, threads: int | None = None, cache: Path | None = None) -> Loaded:
    """Load (timed) and run every entry once. An RSFOLD artifact is loaded COLD: unpacked into
    ``cache`` (a fresh folder), so ``load_ms`` is the first-load cost on a device; a second load
    from the filled cache is timed as ``warm_load_ms``."""
    rsfold = backends.is_rsfold(path)
    warm_backend(path)
    before = rss_mb()
    t = time.perf_counter()
    kw: dict[str, Any] = {"num_threads": threads} if threads else {}
    if rsfold:
        kw["cache"] = cache
    clf = load(path, verify=False, **kw)
    load_ms = (time.perf_counter() - t) * 1e3
    it = Loaded(path, kind, clf, load_ms, None, 0.0, cache=cache if rsfold else None)
    it.shipped_bytes = artifact_size(path)
    for r in clf.resolutions:                      # first inference of every entry point (RSFOLD:
        x = clf.dummy_input(r)                     # its program unpacked into the empty cache first)
        it.inputs[r] = x
        it.first_ms[r] = _timed_run(clf, x, r)
        it.samples[r] = []
        if rsfold and r == clf.resolutions[0]:
            it.unpack_ms = (clf.stats.unpack_s or 0.0) * 1e3       # the default entry's program
            t = time.perf_counter()                # a later first load: the cache already filled
            again = load(path, verify=False, **kw)
            again.run(x, r)
            it.warm_load_ms = (time.perf_counter() - t) * 1e3
            again.close()
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


def measure_lean_switch(it: Loaded, rounds: int, threads: int | None = None) -> None:
    """The switch cost with ``resident="one"``: a run at ``r`` right after a run at another
    resolution (which releases that entry and loads ``r``'s program and method) minus a run at ``r``
    right after a run at ``r``; median over rounds, programs already in the cache (their first
    unpack is the first-load cost)."""
    rs = it.resolutions
    if len(rs) < 2:
        return
    clf = load(it.path, verify=False, resident="one", cache=it.cache, num_threads=threads)
    for r in rs:                                         # every program unpacked once
        clf.run(it.inputs[r], r)
    diffs: dict[int, list[float]] = {r: [] for r in rs}
    for k in range(rounds):
        for i, r in enumerate(rs):
            other = rs[(i + 1 + k % (len(rs) - 1)) % len(rs)]
            clf.run(it.inputs[other], other)
            switched = _timed_run(clf, it.inputs[r], r)
            repeat = _timed_run(clf, it.inputs[r], r)
            diffs[r].append(switched - repeat)
    clf.close()
    it.lean_switch = {r: max(0.0, statistics.median(d)) for r, d in diffs.items()}


def measure_reload(path: Path, resolution: int, repeats: int = 3) -> float:
    """Switching by loading another model: fresh load + first inference, median of ``repeats``."""
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

    val = data_dir / "val" if (data_dir / "val").is_dir() else data_dir
    names = it.clf.manifest.class_names
    files = [(f, names.index(f.parent.name)) for f in list_images(val) if f.parent.name in names]
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

