"""The bench's results: the side-by-side ratios (artifact / folded single-resolution export, paired
by interleaved round), the summary table, bench.csv / bench.json (the device profile
:func:`rsnet_edge.profile.read_profile` reads) / bench.png, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.measure import Loaded, summarize
from rsnet_edge.files import atomic_write_bytes


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[k] / b[k]: both were timed in the same interleaved round, so slow
    phases of a busy machine cancel (the ratio of two medians would not pair them)."""
    n = min(len(a), len(b))
    return statistics.median(a[k] / b[k] for k in range(n))


def size_ratio(shipped_bytes: int, single_bytes: int) -> float:
    """What the artifact ships / what one single-resolution export ships (> 1: the artifact is larger)."""
    return shipped_bytes / single_bytes


def low_high_ratio(samples: dict[int, Sequence[float]], low: int, high: int) -> tuple[float, float]:
    """latency(low) / latency(high) of one artifact: by p50 and by min (< 1: the low resolution is faster)."""
    return (statistics.median(samples[low]) / statistics.median(samples[high]),
            min(samples[low]) / min(samples[high]))


def summary_table(shared: Sequence[Loaded], baselines: dict[Path, dict[int, Loaded]]) -> list[str]:
    """One row per shared artifact: shipped size and latency per resolution against the folded
    single-resolution exports of the same backend, from this run."""
    rows = []
    rs_all = sorted({r for it in shared for r in it.resolutions}, reverse=True)
    head = f"{'artifact':<26} {'backend':<10} {'weights':<7} {'dtype':<5} {'size/single':>11}  " + " ".join(
        f"{'@' + str(r):>7}" for r in rs_all) + "   first load (single)   memory MB all/one (single)   lean switch (single load)"
    rows.append(head)
    for it in shared:
        b = baselines.get(it.path, {})
        top = b.get(it.resolutions[0])
        size = (f"{size_ratio(it.shipped_bytes, top.shipped_bytes):.3f}x"
                if top is not None and top.shipped_bytes else "-")
        cells = []
        for r in rs_all:
            if r in b and it.best.get(r) and b[r].best.get(r):
                cells.append(f"{paired_ratio(it.best[r], b[r].best[r]):>6.3f}x")
            else:
                cells.append(f"{'-':>7}")
        loads = [x.load_ms + x.first_ms.get(r, 0.0) for r, x in b.items()]
        first = it.load_ms + it.first_ms.get(it.resolutions[0], 0.0)
        fl = f"{first:.0f} ms ({statistics.median(loads):.0f} ms)" if loads else f"{first:.0f} ms"
        mem = memory_cell(it.memory)
        reloads = [x.reload_ms for x in b.values() if x.reload_ms is not None]
        lean = (f"{max(it.lean_switch.values()):.1f} ms" if it.lean_switch else "-") + (
            f" ({statistics.median(reloads):.1f} ms)" if reloads and it.lean_switch else "")
        rows.append(f"{it.path.name[:26]:<26} {it.backend:<10} {it.clf.manifest.weights:<7} "
                    f"{it.clf.manifest.dtype:<5} {size:>11}  "
                    + " ".join(cells) + f"   {fl:<20}  {mem:<27}  {lean}")
    rows.append("latency columns: median over interleaved rounds of (this artifact / the folded "
                "single-resolution export of that resolution, same backend and dtype), each round's "
                "fastest of --inner runs, same run")
    if any(it.memory for it in shared):
        rows.append("memory: process RSS growth after loading and running every entry once, each in a fresh "
                    "process (bench.memory): resident='all', resident='one', and the folded single export; "
                    "lean switch: resident='one', the worst entry, against loading the single export")
    return rows


def memory_cell(m: dict) -> str:
    """'52.1 / 11.9 (10.8)' from the memory readings of one artifact ('-' where missing)."""
    def f(v):
        return "-" if v is None else f"{v:.1f}"
    if not m:
        return "-"
    return f"{f(m.get('all'))} / {f(m.get('one'))}" + (f" ({f(m.get('single'))})" if "single" in m else "")


def ratio_lines(shared: Loaded, baselines: dict[int, Loaded]) -> tuple[list[str], dict[str, Any]]:
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
        ratios["shipped_vs_single"] = size_ratio(shared.shipped_bytes, top.shipped_bytes)
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
        extra = (f" (unpack into an empty cache {shared.unpack_ms:.1f} ms; a later first load, the cache "
                 f"filled, {shared.warm_load_ms:.1f} ms)" if shared.unpack_ms is not None else "")
        lines.append(f"[{shared.backend}] first load + first inference: {first:.1f} ms{extra}; a single "
                     f"export: {statistics.median(loads):.1f} ms")
    if len(rs) >= 2 and rs[0] in p50 and rs[-1] in p50:
        q, q_min = low_high_ratio(shared.samples, rs[-1], rs[0])
        ratios["low_vs_high"] = {"low": rs[-1], "high": rs[0], "ratio": q, "ratio_min": q_min}
        lines.append(f"[{shared.backend}] latency({rs[-1]})/latency({rs[0]}): {q:.3f} (by min "
                     f"{q_min:.3f})")
    m = shared.memory
    if m.get("all") is not None and m.get("one") is not None:
        ratios["memory_mb"] = dict(m)
        single = m.get("single")
        rel = (lambda v: f" = {v / single:.2f} x" if single else "")
        lines.append(f"[{shared.backend}] resident memory of {shared.path.name}: every entry ready {m['all']:.1f} MB"
                     f"{rel(m['all'])}, resident='one' {m['one']:.1f} MB{rel(m['one'])}"
                     + (f" the folded single export ({single:.1f} MB)" if single else ""))
    if shared.lean_switch:
        ratios["lean_switch_ms"] = {str(r): v for r, v in shared.lean_switch.items()}
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


def row(it: Loaded, r: int, host: str) -> dict[str, Any]:
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


def entry_json(it: Loaded) -> dict[str, Any]:
    prof = {}
    for r in it.resolutions:
        d = summarize(it.samples[r]) if it.samples.get(r) else {}
        d.update({"first_ms": it.first_ms.get(r), "top1": it.top1.get(r), "switch_ms": it.switch.get(r),
                  "switch_ms_min": it.switch_min.get(r)})
        prof[str(r)] = d
    return {"artifact": it.path.name, "path": str(it.path), "backend": it.backend, "kind": it.kind,
            "weights": it.clf.manifest.weights, "resolutions": it.resolutions,
            "size_bytes": it.shipped_bytes, "unpack_ms": it.unpack_ms, "warm_load_ms": it.warm_load_ms,
            "memory_mb": dict(it.memory) or None,
            "lean_switch_ms": {str(r): v for r, v in it.lean_switch.items()} or None,
            "load_ms": it.load_ms, "rss_delta_mb": it.rss_delta_mb, "peak_rss_mb": it.peak_rss_mb,
            "set_resolution_ms": it.set_resolution_ms, "reload_switch_ms": it.reload_ms,
            "top1_source": it.top1_source, "profile": prof}


def write_outputs(out_dir: Path, rows: list[dict], profile: dict) -> dict[str, Path]:
    """bench.csv, bench.json and bench.png in ``out_dir``, each written atomically: a failed write
    (a full disk) leaves the previous file as it was."""
    paths = {"csv": out_dir / "bench.csv", "json": out_dir / "bench.json", "png": out_dir / "bench.png"}
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_bytes(paths["csv"], buf.getvalue().encode())
    atomic_write_bytes(paths["json"], json.dumps(profile, indent=2, default=_json_default).encode())
    if not plot(profile, paths["png"]):
        paths.pop("png")
    return paths


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def plot(profile: dict, png: Path) -> bool:
    """Top-1 vs latency (p50) per backend: shared artifacts as lines, folded baselines as hollow
    markers (the paper's Fig. 1 compares RS-Net against individually trained/exported I-Nets).
    False (and a note) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib is not installed; no {png.name} (pip install 'rsnet-edge[bench]')")
        return False

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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())
    return True


def print_table(rows: list[dict]) -> None:
    print(f"{'artifact':<28} {'backend':<10} {'kind':<6} {'res':>4} {'load':>9} {'first':>9} "
          f"{'p50':>8} {'p90':>8} {'switch':>7} {'reload':>8} {'top1':>6}")
    for r in rows:
        t1 = r["top1"]
        print(f"{r['artifact'][:28]:<28} {r['backend']:<10} {r['kind']:<6} {r['resolution']:>4} "
              f"{r['load_ms']:>7.1f}ms {r['first_ms']:>7.2f}ms {r['p50_ms']:>6.3f}ms {r['p90_ms']:>6.3f}ms "
              f"{'' if r['switch_ms'] == '' else format(r['switch_ms'], '.3f'):>7} "
              f"{'' if r['reload_switch_ms'] == '' else format(r['reload_switch_ms'], '.1f'):>8} "
              f"{'' if t1 == '' else format(t1, '.1f'):>6}")

