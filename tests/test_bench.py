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
                     r"later loads [\d.]+ ms\); a single export: [\d.]+ ms", text)
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
    rc, text, out = bench_run
    assert rc == 0, text[-2000:]
    profile = read_profile(out / "bench.json", backend="executorch")
    assert set(profile) == {96, 64} and all("p90_ms" in v for v in profile.values())
    pol = policy_for(json.loads((A.cache_dir() / "tiny.pte.rsfold.manifest.json").read_text())["policy"], [96, 64])
    lo, hi = profile[64]["p90_ms"], profile[96]["p90_ms"]
    sel = Selector(pol)
    assert sel.select(100, False, latency_budget_ms=max(lo, hi) + 1, profile=profile) == 96
    # a budget between the two (or below both) must fall back to the faster entry
    budget = lo if lo < hi else min(lo, hi) / 2      # (timing noise can make 64's p90 the larger)
    assert sel.select(100, False, latency_budget_ms=budget, profile=profile) == 64
    assert sel.switch_count == 1


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
    assert percentile([3.0], 90) == 3.0
    s = summarize([1.0, 2.0, 3.0, 10.0])
    assert s["p50_ms"] == 2.5 and s["runs"] == 4 and s["max_ms"] == 10.0
