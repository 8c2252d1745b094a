"""rsnet_edge.policy: the shared vectors (also read by the Java core's JUnit suite), validation,
default_policy on several resolution lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsnet_edge.policy import (THERMAL_STATES, Policy, PolicyError, Selector, default_policy,
                               policy_for, select_resolution)

VECTORS = Path(__file__).parent / "data" / "policy_vectors.json"


# ------------------------------------------------------------------------ vector runner
def case_policy(case: dict) -> Policy:
    if "default_for" in case:
        return default_policy(case["default_for"])
    return Policy.from_dict(case["policy"])


def run_case(case: dict) -> list[str]:
    """Run one vector case; return a list of mismatch descriptions (empty = agrees)."""
    policy = case_policy(case)
    profile = case.get("profile")
    fresh = bool(case.get("fresh", False))
    sel = Selector(policy)
    problems = []
    for i, step in enumerate(case["steps"]):
        if fresh:
            sel = Selector(policy)
        args = dict(battery_pct=step["battery"], charging=step.get("charging", False),
                    thermal=step.get("thermal", "none"),
                    latency_budget_ms=step.get("latency_budget_ms"),
                    profile=profile if "latency_budget_ms" in step else None)
        where = f"{case['name']} step {i} {step}"
        if step.get("expect_error"):
            before = (sel.battery_resolution, sel.current, sel.switch_count)
            try:
                sel.select(**args)
                problems.append(f"{where}: expected an error, got none")
            except ValueError as e:
                if (sel.battery_resolution, sel.current, sel.switch_count) != before:
                    problems.append(f"{where}: a rejected call changed the selector's state")
                if "error_contains" in step and step["error_contains"] not in str(e):
                    problems.append(f"{where}: expected an error containing "
                                    f"{step['error_contains']!r}, got {str(e)!r}")
            continue
        got = sel.select(**args)
        if got != step["expect"]:
            problems.append(f"{where}: expected {step['expect']}, got {got}")
        if fresh and select_resolution(policy, **args) != got:
            problems.append(f"{where}: stateless helper disagrees with a fresh Selector")
        if "expect_switches" in step and sel.switch_count != step["expect_switches"]:
            problems.append(f"{where}: expected {step['expect_switches']} switches, "
                            f"got {sel.switch_count}")
    return problems


def run_vectors(path: Path) -> list[str]:
    data = json.loads(Path(path).read_text())
    assert data["format"] == "rsnet-edge-policy-vectors"
    out = []
    for case in data["cases"]:
        out += run_case(case)
    return out


def _cases():
    return json.loads(VECTORS.read_text())["cases"]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_vector_case(case):
    assert run_case(case) == []


def test_vectors_cover_what_they_must():
    cases = _cases()
    steps = [s for c in cases for s in c["steps"]]
    assert {s.get("thermal", "none") for s in steps} >= set(THERMAL_STATES)
    assert any(s.get("charging") for s in steps)
    assert any("latency_budget_ms" in s for s in steps)
    assert any(s.get("expect_error") for s in steps)
    lists = [tuple(c["default_for"]) for c in cases if "default_for" in c]
    assert (256, 128) in lists and (160,) in lists
    assert any(not c.get("fresh") for c in cases)          # some cases carry hysteresis history
    # S=10: the only list here whose floor thresholds differ from rounded ones (46/26/6 vs 47/27/7)
    assert tuple(range(320, 0, -32)) in lists
    # non-monotone caps: some state's own cap is larger than a cooler state's
    def non_monotone(c):
        caps = c.get("policy", {}).get("thermal_caps", {})
        own = [caps.get(s) for s in THERMAL_STATES]
        return any(a is not None and b is not None and b > a
                   for i, a in enumerate(own) for b in own[i + 1:])
    assert sum(map(non_monotone, cases)) >= 2
    # the fraction rule: a battery strictly between 0 and 1 is refused, with its message checked
    assert any(0 < s["battery"] < 1 and s.get("expect_error") and "error_contains" in s for s in steps)


def test_a_mutated_vector_is_caught(tmp_path):
    data = json.loads(VECTORS.read_text())
    step = data["cases"][1]["steps"][3]          # battery 57 after 224: hysteresis keeps 224
    assert step["expect"] == 224
    step["expect"] = 192
    p = tmp_path / "v.json"
    p.write_text(json.dumps(data))
    problems = run_vectors(p)
    assert len(problems) == 1 and "expected 192, got 224" in problems[0]


# -------------------------------------------------------------------------- default_policy
@pytest.mark.parametrize("rs, mins", [
    ([224, 192, 160, 128, 96], [60, 45, 30, 15, 0]),
    ([256, 128], [60, 0]),
    ([160], [0]),
    ([224, 160, 96], [60, 30, 0]),
    ([224, 192, 160, 128], [60, 40, 20, 0]),
    ([96, 128, 160, 192, 224, 256], [60, 48, 36, 24, 12, 0]),
    # S=10, by hand from min_pct(i) = (60*(9-i))//9: 60, 53.3, 46.7, 40, 33.3, 26.7, 20, 13.3, 6.7, 0
    # floored (rounding would give 47, 27, 7)
    (list(range(320, 0, -32)), [60, 53, 46, 40, 33, 26, 20, 13, 6, 0]),
])
def test_default_policy_shapes(rs, mins):
    p = default_policy(rs)
    srt = sorted(rs, reverse=True)
    assert p.resolutions == srt
    assert [r for _, r in p.battery_levels] == srt
    got = [m for m, _ in p.battery_levels]
    assert got == mins
    assert got[0] == (60 if len(rs) > 1 else 0) and got[-1] == 0
    assert p.thermal_cap("none") is None and p.thermal_cap("light") is None
    assert p.thermal_cap("critical") == srt[-1] == p.thermal_cap("shutdown")
    assert p.thermal_cap("severe") == srt[max(len(srt) - 2, 0)]
    assert p.thermal_cap("moderate") == srt[(len(srt) - 1) // 2]
    caps = [p.thermal_cap(s) or 10**9 for s in THERMAL_STATES]
    assert caps == sorted(caps, reverse=True)                 # hotter never allows more
    # round trip through JSON
    again = Policy.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p


def test_default_policy_s10_thermal_caps_by_hand():
    p = default_policy(list(range(320, 0, -32)))         # 320 288 256 224 192 160 128 96 64 32
    assert [p.thermal_cap(s) for s in THERMAL_STATES] == [None, None, 192, 64, 32, 32, 32]


def test_thermal_cap_is_the_smallest_so_far_not_the_last():
    p = Policy.from_dict({"resolutions": [224, 160, 96], "battery_levels": [[0, 224]],
                          "thermal_caps": {"light": 200, "moderate": 96, "severe": 160,
                                           "emergency": 224}})
    assert [p.thermal_cap(s) for s in THERMAL_STATES] == [None, 200, 96, 96, 96, 96, 96]


def test_default_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        default_policy([])
    with pytest.raises(ValueError):
        default_policy([224, 0])


def test_policy_for_manifest():
    assert policy_for({}, [224, 96]) == default_policy([224, 96])
    d = default_policy([224, 96]).to_dict()
    assert policy_for(d, [224, 96]).resolutions == [224, 96]
    with pytest.raises(PolicyError, match="differ"):
        policy_for(d, [224, 160, 96])


# ------------------------------------------------------------------------------ validation
def _good() -> dict:
    return default_policy([224, 192, 160, 128, 96]).to_dict()


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d.pop("battery_levels"), "missing 'battery_levels'"),
    (lambda d: d.update(bogus=1), "unknown key"),
    (lambda d: d.update(version=2), "newer"),
    (lambda d: d.update(resolutions=[96, 224]), "strictly decreasing"),
    (lambda d: d.update(resolutions=[]), "non-empty"),
    (lambda d: d.update(battery_levels=[[60, 224], [10, 96]]), "end with min_pct 0"),
    (lambda d: d.update(battery_levels=[[60, 224], [70, 192], [0, 96]]), "min_pct must be strictly"),
    (lambda d: d.update(battery_levels=[[60, 96], [0, 224]]), "resolutions must be strictly"),
    (lambda d: d.update(battery_levels=[[60, 200], [0, 96]]), "not one of"),
    (lambda d: d.update(battery_levels=[[160, 224], [0, 96]]), "0..100"),
    (lambda d: d.update(battery_levels=[[60], [0, 96]]), "must be [min_pct, resolution]"),
    (lambda d: d.update(hysteresis_pct=-1), "hysteresis_pct"),
    (lambda d: d.update(hysteresis_pct="3"), "hysteresis_pct"),
    (lambda d: d.update(charging_resolution="min"), "charging_resolution"),
    (lambda d: d.update(charging_resolution=200), "charging_resolution"),
    (lambda d: d["thermal_caps"].update(hot=96), "unknown thermal state"),
    (lambda d: d["thermal_caps"].update(severe=-5), "thermal_caps"),
    (lambda d: d.update(thermal_caps=[1]), "thermal_caps must be an object"),
    (lambda d: d.update(latency_metric=""), "latency_metric"),
])
def test_policy_from_dict_rejects(mutate, msg):
    d = _good()
    mutate(d)
    with pytest.raises(PolicyError) as ei:
        Policy.from_dict(d)
    assert msg in str(ei.value)
    assert "\n" not in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_policy_from_dict_not_a_dict():
    with pytest.raises(ValueError, match="JSON object"):
        Policy.from_dict([1, 2])


@pytest.mark.parametrize("kwargs, msg", [
    (dict(battery_pct=101, charging=False), "battery_pct"),
    (dict(battery_pct=-0.1, charging=False), "battery_pct"),
    (dict(battery_pct=float("nan"), charging=False), "battery_pct"),
    (dict(battery_pct="50", charging=False), "battery_pct"),
    (dict(battery_pct=True, charging=False), "battery_pct"),
    (dict(battery_pct=50, charging=1), "charging"),
    (dict(battery_pct=50, charging=False, thermal="hot"), "unknown thermal state"),
    (dict(battery_pct=50, charging=False, thermal="MODERATE"), "unknown thermal state"),
    (dict(battery_pct=50, charging=False, latency_budget_ms=10), "needs a measured profile"),
    (dict(battery_pct=50, charging=False, latency_budget_ms=0, profile={}), "positive"),
    (dict(battery_pct=50, charging=False, latency_budget_ms=10, profile={"224": 5}), "must be an object"),
    (dict(battery_pct=50, charging=False, latency_budget_ms=10,
          profile={224: {"p90_ms": -1}}), "non-negative"),
])
def test_select_rejects_bad_inputs(kwargs, msg):
    sel = Selector(default_policy([224, 192, 160, 128, 96]))
    with pytest.raises(ValueError, match=msg):
        sel.select(**kwargs)
    assert sel.current is None and sel.battery_resolution is None


def test_selector_reset_and_type():
    sel = Selector(default_policy([224, 96]))
    assert sel.select(100, False) == 224
    assert sel.select(10, False) == 96
    assert sel.switch_count == 1
    sel.reset()
    assert (sel.current, sel.battery_resolution, sel.switch_count) == (None, None, 0)
    with pytest.raises(TypeError):
        Selector({"resolutions": [224]})


def test_policy_module_is_stdlib_only():
    import ast
    import sys
    import rsnet_edge.policy as mod
    tree = ast.parse(Path(mod.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    assert names <= stdlib, names - stdlib
