"""The resolution selector policy: which entry point (``forward_<r>``) to run, as DATA.

A :class:`Policy` is a small JSON-able object stored in the manifest's ``"policy"`` field. The same
rules are implemented twice -- here (stdlib only, no torch) and in the Android app's pure-Java core
(``android_demo/core/.../Selector.java``) -- and both are checked against the same vectors in
``tests/data/policy_vectors.json``. Change a rule here and the Java twin (and the vectors) must
change with it.

JSON layout (``version`` 1)::

    {
      "version": 1,
      "resolutions": [224, 192, 160, 128, 96],            # served resolutions, highest first
      "battery_levels": [[60, 224], [45, 192], [30, 160], [15, 128], [0, 96]],
      "hysteresis_pct": 3.0,
      "charging_resolution": "max",                         # "max" | a served resolution | null
      "thermal_caps": {"none": null, "light": null, "moderate": 160, "severe": 128,
                       "critical": 96, "emergency": 96, "shutdown": 96},
      "latency_metric": "p90_ms"
    }

Inputs: ``battery_pct`` is a percentage 0..100 (Android's ``BatteryManager`` level); a value strictly
between 0 and 1 is refused as a likely fraction (iOS ``UIDevice.batteryLevel`` is 0..1: multiply by
100), so 0.5 % cannot be asked for -- pass 0 or 1. ``charging`` defaults to False, ``thermal`` to
``"none"``.

Decision rules, applied in this fixed order on every call:

1. **Battery** (with hysteresis). ``battery_levels`` is a list of ``[min_pct, resolution]``, highest
   first, the last ``min_pct`` being 0. Without history, the level is the first one whose
   ``min_pct <= battery``. With history (the battery-stage result of the previous call, level ``c``):

   * moving **down** (battery fell below ``min_c``) happens only once ``battery < min_c - h``;
     the new level is then the plain (history-free) level for ``battery``;
   * moving **up** happens only to a level ``j`` above ``c`` with ``battery >= min_j + h``; the
     highest such level is taken;
   * otherwise the level stays ``c``.

   ``h = hysteresis_pct``. The battery stage keeps its own history: charging, thermal state and
   latency budget never disturb it.
2. **Charging**: when ``charging`` and ``charging_resolution`` is not null, the result is lifted to
   ``charging_resolution`` (``"max"`` = the highest served resolution). Lifting never lowers.
3. **Thermal cap**: the cap of a thermal state is the smallest non-null cap among that state and
   all cooler states (so a hotter state never allows more than a cooler one). The result is
   lowered to the highest served resolution ``<= cap`` (the lowest served one if none is).
4. **Latency budget** (only when ``latency_budget_ms`` is given; a ``profile`` is then required):
   among the served resolutions ``<=`` the result of steps 1-3 whose measured
   ``profile[r][latency_metric] <= latency_budget_ms``, take the highest (= most accurate);
   resolutions missing from the profile count as not fitting; if none fits, the lowest served
   resolution.

``default_policy(resolutions)`` works for any number ``S >= 1`` of resolutions (sorted highest
first, index ``i = 0..S-1``):

* battery: ``min_pct(i) = (60 * (S-1-i)) // (S-1)`` (integer floor division; ``S == 1``: 0) --
  the top resolution needs 60 %, the lowest takes what is left, evenly spaced in between
  (S=5: 60/45/30/15/0; S=2: 60/0; S=3: 60/30/0);
* thermal caps: none/light -> no cap; moderate -> index ``(S-1)//2`` (the middle, rounding
  towards higher resolutions); severe -> index ``max(S-2, 0)`` (second lowest); critical,
  emergency, shutdown -> index ``S-1`` (lowest);
* ``hysteresis_pct`` 3, ``charging_resolution`` ``"max"``, ``latency_metric`` ``"p90_ms"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

POLICY_VERSION = 1

#: Android ``PowerManager.THERMAL_STATUS_*`` names, coolest first (index == Android constant).
THERMAL_STATES = ("none", "light", "moderate", "severe", "critical", "emergency", "shutdown")

DEFAULT_TOP_BATTERY_PCT = 60
DEFAULT_HYSTERESIS_PCT = 3.0
DEFAULT_LATENCY_METRIC = "p90_ms"

_KEYS = ("version", "resolutions", "battery_levels", "hysteresis_pct", "charging_resolution",
         "thermal_caps", "latency_metric")


class PolicyError(ValueError):
    """A policy dict, or a selector input, that is not valid."""


def _fail(msg: str) -> None:
    raise PolicyError(msg)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


@dataclass
class Policy:
    resolutions: list[int]
    battery_levels: list[list[Any]]            # [[min_pct, resolution], ...] highest first
    hysteresis_pct: float = DEFAULT_HYSTERESIS_PCT
    charging_resolution: int | str | None = "max"
    thermal_caps: dict[str, int | None] = field(default_factory=dict)
    latency_metric: str = DEFAULT_LATENCY_METRIC
    version: int = POLICY_VERSION

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "resolutions": list(self.resolutions),
            "battery_levels": [[m, r] for m, r in self.battery_levels],
            "hysteresis_pct": self.hysteresis_pct,
            "charging_resolution": self.charging_resolution,
            "thermal_caps": {k: self.thermal_caps.get(k) for k in THERMAL_STATES},
            "latency_metric": self.latency_metric,
        }

    @classmethod
    def from_dict(cls, d: Any) -> "Policy":
        """Build and validate; raises :class:`PolicyError` (a ValueError) with one clear line."""
        if not isinstance(d, Mapping):
            _fail("policy must be a JSON object")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            _fail(f"policy has unknown key(s) {unknown} (known: {list(_KEYS)})")
        for key in ("resolutions", "battery_levels"):
            if key not in d:
                _fail(f"policy is missing '{key}'")
        caps = d.get("thermal_caps", {})
        if not isinstance(caps, Mapping):
            _fail("policy thermal_caps must be an object")
        levels = d["battery_levels"]
        if isinstance(levels, list):
            levels = [list(x) if isinstance(x, (list, tuple)) else x for x in levels]
        return cls(
            resolutions=list(d["resolutions"]) if isinstance(d["resolutions"], list) else d["resolutions"],
            battery_levels=levels,
            hysteresis_pct=d.get("hysteresis_pct", DEFAULT_HYSTERESIS_PCT),
            charging_resolution=d.get("charging_resolution", "max"),
            thermal_caps=dict(caps),
            latency_metric=d.get("latency_metric", DEFAULT_LATENCY_METRIC),
            version=d.get("version", POLICY_VERSION),
        )

    # ------------------------------------------------------------------------ validation
    def validate(self) -> None:
        if not _is_int(self.version) or self.version < 1:
            _fail(f"policy version must be a positive integer, got {self.version!r}")
        if self.version > POLICY_VERSION:
            _fail(f"policy version {self.version} is newer than this library understands "
                  f"({POLICY_VERSION})")
        rs = self.resolutions
        if not isinstance(rs, list) or not rs or not all(_is_int(r) and r > 0 for r in rs):
            _fail("policy resolutions must be a non-empty list of positive integers")
        if any(a <= b for a, b in zip(rs, rs[1:])):
            _fail(f"policy resolutions must be strictly decreasing (highest first), got {rs}")
        lv = self.battery_levels
        if not isinstance(lv, list) or not lv:
            _fail("policy battery_levels must be a non-empty list of [min_pct, resolution]")
        for x in lv:
            if not (isinstance(x, list) and len(x) == 2 and _is_num(x[0]) and _is_int(x[1])):
                _fail(f"policy battery_levels item {x!r} must be [min_pct, resolution]")
            if not 0 <= x[0] <= 100:
                _fail(f"policy battery_levels min_pct {x[0]} must be in 0..100")
            if x[1] not in rs:
                _fail(f"policy battery_levels resolution {x[1]} is not one of {rs}")
        mins = [x[0] for x in lv]
        if any(a <= b for a, b in zip(mins, mins[1:])):
            _fail(f"policy battery_levels min_pct must be strictly decreasing, got {mins}")
        if mins[-1] != 0:
            _fail(f"policy battery_levels must end with min_pct 0 (got {mins[-1]}) so every "
                  f"battery level maps to a resolution")
        lr = [x[1] for x in lv]
        if any(a <= b for a, b in zip(lr, lr[1:])):
            _fail(f"policy battery_levels resolutions must be strictly decreasing, got {lr}")
        h = self.hysteresis_pct
        if not _is_num(h) or not 0 <= h < 50:
            _fail(f"policy hysteresis_pct must be a number in [0, 50), got {h!r}")
        c = self.charging_resolution
        if not (c is None or c == "max" or (_is_int(c) and c in rs)):
            _fail(f"policy charging_resolution must be \"max\", null or one of {rs}, got {c!r}")
        if not isinstance(self.thermal_caps, dict):
            _fail("policy thermal_caps must be an object")
        for k, v in self.thermal_caps.items():
            if k not in THERMAL_STATES:
                _fail(f"policy thermal_caps has unknown thermal state {k!r} "
                      f"(known: {list(THERMAL_STATES)})")
            if not (v is None or (_is_int(v) and v > 0)):
                _fail(f"policy thermal_caps[{k!r}] must be null or a positive integer, got {v!r}")
        if not isinstance(self.latency_metric, str) or not self.latency_metric:
            _fail("policy latency_metric must be a non-empty string")

    # --------------------------------------------------------------------------- queries
    @property
    def max_resolution(self) -> int:
        return self.resolutions[0]

    @property
    def min_resolution(self) -> int:
        return self.resolutions[-1]

    def thermal_cap(self, thermal: str) -> int | None:
        """Effective cap of a thermal state: the smallest non-null cap at or below its severity."""
        idx = THERMAL_STATES.index(thermal)
        caps = [self.thermal_caps.get(s) for s in THERMAL_STATES[: idx + 1]]
        caps = [c for c in caps if c is not None]
        return min(caps) if caps else None


def default_policy(resolutions: list[int]) -> Policy:
    """The default policy for any list of resolutions (see the module docstring for the rule)."""
    rs = sorted({int(r) for r in resolutions}, reverse=True)
    if not rs or any(r <= 0 for r in rs):
        _fail("default_policy needs a non-empty list of positive resolutions")
    s = len(rs)
    levels = []
    for i, r in enumerate(rs):
        m = 0 if s == 1 else (DEFAULT_TOP_BATTERY_PCT * (s - 1 - i)) // (s - 1)
        levels.append([m, r])
    caps: dict[str, int | None] = {
        "none": None, "light": None,
        "moderate": rs[(s - 1) // 2],
        "severe": rs[max(s - 2, 0)],
        "critical": rs[s - 1], "emergency": rs[s - 1], "shutdown": rs[s - 1],
    }
    return Policy(resolutions=rs, battery_levels=levels, hysteresis_pct=DEFAULT_HYSTERESIS_PCT,
                  charging_resolution="max", thermal_caps=caps,
                  latency_metric=DEFAULT_LATENCY_METRIC)


def policy_for(policy_dict: Mapping[str, Any] | None, resolutions: list[int]) -> Policy:
    """The policy an artifact runs with: its manifest's ``policy`` dict, or the default policy for
    its resolutions when that dict is empty. Refuses a policy that names other resolutions."""
    if not policy_dict:
        return default_policy(resolutions)
    p = Policy.from_dict(policy_dict)
    if sorted(p.resolutions, reverse=True) != sorted(resolutions, reverse=True):
        _fail(f"policy resolutions {p.resolutions} differ from the artifact's {list(resolutions)}")
    return p


# ------------------------------------------------------------------------------ inputs
def check_profile(profile: Any, metrics: Any = ("p90_ms",), where: str = "profile") -> None:
    """THE rule for measured latencies that reach a policy (the selector's latency budget, a policy
    derived from a device profile): ``profile`` maps a resolution to ``{metric: ms}``; every value of
    the fields in ``metrics`` (``"*_ms"``: every field whose name ends in ``_ms``) must be a finite,
    non-negative number or null (not measured). NaN, infinities and negatives are refused with one
    :class:`PolicyError` line naming ``where``, the resolution, the field and the value."""
    if not isinstance(profile, Mapping):
        _fail(f"{where} must be a mapping resolution -> {{metric: ms}}")
    for key, rec in profile.items():
        if not isinstance(rec, Mapping):
            _fail(f"{where}[{key!r}] must be an object like {{\"p90_ms\": ms}}")
        for k, v in rec.items():
            if not (k in metrics or ("*_ms" in metrics and isinstance(k, str) and k.endswith("_ms"))):
                continue
            if v is not None and (not _is_num(v) or v < 0):
                _fail(f"{where}[{key!r}][{k!r}] must be a non-negative number, got {v!r}")


def _check_inputs(battery_pct: Any, charging: Any, thermal: Any, latency_budget_ms: Any,
                  profile: Any, metric: str) -> None:
    if not _is_num(battery_pct) or not 0 <= battery_pct <= 100:
        _fail(f"battery_pct must be a number in 0..100, got {battery_pct!r}")
    if 0 < battery_pct < 1:
        _fail(f"battery_pct {battery_pct!r} looks like a fraction (iOS reports 0..1): pass a "
              f"percentage 0..100, e.g. {battery_pct * 100:g}")
    if not isinstance(charging, bool):
        _fail(f"charging must be true or false, got {charging!r}")
    if thermal not in THERMAL_STATES:
        _fail(f"unknown thermal state {thermal!r} (known: {list(THERMAL_STATES)})")
    if latency_budget_ms is not None:
        if not _is_num(latency_budget_ms) or latency_budget_ms <= 0:
            _fail(f"latency_budget_ms must be a positive number, got {latency_budget_ms!r}")
        if profile is None:
            _fail("latency_budget_ms needs a measured profile (resolution -> {metric: ms})")
    if profile is not None:
        check_profile(profile, (metric,))             # other fields (bench extras) are ignored


def _profile_ms(profile: Mapping[Any, Any], resolution: int, metric: str) -> float | None:
    """Measured latency of ``resolution`` in ``profile``; keys may be 224, "224" or "forward_224"
    (the first present wins, in that order); None when not measured."""
    for key in (resolution, str(resolution), f"forward_{resolution}"):
        if key in profile:
            v = profile[key].get(metric)              # validated by _check_inputs
            return None if v is None else float(v)
    return None


# ------------------------------------------------------------------------------- rules
def battery_stage(policy: Policy, battery_pct: float, previous: int | None = None) -> int:
    """Rule 1: the battery level's resolution, with hysteresis around ``previous`` (the previous
    battery-stage result; None or a resolution the levels do not use = no history)."""
    lv = policy.battery_levels
    plain = next(i for i, (m, _) in enumerate(lv) if battery_pct >= m)
    cur = next((i for i, (_, r) in enumerate(lv) if r == previous), None)
    if cur is None:
        return lv[plain][1]
    h = policy.hysteresis_pct
    if plain > cur:                                          # battery fell below min_cur
        return lv[plain][1] if battery_pct < lv[cur][0] - h else lv[cur][1]
    for j in range(cur):                                     # highest level above cur first
        if battery_pct >= lv[j][0] + h:
            return lv[j][1]
    return lv[cur][1]


def _snap_down(policy: Policy, limit: int) -> int:
    return next((r for r in policy.resolutions if r <= limit), policy.min_resolution)


def decide(policy: Policy, battery_pct: float, charging: bool = False, thermal: str = "none",
           latency_budget_ms: float | None = None, profile: Mapping[Any, Any] | None = None,
           previous_battery_resolution: int | None = None) -> tuple[int, int]:
    """All four rules, pure. Returns ``(resolution, battery_stage_resolution)``; feed the second
    value back as ``previous_battery_resolution`` on the next call to get hysteresis."""
    _check_inputs(battery_pct, charging, thermal, latency_budget_ms, profile, policy.latency_metric)
    b = battery_stage(policy, battery_pct, previous_battery_resolution)
    r = b
    if charging and policy.charging_resolution is not None:              # 2. charging lift
        lift = (policy.max_resolution if policy.charging_resolution == "max"
                else policy.charging_resolution)
        r = max(r, lift)
    cap = policy.thermal_cap(thermal)                                     # 3. thermal cap
    if cap is not None and r > cap:
        r = _snap_down(policy, cap)
    if latency_budget_ms is not None:                                     # 4. latency budget
        fits = [q for q in policy.resolutions if q <= r
                and (ms := _profile_ms(profile, q, policy.latency_metric)) is not None
                and ms <= latency_budget_ms]
        r = fits[0] if fits else policy.min_resolution
    return r, b


def select_resolution(policy: Policy, battery_pct: float, charging: bool = False, thermal: str = "none",
                      latency_budget_ms: float | None = None,
                      profile: Mapping[Any, Any] | None = None) -> int:
    """Stateless selection (no hysteresis history): what a fresh :class:`Selector` returns on its
    first call."""
    return decide(policy, battery_pct, charging, thermal, latency_budget_ms, profile)[0]


class Selector:
    """Stateful selector: remembers the battery-stage level (hysteresis), the last resolution and
    how many times it switched."""

    def __init__(self, policy: Policy):
        if not isinstance(policy, Policy):
            raise TypeError("Selector needs a Policy (use Policy.from_dict or default_policy)")
        self.policy = policy
        self.battery_resolution: int | None = None
        self.current: int | None = None
        self.switch_count = 0

    def select(self, battery_pct: float, charging: bool = False, thermal: str = "none",
               latency_budget_ms: float | None = None,
               profile: Mapping[Any, Any] | None = None) -> int:
        r, b = decide(self.policy, battery_pct, charging, thermal, latency_budget_ms, profile,
                      self.battery_resolution)
        self.battery_resolution = b
        if self.current is not None and r != self.current:
            self.switch_count += 1
        self.current = r
        return r

    def reset(self) -> None:
        self.battery_resolution = None
        self.current = None
        self.switch_count = 0
