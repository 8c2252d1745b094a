"""training.compare end to end on tiny data: Table 2 / Table 1 / JSON / PNG, and an interrupted
(SIGKILLed) compare run that resumes without retraining the models it had finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, subprocess_env




@pytest.fixture(scope="module")
def data(tiny_data):
    return tiny_data


def test_interrupted_compare_resumes_without_retraining(data, tmp_path):
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "training.compare", "--data", str(data), "--arch", "mobilenet_v2",
           "--width-mult", "0.35", "--epochs", "1", "--resolutions", "48", "32", "--batch-size", "8",
           "--lr", "0.01", "--max-steps-per-epoch", "2", "--workers", "0", "--no-progress",
           "--out-dir", str(out)]
    first = out / "results" / "inet_48.json"
    p = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None and not first.exists():
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL, "compare finished before it could be interrupted"
    assert first.exists() and not (out / "compare.json").exists()
    stamps = {f: f.stat().st_mtime_ns for f in [first, out / "models" / "inet_48.pt"]}

    r = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[1/4] I-48 (inet_48, resolutions [48]): finished earlier, skipped" in r.stdout
    assert "[1/4] I-48 (inet_48, resolutions [48]): training" not in r.stdout
    assert all(f.stat().st_mtime_ns == t for f, t in stamps.items())  # nothing retrained or rewritten
    for name in ("inet_32", "parallel", "rsnet"):
        assert (out / "results" / f"{name}.json").exists()

    # the report: Table 2 columns, gains, total params, Table 1 matrices, the figure
    rep = json.loads((out / "compare.json").read_text())
    assert list(rep["columns"]) == ["I-Nets", "I-48 (I-max)", "Parallel", "RS-Net"]
    inet48 = json.loads(first.read_text())
    inet32 = json.loads((out / "results" / "inet_32.json").read_text())
    assert rep["columns"]["I-Nets"]["48"] == inet48["metrics"]["48"]
    assert rep["columns"]["I-Nets"]["32"] == inet32["metrics"]["32"]
    assert rep["columns"]["I-48 (I-max)"]["32"] == inet48["metrics"]["32"]  # I-max tested off its size
    assert rep["total_params"]["I-Nets"] == inet48["params"]["total"] + inet32["params"]["total"]
    assert rep["total_params"]["RS-Net"] > rep["total_params"]["I-48 (I-max)"]  # + one BN set
    g = rep["top1_gain_over_inets"]["RS-Net"]["32"]
    assert g == pytest.approx(rep["columns"]["RS-Net"]["32"]["top1"] - rep["columns"]["I-Nets"]["32"]["top1"])
    assert set(rep["matrices"]) == {"I-Nets", "Parallel", "RS-Net"}
    assert set(rep["matrices"]["RS-Net"]["48"]) == {"32"}
    text = (out / "compare.txt").read_text()
    assert "Total params" in text and "Table 1, I-Nets" in text and "48 x 48" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
