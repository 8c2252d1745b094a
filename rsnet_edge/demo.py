"""Host demo: one artifact, the resolution following the battery.

    python -m rsnet_edge.demo ARTIFACT [--trace trace.json] [--images DIR] [--steps N]
                              [--live] [--interval S] [--latency-budget MS --profile bench.json]

Each step reads a battery state -- from ``--trace`` (JSON), from the real battery through
``psutil.sensors_battery()`` when the host has one (``--live``, or by default when no trace is
given and a battery exists), else from the built-in trace (100 % -> 0 % over ``--steps`` steps with
a charging period and a short thermal spike) -- asks :class:`rsnet_edge.policy.Selector` (the
manifest's policy) for a resolution, switches the loaded artifact to it (no reload), classifies the
next image and prints the switch, the latency and the running accuracy estimate (mean of the
manifest's per-resolution top-1 over the frames so far; with an ImageFolder ``--images`` whose
class folders match the manifest, the measured running accuracy too).

Trace file: a JSON list (or ``{"steps": [...]}``) of objects
``{"battery": 87.5, "charging": false, "thermal": "none"}`` (``charging``/``thermal`` optional).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from . import jsonio
from .policy import THERMAL_STATES, PolicyError, Selector, policy_for



# ---------------------------------------------------------------------------------- traces
def default_trace(steps: int = 40) -> list[dict[str, Any]]:
    """100 % -> 0 % over ``steps`` steps; plugged in for a while around 45 % (charging up ~15
    points), and a 'moderate' thermal spike near the start."""
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if steps < 5:                               # too short for a charging period: a plain drain
        return [{"battery": round(100.0 - 100.0 * k / max(steps - 1, 1), 2), "charging": False,
                 "thermal": "none"} for k in range(steps)]
    drain = steps - max(2, steps // 5)          # steps spent discharging
    charge = steps - drain
    per_step = 115.0 / max(drain - 1, 1)        # 100 -> 0 plus the 15 points charged back
    out, b, i = [], 100.0, 0
    charge_at = int(drain * 0.5)
    while len(out) < steps:
        if i == charge_at and charge:
            for _ in range(charge):
                out.append({"battery": round(min(max(b, 0.0), 100.0), 2), "charging": True,
                            "thermal": "none"})
                b = min(100.0, b + 15.0 / charge)
            charge = 0
            continue
        thermal = "moderate" if 2 <= i < 2 + max(1, steps // 20) else "none"
        out.append({"battery": round(max(b, 0.0), 2), "charging": False, "thermal": thermal})
        b -= per_step
        i += 1
    out[-1]["battery"] = 0.0
    return out[:steps]


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    data = jsonio.read(p, f"trace {p}")              # bounded: size, depth, digits
    if isinstance(data, dict):
        data = data.get("steps")
    if not isinstance(data, list) or not data:
        raise ValueError(f"trace {p} must be a non-empty JSON list of steps (or {{\"steps\": [...]}})")
    out = []
    for k, s in enumerate(data):
        if not isinstance(s, dict) or "battery" not in s:
            raise ValueError(f"trace {p} step {k} must be an object with a 'battery' level")
        b, c, t = s["battery"], s.get("charging", False), s.get("thermal", "none")
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b <= 100:
            raise ValueError(f"trace {p} step {k}: battery must be a number in 0..100, got {b!r}")
        if not isinstance(c, bool):
            raise ValueError(f"trace {p} step {k}: charging must be true/false, got {c!r}")
        if t not in THERMAL_STATES:
            raise ValueError(f"trace {p} step {k}: unknown thermal state {t!r}")
        out.append({"battery": float(b), "charging": c, "thermal": t})
    return out


def live_battery():
    """``psutil.sensors_battery()`` or None (no psutil, or no battery on this host)."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.sensors_battery()
    except Exception:
        return None


def live_trace(steps: int, interval: float):
    for _ in range(steps):
        bat = live_battery()
        if bat is None:
            return
        yield {"battery": float(max(0.0, min(100.0, bat.percent))),
               "charging": bool(bat.power_plugged), "thermal": "none"}
        time.sleep(interval)


# ---------------------------------------------------------------------------------- images
def load_images(folder: str | Path | None, class_names: list[str], n_default: int = 16):
    """[(PIL image, true class index or None)]: an ImageFolder / flat folder, or built-in images."""
    from .preprocess import load_rgb

    if folder is None:
        return _builtin_images(class_names, n_default)
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--images {root} is not a folder")
    from .preprocess import list_images
    files = list_images(root)
    if not files:
        raise ValueError(f"no images under {root}")
    idx = {c: i for i, c in enumerate(class_names)}
    out = []
    for f in files:
        try:
            img = load_rgb(f)
        except Exception:
            continue
        label = idx.get(f.parent.name) if f.parent != root else None
        out.append((img, label))
    if not out:
        raise ValueError(f"no readable images under {root}")
    return out


def _builtin_images(class_names: list[str], n: int):
    from .shapes import CLASSES, make_image

    out = []
    for k in range(n):
        c = class_names[k % len(class_names)]
        if c in CLASSES:
            out.append((make_image(c, 900_000 + k, 128), k % len(class_names)))
        else:
            import numpy as np
            from PIL import Image
            rng = np.random.default_rng(k)
            out.append((Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)), None))
    return out


# ------------------------------------------------------------------------------------ demo
def run_demo(clf, trace, images, latency_budget_ms=None, profile=None, out=print) -> dict[str, Any]:
    """Replay ``trace`` through the manifest policy on a loaded classifier; returns a summary."""
    m = clf.manifest
    selector = Selector(policy_for(m.policy, m.resolutions))
    top1 = {e.resolution: e.top1 for e in m.entries}
    lat: dict[int, list[float]] = {}
    est, hits, labelled, switches = [], 0, 0, []
    out(f"{clf.path.name} [{clf.backend_name}] resolutions {clf.resolutions}; "
        f"top-1 from the manifest: " + ", ".join(f"{r}: {'n/a' if top1[r] is None else f'{top1[r]:.1f}%'}"
                                                 for r in clf.resolutions))
    out(f"{'step':>4} {'battery':>8} {'chg':>3} {'thermal':>8} {'res':>4} {'latency':>10} "
        f"{'est.acc':>8} {'meas.acc':>8}  prediction")
    current = None
    for k, s in enumerate(trace):
        r = selector.select(s["battery"], s["charging"], s["thermal"], latency_budget_ms, profile)
        if r != current:
            t0 = time.perf_counter()
            clf.set_resolution(r)
            sw_ms = (time.perf_counter() - t0) * 1e3
            if current is not None:
                switches.append({"step": k, "from": current, "to": r, "battery": s["battery"],
                                 "switch_ms": sw_ms})
                out(f"  -> switch {current} -> {r} at {s['battery']:.1f}% "
                    f"({'charging' if s['charging'] else s['thermal']}), set_resolution {sw_ms:.3f} ms")
            current = r
        img, label = images[k % len(images)]
        t0 = time.perf_counter()
        pred = clf.predict([img], topk=1)[0][0]
        ms = (time.perf_counter() - t0) * 1e3
        lat.setdefault(r, []).append(ms)
        if top1.get(r) is not None:
            est.append(top1[r])
        if label is not None:
            labelled += 1
            hits += int(pred[0] == m.class_names[label])
        e = f"{statistics.fmean(est):.1f}%" if est else "n/a"
        meas = f"{100.0 * hits / labelled:.1f}%" if labelled else "n/a"
        out(f"{k:>4} {s['battery']:>7.1f}% {'yes' if s['charging'] else 'no':>3} {s['thermal']:>8} "
            f"{r:>4} {ms:>8.2f}ms {e:>8} {meas:>8}  {pred[0]} ({pred[1]:.0%})")
    summary = {
        "artifact": str(clf.path), "backend": clf.backend_name, "steps": len(trace),
        "switches": switches, "file_loads": clf.stats.file_loads,
        "latency_ms": {str(r): {"median": statistics.median(v), "n": len(v)} for r, v in lat.items()},
        "estimated_top1": statistics.fmean(est) if est else None,
        "measured_top1": 100.0 * hits / labelled if labelled else None,
    }
    out(f"{len(switches)} switches, artifact file opened {clf.stats.file_loads}x; median latency "
        + ", ".join(f"{r}: {statistics.median(v):.2f} ms" for r, v in sorted(lat.items(), reverse=True))
        + (f"; estimated top-1 {summary['estimated_top1']:.1f}%" if est else ""))
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rsnet_edge.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact")
    ap.add_argument("--trace", help="battery trace JSON (default: live battery if any, else built-in)")
    ap.add_argument("--images", help="folder of images (ImageFolder layout gives measured accuracy)")
    ap.add_argument("--steps", type=int, default=40, help="steps of the built-in / live trace")
    ap.add_argument("--live", action="store_true", help="read the real battery (psutil)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between live readings")
    ap.add_argument("--latency-budget", type=float, metavar="MS", help="latency budget (needs --profile)")
    ap.add_argument("--profile", help="device profile JSON written by bench/run_device.py")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--verbose", action="store_true", help="show backend runtime logs")
    a = ap.parse_args(argv)
    try:
        from .cli import Output, check_outputs
        from .runtime import load

        if a.steps < 1:
            raise ValueError("--steps must be at least 1")
        check_outputs([Output(a.json, "--json")], inputs=[a.artifact, a.trace, a.profile, a.images])
        if a.latency_budget is not None and not a.profile:
            raise ValueError("--latency-budget needs --profile (a bench/run_device.py JSON)")
        from .cli import quiet
        with quiet(a.verbose):
            clf = load(a.artifact)
            clf.run(clf.dummy_input())      # the runtime's one-time start-up (and its log lines) here
        profile = None
        if a.profile:
            from .profile import read_profile
            profile = read_profile(a.profile, artifact=clf.path.name, backend=clf.backend_name)
        if a.trace:
            trace, source = read_trace(a.trace), f"trace {a.trace}"
        elif a.live or live_battery() is not None:
            if live_battery() is None:
                raise ValueError("--live: this host reports no battery (psutil.sensors_battery() is None)")
            trace, source = list(live_trace(a.steps, a.interval)), "live battery (psutil)"
        else:
            trace, source = default_trace(a.steps), f"built-in trace ({a.steps} steps)"
        images = load_images(a.images, clf.manifest.class_names)
        print(f"battery source: {source}")
        summary = run_demo(clf, trace, images, a.latency_budget, profile)
    except (ValueError, OSError, PolicyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if a.json:
        from .files import atomic_write_bytes
        atomic_write_bytes(a.json, json.dumps(summary, indent=2).encode())
    return 0


if __name__ == "__main__":
    from .cli import run
    sys.exit(run(main))
