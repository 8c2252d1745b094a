"""Device profiles (``bench.run_device``'s ``bench.json``) in the library core: read one, and derive
a manifest policy from it.

    python -m rsnet_edge.profile ARTIFACT --profile bench.json [--write] [--top-battery 60]

prints the policy :func:`policy_from_profile` derives for ARTIFACT from the measured latencies, and
with ``--write`` stores it as the ``policy`` of ARTIFACT's sidecar manifest
(``<artifact>.manifest.json``, written atomically; the artifact itself and its embedded manifest are
not touched: the sidecar is what ``rsnet_edge.load`` and the Android app read first).

Derivation (stdlib only, deterministic):

* the **frontier**: a served resolution is dropped from the battery levels when another one is at
  least as fast on this device (measured ``latency_metric``, default ``p90_ms``) and at least as
  accurate (the manifest's top-1 where both have it; without top-1 a higher resolution counts as
  the more accurate), one of the two strictly: nobody should run a slower, less accurate entry;
* **battery levels**: the frontier resolution ``r`` needs ``top * (t(r) - t_min) / (t_max - t_min)``
  percent of battery (rounded down, made strictly decreasing), ``top`` = ``--top-battery`` (60 by
  default, as the default policy) and ``t`` its measured latency: a resolution that costs little
  more than the cheapest one stays on until the battery is nearly empty;
* **thermal caps** of the default policy, snapped down to frontier resolutions; hysteresis,
  charging and the latency metric as the default policy.

The result is an ordinary :class:`rsnet_edge.policy.Policy`, validated like any other.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from . import jsonio
from .policy import DEFAULT_LATENCY_METRIC, DEFAULT_TOP_BATTERY_PCT, Policy, check_profile, default_policy

PROFILE_FORMAT = "rsnet-edge-device-profile"
PROFILE_VERSION = 1


def read_profile(profile: str | os.PathLike | dict, artifact: str | None = None,
                 backend: str | None = None) -> dict[int, dict[str, float]]:
    """The latency profile ``{resolution: {"p50_ms": .., "p90_ms": .., ...}}`` of one shared
    artifact in a bench JSON, as :func:`rsnet_edge.policy.decide` takes it (``profile=``).

    Picks the entry whose file name is ``artifact`` and/or whose backend is ``backend`` (the first
    shared artifact when neither is given). The file is read within :mod:`rsnet_edge.jsonio`'s limits
    and every latency (``*_ms``) goes through the policy's own rule
    (:func:`rsnet_edge.policy.check_profile`: NaN, infinities and negatives refused). Raises
    ValueError (one line naming the file and the value)."""
    where = "profile" if isinstance(profile, dict) else str(profile)
    if isinstance(profile, dict):
        data = profile
    else:
        data = jsonio.read(profile, f"device profile {where}")
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise ValueError(f"{where} is not a bench/run_device.py device profile")
    arts = data.get("artifacts", [])
    if not isinstance(arts, list) or not all(isinstance(a, dict) for a in arts):
        raise ValueError(f"{where}: 'artifacts' must be a list of objects")
    cands = [a for a in arts if a.get("kind") == "shared"]
    if backend is not None:
        cands = [a for a in cands if a.get("backend") == backend] or cands
    if artifact is not None:
        cands = [a for a in cands if a.get("artifact") == Path(artifact).name] or cands
    if not cands:
        raise ValueError(f"{where} holds no shared artifact")
    prof = cands[0].get("profile")
    if not isinstance(prof, dict):
        raise ValueError(f"{where}: artifact {cands[0].get('artifact')!r} has no 'profile' object")
    for r, d in prof.items():
        try:
            int(r)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: profile key {r!r} is not a resolution") from None
        if not isinstance(d, dict):
            raise ValueError(f"{where}: profile[{r!r}] must be an object")
    check_profile(prof, ("*_ms",), f"{where}: {cands[0].get('artifact')!r} profile")
    return {int(r): {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for r, d in prof.items()}


def frontier(resolutions: list[int], latency: Mapping[int, float],
             top1: Mapping[int, float | None] | None = None) -> list[int]:
    """Served resolutions (highest first) worth running on this device: those no other measured
    resolution beats, i.e. is at least as fast AND at least as accurate (one of the two strictly).
    Accuracy is the manifest's top-1 where both have one; without it a higher resolution counts as
    the more accurate one."""
    rs = sorted(resolutions, reverse=True)
    top1 = top1 or {}

    def beats(q: int, r: int) -> bool:
        tq, tr = latency.get(q), latency.get(r)
        if q == r or tq is None or tr is None or tq > tr:
            return False
        aq, ar = top1.get(q), top1.get(r)
        if isinstance(aq, (int, float)) and isinstance(ar, (int, float)):
            return aq >= ar and (tq < tr or aq > ar)
        return q > r                     # as fast and (presumably) more accurate

    keep = [r for r in rs if latency.get(r) is not None and not any(beats(q, r) for q in rs)]
    return keep or [r for r in rs if latency.get(r) is not None][:1]


def recommendation(artifact: Mapping[str, Any], metric: str = DEFAULT_LATENCY_METRIC) -> str:
    """One line for a user: which resolutions of one measured artifact (a ``bench.json``
    ``artifacts`` item) are on the accuracy/latency frontier on this device, and which are not
    worth running (a lower resolution is as fast, or a faster one is as accurate)."""
    prof = artifact.get("profile") or {}
    rs = sorted((int(r) for r in prof), reverse=True)
    lat = {r: prof[str(r)].get(metric) or prof[str(r)].get("p50_ms") for r in rs}
    lat = {r: float(v) for r, v in lat.items() if isinstance(v, (int, float))}
    top1 = {r: prof[str(r)].get("top1") for r in rs}
    if not lat:
        return f"{artifact.get('artifact')}: no latencies measured"
    front = frontier(rs, lat, top1)
    def fmt(r):
        acc = top1.get(r)
        return (f"{r} ({metric.replace('_ms', '')} {lat[r]:.2f} ms"
                + (f", top-1 {acc:.1f}%" if isinstance(acc, (int, float)) else "") + ")")
    line = (f"recommendation for {artifact.get('artifact')} on this device: switch among "
            + ", ".join(fmt(r) for r in front if r in lat))
    dropped = [r for r in rs if r not in front and r in lat]
    if dropped:
        line += ("; skip " + ", ".join(str(r) for r in dropped)
                 + " (another resolution is as fast and as accurate here)")
    line += (f"; `python -m rsnet_edge.profile {artifact.get('artifact')} --profile bench.json --write` "
             f"puts this into the manifest policy")
    mode = resident_advice(artifact)
    return line + (f". {mode}" if mode else "")


def resident_advice(artifact: Mapping[str, Any]) -> str:
    """Which ``rsnet_edge.load(..., resident=)`` mode suits this device, from the bench's memory and
    lean-switch readings of one artifact ("" when they were not measured)."""
    mem = artifact.get("memory_mb") or {}
    one, every, single = mem.get("one"), mem.get("all"), mem.get("single")
    if not isinstance(one, (int, float)) or not isinstance(every, (int, float)):
        return ""
    sw = artifact.get("lean_switch_ms") or {}
    worst = max((v for v in sw.values() if isinstance(v, (int, float))), default=None)
    rel = (lambda v: f", {v / single:.2f}x a single export" if isinstance(single, (int, float)) and single > 0 else "")
    text = (f"Memory: resident='one' holds {one:.1f} MB{rel(one)}"
            + (f" and a switch costs {worst:.1f} ms" if worst is not None else "")
            + f"; resident='all' holds {every:.1f} MB{rel(every)} and switches for free")
    if every <= one * 1.25:
        return text + ": 'all' costs no more here, use it"
    return text + (": use 'one' when resolutions change with battery or heat (minutes apart) or memory is "
                   "tight, 'all' when a latency budget switches them per frame")


def policy_from_profile(resolutions: list[int], profile: Mapping[int, Mapping[str, float]],
                        top1: Mapping[int, float | None] | None = None,
                        metric: str = DEFAULT_LATENCY_METRIC,
                        top_battery: float = DEFAULT_TOP_BATTERY_PCT) -> Policy:
    """A :class:`Policy` for ``resolutions`` from measured latencies (see the module docstring)."""
    check_profile(profile, (metric, "*_ms"))           # the policy's own rule for latencies
    rs = sorted(int(r) for r in resolutions)[::-1]
    lat = {r: float(profile[r][metric]) for r in rs if r in profile and metric in profile[r]}
    if len(lat) < 1:
        raise ValueError(f"the profile has no {metric} for any of the resolutions {rs}")
    if not 0 < top_battery <= 100:
        raise ValueError(f"--top-battery must be in (0, 100], got {top_battery:g}")
    front = frontier(rs, lat, top1)
    base = default_policy(rs)
    if len(front) == 1:
        levels = [[0, front[0]]]
    else:
        tmin, tmax = min(lat[r] for r in front if r in lat), max(lat[r] for r in front if r in lat)
        span = max(tmax - tmin, 1e-9)
        levels, prev = [], None
        for i, r in enumerate(front):
            if i == len(front) - 1:
                m = 0
            else:
                m = int(top_battery * (lat.get(r, tmax) - tmin) / span)
                m = max(m, len(front) - 1 - i)                      # room for the levels below
                if prev is not None:
                    m = min(m, prev - 1)
            levels.append([m, r])
            prev = m
    caps = {}
    for k, cap in base.thermal_caps.items():
        caps[k] = None if cap is None else next((r for r in front if r <= cap), front[-1])
    return Policy(resolutions=rs, battery_levels=levels, hysteresis_pct=base.hysteresis_pct,
                  charging_resolution=base.charging_resolution, thermal_caps=caps,
                  latency_metric=metric)


def main(argv=None) -> int:
    from . import cli
    from .files import atomic_write_bytes
    from .manifest import read_sidecar, sidecar_path

    ap = argparse.ArgumentParser(prog="python -m rsnet_edge.profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact", help="artifact whose sidecar manifest gets the policy")
    ap.add_argument("--profile", required=True, help="bench.json written by bench.run_device")
    ap.add_argument("--metric", default=DEFAULT_LATENCY_METRIC, help="latency field (default p90_ms)")
    ap.add_argument("--top-battery", type=float, default=DEFAULT_TOP_BATTERY_PCT,
                    help="battery %% the highest resolution needs (default 60)")
    ap.add_argument("--write", action="store_true", help="store the policy in the sidecar manifest")
    a = ap.parse_args(argv)

    def work() -> int:
        art = Path(a.artifact)
        if not art.exists():
            raise cli.UsageError(f"{art} does not exist")
        manifest = read_sidecar(art)
        prof = read_profile(a.profile, artifact=art.name, backend=manifest.backend)
        pol = policy_from_profile(manifest.resolutions, prof, {e.resolution: e.top1 for e in manifest.entries},
                                  a.metric, a.top_battery)
        print(json.dumps(pol.to_dict(), indent=2))
        if a.write:
            manifest.policy = pol.to_dict()
            atomic_write_bytes(sidecar_path(art), manifest.to_json().encode())
            print(f"wrote the policy into {sidecar_path(art)}")
        return 0

    return cli.run(work)


if __name__ == "__main__":
    sys.exit(main())
