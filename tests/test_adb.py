"""bench.run_device --adb against a FAKE adb (tests/fakes/fake_adb.py): every error path and two
successful runs parsing recorded runner output. No phone is involved (untested on real hardware)."""

from __future__ import annotations

import csv
import json
import re
import shlex
import statistics
from pathlib import Path

import pytest

from fakes import fake_adb, recorded
from helpers import error_line

from bench import adb as badb
from bench.run_device import main as bench_main

FIXTURE = Path(__file__).resolve().parent / "data" / "manifest_fixture.json"
RES = [224, 192, 160, 128, 96]
SERIAL = "R5CT1234ABC"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A PATH holding only the fake adb, a scenario file and the call log."""
    bin_dir = tmp_path / "bin"
    fake_adb.install(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    scen, log = tmp_path / "scenario.json", tmp_path / "adb_calls.jsonl"
    monkeypatch.setenv("FAKE_ADB_SCENARIO", str(scen))
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))

    class Env:
        path = tmp_path

        def scenario(self, **kw):
            base = {"devices": [[SERIAL, "device"]],
                    "props": {"ro.product.model": "Pixel 8", "ro.soc.model": "Tensor G3",
                              "ro.board.platform": "zuma", "ro.product.manufacturer": "Google"},
                    "battery": recorded.BATTERY, "thermal": recorded.THERMAL, "runner": {}}
            base.update(kw)
            scen.write_text(json.dumps(base))

        def calls(self):
            return [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []

    return Env()


def artifact(tmp_path: Path, suffix: str = ".pte", name: str = "rs_mbv2") -> Path:
    """A stand-in artifact (bytes do not matter to the adb path) with a real manifest beside it."""
    a = tmp_path / f"{name}{suffix}"
    a.write_bytes(b"\x00fake artifact bytes\x00" * 64)
    d = json.loads(FIXTURE.read_text())
    d["backend"] = {".pte": "executorch", ".tflite": "tflite"}[suffix]
    d["artifact"] = {"file": a.name}
    a.with_name(a.name + ".manifest.json").write_text(json.dumps(d))
    return a


def runner(tmp_path: Path, name: str = "executor_runner") -> Path:
    r = tmp_path / name
    r.write_bytes(b"\x7fELF fake runner")
    return r


def run(args, capsys):
    rc = bench_main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


one_error = error_line


# ------------------------------------------------------------------------------ errors
def test_no_adb_on_path(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    rc, _, err = run([str(artifact(tmp_path)), "--adb", "--runner", str(runner(tmp_path)),
                      "--out-dir", str(tmp_path / "o")], capsys)
    assert rc == 2 and "adb not found on PATH" in one_error(err)


@pytest.mark.parametrize("devices,serial,match", [
    ([], None, "no Android device connected"),
    ([[SERIAL, "unauthorized"]], None, "is unauthorized"),
    ([[SERIAL, "offline"]], None, "is offline"),
    ([[SERIAL, "device"], ["emulator-5554", "device"]], None, "several devices connected .*--serial"),
    ([[SERIAL, "device"]], "OTHER123", "OTHER123 is not connected"),
    ([[SERIAL, "device"], ["emulator-5554", "unauthorized"]], "emulator-5554", "unauthorized"),
])
def test_device_errors(env, devices, serial, match, capsys):
    env.scenario(devices=devices)
    args = [str(artifact(env.path)), "--adb", "--runner", str(runner(env.path)),
            "--out-dir", str(env.path / "o")]
    if serial:
        args += ["--serial", serial]
    rc, _, err = run(args, capsys)
    assert rc == 2 and re.search(match, one_error(err))
    assert env.calls() == [["devices"]]                     # nothing pushed or run


def test_adb_daemon_failure(env, capsys):
    env.scenario(devices_rc=1, devices_stderr="* daemon not running; cannot connect")
    rc, _, err = run([str(artifact(env.path)), "--adb", "--runner", str(runner(env.path))], capsys)
    assert rc == 2 and "adb devices failed" in one_error(err) and "cannot connect" in err


def test_missing_runner(env, capsys):
    env.scenario()
    rc, _, err = run([str(artifact(env.path)), "--adb", "--runner", str(runner(env.path)),
                      "--push", str(env.path / "libnope.so")], capsys)
    assert rc == 2 and "--push" in one_error(err)
    rc, _, err = run([str(artifact(env.path)), "--adb", "--runner", str(env.path / "nope")], capsys)
    assert rc == 2 and "does not exist" in one_error(err)
    rc, _, err = run([str(artifact(env.path)), "--adb"], capsys)
    assert rc == 2 and "--adb needs --runner" in one_error(err)
    rc, _, err = run([str(artifact(env.path)), "--runner", "x"], capsys)
    assert rc == 2 and "only apply with --adb" in one_error(err)
    assert env.calls() == []


def test_mixed_artifact_kinds_refused(env, capsys):
    env.scenario()
    rc, _, err = run([str(artifact(env.path, ".pte")), str(artifact(env.path, ".tflite")), "--adb",
                      "--runner", str(runner(env.path))], capsys)
    assert rc == 2 and "one --runner serves one artifact kind" in one_error(err)


def test_runner_failure_shows_its_stderr(env, capsys):
    env.scenario(runner={"*": {"stdout": "I 00:00 executorch: Running method forward_224\n",
                               "stderr": "E 00:00:00.1 executorch:method.cpp:99] Missing operator: "
                                         "aten::foo.out\n", "rc": 1}})
    rc, _, err = run([str(artifact(env.path)), "--adb", "--runner", str(runner(env.path)),
                      "--out-dir", str(env.path / "o")], capsys)
    line = one_error(err)
    assert rc == 2 and "runner failed on rs_mbv2.pte:forward_224 (exit 1)" in line
    assert "Missing operator: aten::foo.out" in line


def test_runner_output_without_timings(env, capsys):
    env.scenario(runner={"*": {"stdout": "hello\n", "rc": 0}})
    rc, _, err = run([str(artifact(env.path)), "--adb", "--runner", str(runner(env.path))], capsys)
    assert rc == 2 and "no timings in executor_runner output" in one_error(err)


def test_push_failure(env, capsys):
    env.scenario(push_rc=1)
    rc, _, err = run([str(artifact(env.path)), "--adb", "--runner", str(runner(env.path))], capsys)
    assert rc == 2 and "adb push" in one_error(err) and "No space left" in err


# ----------------------------------------------------------------------------- success
def test_executor_runner_success(env, capsys):
    lib = env.path / "libQnnHtp.so"
    lib.write_bytes(b"fake delegate library")
    iters = {r: [5.0 + 50.0 * (r / 224) ** 2] + [1.0 + 10.0 * (r / 224) ** 2 + 0.01 * k for k in range(12)]
             for r in RES}
    env.scenario(runner={f"forward_{r}": {"stdout": recorded.executor_runner(f"forward_{r}", iters[r])}
                         for r in RES})
    out_dir = env.path / "out"
    art = artifact(env.path)
    rc, out, err = run([str(art), "--adb", "--runner", str(runner(env.path)), "--runs", "10",
                        "--warmup", "3", "--out-dir", str(out_dir), "--no-progress", "--backend", "qnn",
                        "--push", str(lib)], capsys)
    assert rc == 0, err
    calls = env.calls()
    assert calls[0] == ["devices"]
    assert all(c[:2] == ["-s", SERIAL] for c in calls[1:])        # the chosen device, every call
    pushes = [c[2:] for c in calls if c[2:3] == ["push"]]
    assert ["push", str(env.path / "executor_runner"), "/data/local/tmp/rsnet_edge/executor_runner"] in pushes
    assert ["push", str(art), "/data/local/tmp/rsnet_edge/rs_mbv2.pte"] in pushes
    assert ["push", str(lib), "/data/local/tmp/rsnet_edge/libQnnHtp.so"] in pushes
    runs = [shlex.split(c[3]) for c in calls[1:] if c[2] == "shell" and "--method_name=" in c[3]]
    assert len(runs) == 5
    for r, cmd in zip(RES, runs):
        assert "/data/local/tmp/rsnet_edge/executor_runner" in cmd
        assert "--model_path=/data/local/tmp/rsnet_edge/rs_mbv2.pte" in cmd
        assert f"--method_name=forward_{r}" in cmd and "--num_executions=13" in cmd
        assert "LD_LIBRARY_PATH=/data/local/tmp/rsnet_edge" in cmd
    shells = [c[3] for c in calls[1:] if c[2] == "shell"]
    assert "getprop ro.product.model" in shells and "dumpsys battery" in shells
    assert shells.count("dumpsys thermalservice") == 5                 # state beside every row

    rows = list(csv.DictReader(open(out_dir / "bench.csv")))
    assert [int(r["resolution"]) for r in rows] == RES
    for row in rows:
        r = int(row["resolution"])
        timed = iters[r][3:]
        assert float(row["first_ms"]) == pytest.approx(iters[r][0])
        assert float(row["p50_ms"]) == pytest.approx(statistics.median(timed))
        assert float(row["load_ms"]) == pytest.approx(12.5)
        assert row["device_model"] == "Pixel 8" and row["soc"] == "Tensor G3"
        assert row["battery_pct"] == "73" and row["battery_temp_c"] == "31.2" and row["thermal"] == "moderate"
        assert row["where"] == f"adb:{SERIAL}"
    prof = json.loads((out_dir / "bench.json").read_text())
    assert prof["device"]["device_model"] == "Pixel 8" and prof["device"]["runner"] == "executor_runner"
    assert prof["device"]["backend"] == "qnn"
    p = prof["artifacts"][0]["profile"]
    assert set(p) == {str(r) for r in RES} and p["96"]["p90_ms"] >= p["96"]["p50_ms"]
    assert (out_dir / "bench.png").exists()
    assert "latency(96)/latency(224)" in out


def test_old_executor_runner_total_only(env, capsys):
    env.scenario(runner={"*": {"stdout": recorded.executor_runner_old("forward_x", 20, 100.0)}})
    rc, out, err = run([str(artifact(env.path)), "--adb", "--runner", str(runner(env.path)),
                        "--runs", "15", "--warmup", "5", "--out-dir", str(env.path / "o")], capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(open(env.path / "o" / "bench.csv")))
    assert float(rows[0]["p50_ms"]) == pytest.approx(5.0)


def test_benchmark_model_success(env, capsys):
    env.scenario(runner={f"forward_{r}": {"stdout": recorded.benchmark_model(
        f"forward_{r}", init_us=40_000, first_us=9_000 * (r / 224) ** 2 + 500,
        median_us=4_000 * (r / 224) ** 2 + 100, p95_us=4_600 * (r / 224) ** 2 + 120,
        avg_us=4_100 * (r / 224) ** 2 + 105, runs=30)} for r in RES})
    art = artifact(env.path, ".tflite")
    bm = runner(env.path, "benchmark_model")
    out_dir = env.path / "o"
    rc, out, err = run([str(art), "--adb", "--serial", SERIAL, "--runner", str(bm), "--backend", "gpu",
                        "--runs", "30", "--warmup", "2", "--runner-arg=--num_threads=4",
                        "--out-dir", str(out_dir)], capsys)
    assert rc == 0, err
    runs = [shlex.split(c[3]) for c in env.calls()[1:]
            if c[2] == "shell" and "--signature_to_run_for=" in c[3]]
    assert len(runs) == 5
    cmd = runs[0]
    for flag in ("--graph=/data/local/tmp/rsnet_edge/rs_mbv2.tflite", "--signature_to_run_for=forward_224",
                 "--num_runs=30", "--warmup_runs=2", "--use_gpu=true", "--num_threads=4"):
        assert flag in cmd
    rows = {int(r["resolution"]): r for r in csv.DictReader(open(out_dir / "bench.csv"))}
    assert float(rows[224]["p50_ms"]) == pytest.approx(4.1, abs=1e-3)       # median=4100 us
    assert float(rows[224]["p90_ms"]) == pytest.approx(4.72, abs=1e-3)       # runner's p95
    assert float(rows[224]["load_ms"]) == pytest.approx(40.0)
    assert float(rows[224]["peak_rss_mb"]) == pytest.approx(14.25)
    prof = json.loads((out_dir / "bench.json").read_text())
    assert prof["artifacts"][0]["delegate"] == "gpu"
    # the phone's profile drives the policy's latency budget
    from rsnet_edge.profile import read_profile as profile_for
    from rsnet_edge.policy import default_policy, select_resolution
    profile = profile_for(out_dir / "bench.json")
    pol = default_policy(RES)
    assert select_resolution(pol, 100, False, latency_budget_ms=1.0, profile=profile) == 96
    assert select_resolution(pol, 100, False, latency_budget_ms=100.0, profile=profile) == 224


def test_parsers():
    st = badb.parse_battery(recorded.BATTERY)
    assert st == {"battery_pct": 73, "battery_temp_c": 31.2, "charging": True}
    assert badb.parse_thermal(recorded.THERMAL) == "moderate"
    assert badb.parse_thermal("nothing") is None
    with pytest.raises(badb.AdbError, match="benchmark_model"):
        badb.parse_benchmark_model("garbage")


def test_compact_artifact_pushes_the_unpacked_program_fake_adb(env, capsys):
    """A ``.pte.rsfold`` on the phone path: the runner gets the folded program the app's
    FoldUnpacker would write (unpacked here, sha256-checked), pushed as ``rs_mbv2.pte``."""
    import hashlib

    import numpy as np

    from rsnet_edge import rsfold
    w = np.arange(24, dtype="<f4") - 11.5
    s = np.array([2.0, -0.5], dtype="<f4")
    program = b"\0ET12" + b"x" * 59 + rsfold.fold(w, s, 12).tobytes() + b"tail"
    art = env.path / "rs_mbv2.pte.rsfold"
    art.write_bytes(rsfold.pack(program, [rsfold.Hole(64, w, s, 12)], "pte"))
    d = json.loads(FIXTURE.read_text())
    d["backend"] = "executorch"
    d["artifact"] = {"file": art.name, "sha256": hashlib.sha256(art.read_bytes()).hexdigest()}
    art.with_name(art.name + ".manifest.json").write_text(json.dumps(d))
    env.scenario(runner={f"forward_{r}": {"stdout": recorded.executor_runner(f"forward_{r}", [2.0] * 13)}
                         for r in RES})
    rc, out, err = run([str(art), "--adb", "--runner", str(runner(env.path)), "--runs", "10",
                        "--warmup", "3", "--out-dir", str(env.path / "out"), "--no-progress"], capsys)
    assert rc == 0, err
    pushed = [c[2:] for c in env.calls() if c[2:3] == ["push"] and c[4].endswith("rs_mbv2.pte")]
    assert len(pushed) == 1 and Path(pushed[0][1]).read_bytes() == program
    runs = [shlex.split(c[3]) for c in env.calls()[1:] if c[2] == "shell" and "--method_name=" in c[3]]
    assert runs and all("--model_path=/data/local/tmp/rsnet_edge/rs_mbv2.pte" in cmd for cmd in runs)
