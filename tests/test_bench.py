"""bench.run_device on the host: CSV/JSON/PNG, ratio lines, and the profile feeding the policy."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import re

import pytest

from fakes import artifacts as A

from bench import run_device as rd
from bench.measure import percentile, summarize
from rsnet_edge.profile import PROFILE_FORMAT, read_profile
from rsnet_edge.policy import Selector, default_policy, policy_for, select_resolution


@pytest.fixture(scope="module")
def pte():
    if importlib.util.find_spec("executorch") is None:
        pytest.skip("executorch not installed")
    art = A.artifact("executorch", "shared")      # the default form: tiny.pte.rsfold (fold at load)
    for r in A.RESOLUTIONS:                 # the folded baselines, cached under the bench's names
        A.artifact("executorch", "folded", [r])
    return art


@pytest.fixture(scope="module")
def bench_run(pte, tmp_path_factory):
    """Runs the host bench once for the module: (exit code, its stdout, its output folder). Every
    test that needs the bench's files gets them from here, whatever order the tests run in."""
    out = tmp_path_factory.mktemp("bench")
    args = [str(pte), "--runs", "8", "--inner", "2", "--warmup", "2", "--switch-rounds", "4", "--out-dir", str(out),
            "--baseline-dir", str(A.cache_dir()), "--data", str(A.cache_dir() / "images"),
            "--no-progress"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = rd.main(args)
    return rc, buf.getvalue(), out


def test_host_bench_outputs_and_ratios(bench_run):
    rc, text, out = bench_run
    assert rc == 0, text[-2000:]
    # the three ratio lines
    assert re.search(r"\[executorch\] shared/folded latency @96: \d+\.\d+ .*I-Net export", text)
    assert "MISS" not in text and "target" not in text            # results, not internal targets
    assert "recommendation for tiny.pte.rsfold on this device: switch among" in text
    # shipped bytes and the first-load (unpack) cost against the single-resolution exports
    assert re.search(r"\[executorch\] tiny.pte.rsfold ships \d+ bytes = \d\.\d+ x one single-resolution export", text)
    assert re.search(r"first load \+ first inference: [\d.]+ ms \(unpack into an empty cache [\d.]+ ms; "
                     r"a later first load, the cache filled, [\d.]+ ms\); a single export: [\d.]+ ms", text)
    assert re.search(r"^tiny.pte.rsfold +executorch shared +fp32 +\d\.\d+x +\d\.\d+x +\d\.\d+x", text, re.M)
    assert re.search(r"\[executorch\] shared/folded latency @64: \d+\.\d+", text)
    assert re.search(r"\[executorch\] latency\(64\)/latency\(96\): \d+\.\d+ "
                     r"\(by min \d+\.\d+\)", text)
    worst = re.search(r"switch inside tiny.pte.rsfold: (\d+\.\d+) ms .*loading another model: "
                      r"\d+\.\d+ ms -> \d+x cheaper", text)
    assert worst
    rows = list(csv.DictReader(open(out / "bench.csv")))
    kinds = {(r["artifact"], r["kind"], int(r["resolution"])) for r in rows}
    assert kinds == {("tiny.pte.rsfold", "shared", 96), ("tiny.pte.rsfold", "shared", 64),
                     ("tiny.folded_96.pte", "folded", 96), ("tiny.folded_64.pte", "folded", 64)}
    switch = []
    for r in rows:
        assert float(r["p90_ms"]) >= float(r["p50_ms"]) > 0 and float(r["load_ms"]) > 0
        assert float(r["first_ms"]) > 0 and int(r["runs"]) == 8 * 2 and float(r["peak_rss_mb"]) > 0
        assert r["top1_source"].startswith("measured on 12 images")
        if r["kind"] == "shared":
            switch.append(float(r["switch_ms"]))          # measured for every shared entry
        else:
            assert float(r["reload_switch_ms"]) > 0
    assert len(switch) == 2 and float(worst.group(1)) == pytest.approx(max(switch), abs=6e-4)  # worst entry
    # same checkpoint, same BN: the folded I-Net export scores what the shared artifact scores
    top = {(r["kind"], r["resolution"]): float(r["top1"]) for r in rows}
    assert top[("shared", "96")] == top[("folded", "96")] and top[("shared", "64")] == top[("folded", "64")]
    prof = json.loads((out / "bench.json").read_text())
    assert prof["format"] == PROFILE_FORMAT and prof["device"]["where"] == "host"
    shared = [a for a in prof["artifacts"] if a["kind"] == "shared"][0]
    assert set(shared["profile"]) == {"96", "64"}
    assert {"p50_ms", "p90_ms", "first_ms", "top1"} <= set(shared["profile"]["96"])
    ratios = prof["ratios"][0]
    assert set(ratios["shared_vs_folded"]) == {"96", "64"} and ratios["switch_gain"] > 0
    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_profile_drives_latency_budget(bench_run):
    """The real run's profile (deterministic whatever the timing noise: a budget above both p90s and
    one below both); a budget between two p90s is test_profile_p90_drives_the_budget_by_hand."""
    rc, text, out = bench_run
    assert rc == 0, text[-2000:]
    profile = read_profile(out / "bench.json", backend="executorch")
    assert set(profile) == {96, 64} and all("p90_ms" in v for v in profile.values())
    pol = policy_for(json.loads((A.cache_dir() / "tiny.pte.rsfold.manifest.json").read_text())["policy"], [96, 64])
    lo, hi = profile[64]["p90_ms"], profile[96]["p90_ms"]
    sel = Selector(pol)
    assert sel.select(100, False, latency_budget_ms=max(lo, hi) + 1, profile=profile) == 96
    # a budget below both: nothing fits, the lowest served entry
    assert sel.select(100, False, latency_budget_ms=min(lo, hi) / 2, profile=profile) == 64
    assert sel.switch_count == 1


# ------------------------------------------------------------ the bench's arithmetic on hand numbers
# (issue 22) Timings are set by hand on bench.measure.Loaded records (a SimpleNamespace stands in for
# the loaded classifier: only its backend, resolutions and manifest fields are read), and every
# expected figure below is worked out in the comments.
def _hand_loaded(name: str, kind: str, samples: dict, best: dict | None = None, shipped: int = 0):
    from pathlib import Path
    from types import SimpleNamespace as NS

    from bench.measure import Loaded
    rs = sorted(samples, reverse=True)
    entries = [NS(resolution=r, entry=f"forward_{r}", trained=True, madds=None, top1=None) for r in rs]
    clf = NS(backend_name="executorch", resolutions=rs,
             manifest=NS(weights="shared" if kind == "shared" else "folded", dtype="fp32", entries=entries))
    it = Loaded(Path(name), kind, clf, load_ms=10.0, rss_delta_mb=None, peak_rss_mb=1.0)
    it.samples = {r: list(v) for r, v in samples.items()}
    it.best = {r: list(v) for r, v in (best or {}).items()}
    it.shipped_bytes = shipped
    it.first_ms = {r: 1.0 for r in rs}
    return it


# shared artifact: 1090 bytes; p50 @96 = (12 + 14) / 2 = 13, @64 = (5 + 6) / 2 = 5.5; min 10 and 4
# p90 (linear, k = 0.9 * 3 = 2.7): @96 14 + 0.7 * (30 - 14) = 25.2, @64 6 + 0.7 * (20 - 6) = 15.8
HAND_SHARED = dict(samples={96: [10.0, 12.0, 14.0, 30.0], 64: [4.0, 5.0, 6.0, 20.0]},
                   best={96: [5.0, 6.0, 5.0], 64: [3.0, 3.0, 4.0]}, shipped=1090)
# single exports (1000 bytes each): per round shared/single @96 5/4, 6/4, 5/5 = 1.25, 1.5, 1.0 ->
# median 1.25 (the shared artifact 1.25x slower); @64 3/4, 3/2, 4/5 = 0.75, 1.5, 0.8 -> 0.8
HAND_SINGLE = {96: dict(samples={96: [4.0, 4.0, 5.0]}, best={96: [4.0, 4.0, 5.0]}, shipped=1000),
               64: dict(samples={64: [4.0, 2.0, 5.0]}, best={64: [4.0, 2.0, 5.0]}, shipped=1000)}


def _hand_run():
    shared = _hand_loaded("rs.pte.rsfold", "shared", **HAND_SHARED)
    singles = {r: _hand_loaded(f"rs.folded_{r}.pte", "folded", **kw) for r, kw in HAND_SINGLE.items()}
    return shared, singles


def test_ratio_size_and_low_high_functions_on_hand_numbers():
    from bench.report import low_high_ratio, paired_ratio, size_ratio
    assert paired_ratio([5, 6, 5], [4, 4, 5]) == pytest.approx(1.25)          # this / single
    assert paired_ratio([1, 10, 1], [2, 10, 0.5]) == pytest.approx(1.0)       # rounds paired: 0.5, 1, 2
    assert size_ratio(1090, 1000) == pytest.approx(1.09)                      # larger: > 1
    q, q_min = low_high_ratio(HAND_SHARED["samples"], 64, 96)
    assert (q, q_min) == (pytest.approx(5.5 / 13), pytest.approx(0.4))        # low res faster: < 1


def test_ratio_lines_summary_and_profile_on_hand_numbers():
    """What the bench prints and writes (ratios JSON, summary row, profile, CSV row) for the hand
    timings above: 1.25x / 0.8x latency, 1.090x size, low/high 0.423 (by min 0.400), p90 25.2."""
    from bench.report import entry_json, ratio_lines, row, summary_table
    shared, singles = _hand_run()
    lines, ratios = ratio_lines(shared, singles)
    assert ratios["shared_vs_folded"] == {"96": pytest.approx(1.25), "64": pytest.approx(0.8)}
    assert ratios["shared_vs_folded_min"] == {"96": pytest.approx(10 / 4), "64": pytest.approx(4 / 2)}
    assert ratios["shipped_vs_single"] == pytest.approx(1.09)
    assert ratios["low_vs_high"] == {"low": 64, "high": 96, "ratio": pytest.approx(5.5 / 13),
                                     "ratio_min": pytest.approx(0.4)}
    text = "\n".join(lines)
    assert "shared/folded latency @96: 1.250 (13.000 vs 4.000 ms p50" in text
    assert "shared/folded latency @64: 0.800 (5.500 vs 4.000 ms p50" in text
    assert "ships 1090 bytes = 1.090 x one single-resolution export (1000 bytes)" in text
    assert "latency(64)/latency(96): 0.423 (by min 0.400)" in text
    table = summary_table([shared], {shared.path: singles})
    assert re.search(r"^rs.pte.rsfold +executorch shared +fp32 +1\.090x +1\.250x +0\.800x ", table[1]), table
    prof = entry_json(shared)["profile"]
    assert (prof["96"]["p50_ms"], prof["96"]["p90_ms"]) == (13.0, pytest.approx(25.2))
    assert (prof["64"]["p50_ms"], prof["64"]["p90_ms"]) == (5.5, pytest.approx(15.8))
    assert (row(shared, 96, "host")["p90_ms"], row(shared, 64, "host")["p90_ms"]) == (25.2, 15.8)


def test_profile_p90_drives_the_budget_by_hand(tmp_path):
    """The bench's own writer (bench.json) -> read_profile -> the policy's latency budget, on the hand
    timings: p90 @96 = 25.2 ms, p50 @96 = 13, p90 @64 = 15.8. A 20 ms budget lies between the two
    p90s (and above 96's median): 64; 30 ms: 96; 10 ms (below both): the lowest, 64."""
    from bench.report import entry_json, row, write_outputs
    shared, singles = _hand_run()
    items = [shared, *singles.values()]
    profile = {"format": PROFILE_FORMAT, "version": 1, "device": {"where": "host"},
               "artifacts": [entry_json(it) for it in items], "ratios": []}
    rows = [row(it, r, "host") for it in items for r in it.resolutions]
    write_outputs(tmp_path, rows, profile)
    prof = read_profile(tmp_path / "bench.json", backend="executorch")
    assert prof[96]["p90_ms"] == pytest.approx(25.2) and prof[64]["p90_ms"] == pytest.approx(15.8)
    sel = Selector(default_policy([96, 64]))
    assert sel.select(100, False, latency_budget_ms=30, profile=prof) == 96
    assert sel.select(100, False, latency_budget_ms=20, profile=prof) == 64
    assert sel.select(100, False, latency_budget_ms=30, profile=prof) == 96
    assert sel.select(100, False, latency_budget_ms=10, profile=prof) == 64
    assert sel.switch_count == 3


def test_profile_format_and_policy_rule():
    """A profile in the bench's JSON format (numbers fixed) gives the policy's documented choices."""
    prof = {"format": PROFILE_FORMAT, "version": 1, "device": {"where": "host"},
            "artifacts": [
                {"artifact": "rs.tflite", "backend": "tflite", "kind": "shared",
                 "profile": {"224": {"p50_ms": 9.0, "p90_ms": 10.0}, "160": {"p50_ms": 5.0, "p90_ms": 6.0},
                             "96": {"p50_ms": 2.0, "p90_ms": 2.5}}},
                {"artifact": "rs.pte", "backend": "executorch", "kind": "shared",
                 "profile": {"224": {"p50_ms": 19.0, "p90_ms": 20.0}, "160": {"p50_ms": 11.0, "p90_ms": 12.0},
                             "96": {"p50_ms": 4.0, "p90_ms": 5.0}}}],
            "ratios": []}
    pol = default_policy([224, 160, 96])
    p_tfl = read_profile(prof, backend="tflite")
    p_et = read_profile(prof, artifact="rs.pte")
    assert select_resolution(pol, 100, False, latency_budget_ms=7, profile=p_tfl) == 160
    assert select_resolution(pol, 100, False, latency_budget_ms=7, profile=p_et) == 96
    assert select_resolution(pol, 100, False, latency_budget_ms=50, profile=p_et) == 224
    assert select_resolution(pol, 10, False, latency_budget_ms=50, profile=p_et) == 96   # battery first
    with pytest.raises(ValueError, match="device profile"):
        read_profile({"format": "other"})


def test_bench_cli_errors(tmp_path, capsys):
    assert rd.main([str(tmp_path / "missing.pte"), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'missing.pte'} does not exist"]
    assert rd.main([str(tmp_path / "x.pte"), "--runs", "0"]) == 2
    assert "--runs" in capsys.readouterr().err


def test_percentile_and_summary():
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert percentile([10, 20, 30, 40, 50], 90) == pytest.approx(46.0)        # k = 3.6: 40 + 0.6 * 10
    assert percentile([3.0], 90) == 3.0
    s = summarize([1.0, 2.0, 3.0, 10.0])
    assert s["p50_ms"] == 2.5 and s["runs"] == 4 and s["max_ms"] == 10.0
    assert s["p90_ms"] == pytest.approx(7.9)                                  # k = 2.7: 3 + 0.7 * 7 (issue 22)
    assert (s["min_ms"], s["mean_ms"]) == (1.0, 4.0)
