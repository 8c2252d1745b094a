"""training.compare end to end on tiny data: Table 2 / Table 1 / JSON / PNG, and an interrupted
(SIGKILLed) compare run that resumes without retraining the models it had finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, subprocess_env




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


def _fake_result(top1_by_res, images=10):
    """A per-model result as evaluate_everywhere writes it (top-5 = top-1 + 10)."""
    return {"metrics": {k: {"top1": v, "top5": v + 10} for k, v in top1_by_res.items()},
            "madds": {k: 1000 * int(k) for k in top1_by_res}, "params": {"total": 100},
            "correct": {k: [1] * 5 + [0] * 5 for k in top1_by_res}, "images": images,
            "train_time_s": 1.0, "alpha": None}


def test_multi_seed_report_means_and_paired_std():
    """build_report aggregates per seed: mean, sample std (n-1), and gains paired by seed, against
    numbers worked out here by hand."""
    import argparse
    import statistics
    from training.compare import build_report, model_specs
    from training.report import format_report
    a = argparse.Namespace(resolutions=[48, 32], data=".", arch="mobilenet_v2", epochs=1, seed=0)
    for name, _ in __import__("training.compare", fromlist=["PASS"]).PASS:
        setattr(a, name.replace("-", "_"), None)
    specs = model_specs([48, 32], ablation=False)
    table = {  # model -> seed -> top-1 at 48, 32
        "inet_48": {0: (60.0, 30.0), 1: (70.0, 40.0), 2: (80.0, 20.0)},
        "inet_32": {0: (50.0, 40.0), 1: (50.0, 50.0), 2: (50.0, 60.0)},
        "parallel": {0: (55.0, 45.0), 1: (65.0, 45.0), 2: (75.0, 45.0)},
        "rsnet": {0: (70.0, 50.0), 1: (70.0, 40.0), 2: (60.0, 60.0)},
    }
    results = {m: {sd: _fake_result({"48": v[0], "32": v[1]}) for sd, v in by.items()} for m, by in table.items()}
    rep = build_report(a, specs, results)
    assert rep["seeds"] == [0, 1, 2]
    assert rep["columns"]["I-Nets"]["48"]["top1"] == pytest.approx(70.0)          # inet_48 at 48
    assert rep["columns"]["I-Nets"]["32"]["top1"] == pytest.approx(50.0)          # inet_32 at 32
    assert rep["columns_std"]["I-Nets"]["48"]["top1"] == pytest.approx(10.0)      # stdev(60, 70, 80)
    assert rep["columns"]["I-48 (I-max)"]["32"]["top1"] == pytest.approx(30.0)
    assert rep["columns"]["RS-Net"]["32"]["top5"] == pytest.approx(60.0)
    # RS-Net gain at 32, per seed: 50-40, 40-50, 60-60 = 10, -10, 0 -> mean 0, std 10
    assert rep["top1_gain_over_inets"]["RS-Net"]["32"] == pytest.approx(0.0)
    assert rep["top1_gain_std"]["RS-Net"]["32"] == pytest.approx(statistics.stdev([10, -10, 0]))
    # paired, not the difference of the means with pooled stds: Parallel at 48 gains -5 every seed
    assert rep["top1_gain_over_inets"]["Parallel"]["48"] == pytest.approx(-5.0)
    assert rep["top1_gain_std"]["Parallel"]["48"] == pytest.approx(0.0)
    # I-max drop from 48 to 32 per seed: 30, 30, 60
    assert rep["imax_drop_at_lowest"]["mean"] == pytest.approx(40.0)
    assert rep["imax_drop_at_lowest"]["std"] == pytest.approx(statistics.stdev([30, 30, 60]))
    assert rep["per_seed"]["1"]["RS-Net"]["32"] == 40.0
    text = format_report(rep, "mobilenet_v2")
    assert "mean +- std over 3 seeds" in text and "70.0+-10.0" in text and "(+0.0+-10.0)" in text
    from training.report import format_markdown
    md = format_markdown(rep).splitlines()
    assert md[0].startswith("| top-1 % (mean ± std over 3 seeds") and md[0].endswith("| 48 | 32 | params |")
    assert "| RS-Net | 66.7 ± 5.8 (-3.3 ± 15.3) | 50.0 ± 10.0 (+0.0 ± 10.0) |" in "\n".join(md)
    assert md[-1] == "I-max drop from 48 to 32: 40.0 ± 17.3 points"


def test_compare_with_two_seeds_end_to_end(data, tmp_path):
    """Two seeds on tiny data, one step per model: every model trained per seed (seed in its
    checkpoint), and the report's mean/std match the per-seed result files."""
    import statistics
    import torch
    from training.compare import main
    out = tmp_path / "cmp2"
    rc = main(["--data", str(data), "--arch", "mobilenet_v2", "--width-mult", "0.35", "--epochs", "1",
               "--resolutions", "48", "32", "--batch-size", "8", "--lr", "0.01", "--max-steps-per-epoch", "1",
               "--workers", "0", "--no-progress", "--seeds", "2", "--seed", "5", "--out-dir", str(out)])
    assert rc == 0
    rep = json.loads((out / "compare.json").read_text())
    assert rep["seeds"] == [5, 6]
    for name in ("inet_48", "inet_32", "parallel", "rsnet"):
        for sd in (5, 6):
            ck = torch.load(out / "models" / f"{name}_s{sd}.pt", weights_only=True)
            assert ck["train_args"]["seed"] == sd
    res = {(n, sd): json.loads((out / "results" / f"{n}_s{sd}.json").read_text())
           for n in ("inet_48", "inet_32", "parallel", "rsnet") for sd in (5, 6)}
    for col, name_of in (("I-Nets", lambda k: f"inet_{k}"), ("RS-Net", lambda k: "rsnet"),
                         ("Parallel", lambda k: "parallel"), ("I-48 (I-max)", lambda k: "inet_48")):
        for k in ("48", "32"):
            xs = [res[(name_of(k), sd)]["metrics"][k]["top1"] for sd in (5, 6)]
            assert rep["columns"][col][k]["top1"] == pytest.approx(statistics.mean(xs))
            assert rep["columns_std"][col][k]["top1"] == pytest.approx(statistics.stdev(xs))
    for k in ("48", "32"):
        g = [res[("rsnet", sd)]["metrics"][k]["top1"] - res[(f"inet_{k}", sd)]["metrics"][k]["top1"] for sd in (5, 6)]
        assert rep["top1_gain_over_inets"]["RS-Net"][k] == pytest.approx(statistics.mean(g))
        assert rep["top1_gain_std"]["RS-Net"][k] == pytest.approx(statistics.stdev(g))
    assert "+-" in (out / "compare.txt").read_text()


def test_parallel_jobs_train_the_same_models_as_one_at_a_time(data, tmp_path):
    """--jobs 2 (spawned worker processes) gives, model for model, the same per-image results as a
    sequential run with the same thread count, and the same report; the unfinished jobs are the
    only ones trained."""
    from training.compare import main
    base = ["--data", str(data), "--arch", "mobilenet_v2", "--width-mult", "0.35", "--epochs", "1",
            "--resolutions", "48", "32", "--batch-size", "8", "--lr", "0.01", "--max-steps-per-epoch", "2",
            "--workers", "0", "--no-progress", "--threads", "1", "--ablation", "vanilla"]
    assert main(base + ["--out-dir", str(tmp_path / "seq")]) == 0
    assert main(base + ["--jobs", "2", "--out-dir", str(tmp_path / "par")]) == 0
    names = ("inet_48", "inet_32", "parallel", "rsnet", "vanilla")
    for n in names:
        seq = json.loads((tmp_path / "seq" / "results" / f"{n}.json").read_text())
        par = json.loads((tmp_path / "par" / "results" / f"{n}.json").read_text())
        assert par["correct"] == seq["correct"] and par["metrics"] == seq["metrics"], n
    rs, rp = (json.loads((tmp_path / d / "compare.json").read_text()) for d in ("seq", "par"))
    assert rp["columns"] == rs["columns"] and list(rp["columns"]) == [
        "I-Nets", "I-48 (I-max)", "Parallel", "RS-Net", "Vanilla MRED"]


def test_eval_every_validates_only_when_asked(data, tmp_path):
    """--eval-every 0: no validation until the last epoch, whose metrics the checkpoint carries."""
    import torch
    from training.config import build_parser
    from training.train import train
    out = tmp_path / "e.pt"
    train(build_parser().parse_args([
        "--data", str(data), "--arch", "mobilenet_v2", "--width-mult", "0.35", "--resolutions", "48", "32",
        "--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--max-steps-per-epoch", "1", "--workers", "0",
        "--no-progress", "--eval-every", "0", "--out", str(out)]))
    log = [json.loads(ln) for ln in (tmp_path / "e.pt.log.jsonl").read_text().splitlines()]
    assert [bool(r["metrics"]) for r in log] == [False, True]
    ck = torch.load(out, weights_only=True)
    assert ck["metrics"] == log[-1]["metrics"] and set(ck["metrics"]) >= {"48", "32"}


def test_skipping_validation_changes_no_weight(data, tmp_path):
    """--eval-every only decides when to validate: the trained weights are bit-identical."""
    import torch
    from training.config import build_parser
    from training.train import train
    ws = {}
    for k in ("1", "0"):
        out = tmp_path / f"e{k}.pt"
        train(build_parser().parse_args([
            "--data", str(data), "--arch", "mobilenet_v2", "--width-mult", "0.35", "--resolutions", "48", "32",
            "--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--max-steps-per-epoch", "2", "--workers", "1",
            "--dropout", "0.2", "--no-progress", "--eval-every", k, "--out", str(out)]))
        ws[k] = torch.load(out, weights_only=True)["state_dict"]
    assert ws["1"].keys() == ws["0"].keys()
    assert all(torch.equal(ws["1"][n], ws["0"][n]) for n in ws["1"])


# ------------------------------------------------------- --from: bring your own model (issue 18)
def test_compare_from_inet_makes_the_four_rows(data, tmp_path):
    """--from inet: the largest I-Net is the user's model; its recalibration and its fine-tune (init
    and teacher = that I-Net, the recipe's lr) are made and every row is evaluated at every size; a
    rerun trains nothing."""
    import torch
    from training.compare import main
    from training.config import FINETUNE_RECIPE, finetune_lr
    out = tmp_path / "byom"
    argv = ["--from", "inet", "--data", str(data), "--width-mult", "0.35", "--epochs", "1", "--resolutions",
            "48", "32", "--batch-size", "8", "--lr", "0.01", "--max-steps-per-epoch", "2", "--workers", "0",
            "--no-progress", "--threads", "1", "--ft-epochs", "1", "--recal-images", "16", "--out-dir", str(out)]
    assert main(argv) == 0
    rep = json.loads((out / "compare.json").read_text())
    assert list(rep["columns"]) == ["your model", "recalibrated", "fine-tuned RS-Net", "I-Nets"]
    res = {n: json.loads((out / "results" / f"{n}.json").read_text())
           for n in ("inet_48", "inet_32", "yours", "recal", "finetune")}
    for k in ("48", "32"):
        assert rep["columns"]["your model"][k] == res["inet_48"]["metrics"][k]     # the I-Net off its size too
        assert rep["columns"]["recalibrated"][k] == res["recal"]["metrics"][k]
        assert rep["columns"]["fine-tuned RS-Net"][k] == res["finetune"]["metrics"][k]
        assert rep["columns"]["I-Nets"][k] == res[f"inet_{k}"]["metrics"][k]
        g = res["finetune"]["metrics"][k]["top1"] - res[f"inet_{k}"]["metrics"][k]["top1"]
        assert rep["top1_gain_over_inets"]["fine-tuned RS-Net"][k] == pytest.approx(g)
        g = res["recal"]["metrics"][k]["top1"] - res["inet_48"]["metrics"][k]["top1"]
        assert rep["top1_gain_over_your_model"]["recalibrated"][k] == pytest.approx(g)
    inet = torch.load(out / "models" / "inet_48.pt", weights_only=True)
    ft = torch.load(out / "models" / "finetune.pt", weights_only=True)["train_args"]
    assert ft["init"] == ft["teacher"] == str(out / "models" / "inet_48.pt")
    assert ft["lr"] == pytest.approx(finetune_lr(8, 2)) and ft["epochs"] == 1     # 2 steps of batch 8
    assert ft["resolution_loss"] == FINETUNE_RECIPE["resolution_loss"] and ft["mred"] == FINETUNE_RECIPE["mred"]
    rc = torch.load(out / "models" / "recal.pt", weights_only=True)["state_dict"]
    assert torch.equal(rc["features.2.conv.0.0.weight"], inet["state_dict"]["features.2.conv.0.0.weight"])
    assert not torch.equal(rc["features.2.conv.0.1.bns.1.running_var"],
                           inet["state_dict"]["features.2.conv.0.1.bns.0.running_var"])
    md = (out / "compare.md").read_text()
    assert "| fine-tuned RS-Net |" in md and "| I-Nets |" in md
    assert "fine-tuned RS-Net - your model: 48:" in (out / "compare.txt").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.pt")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.pt")} == stamps


def test_compare_from_a_state_dict_without_inets(data, tmp_path):
    """--from FILE (torchvision layout) --no-inets: the file becomes OUT/models/source.pt (its
    logits at 48 unchanged), gains are over your model, nothing is trained from scratch."""
    import torch
    from torchvision import models as tvm
    from training.compare import main
    torch.manual_seed(0)
    single = tvm.mobilenet_v2(num_classes=4, width_mult=0.35).eval()
    src = tmp_path / "mine.pth"
    torch.save(single.state_dict(), src)
    out = tmp_path / "byom_sd"
    assert main(["--from", str(src), "--data", str(data), "--width-mult", "0.35", "--epochs", "1",
                 "--resolutions", "48", "32", "--batch-size", "8", "--max-steps-per-epoch", "1", "--workers", "0",
                 "--no-progress", "--threads", "1", "--ft-epochs", "1", "--recal-images", "8", "--no-inets",
                 "--teacher-weight", "0", "--out-dir", str(out)]) == 0
    rep = json.loads((out / "compare.json").read_text())
    assert list(rep["columns"]) == ["your model", "recalibrated", "fine-tuned RS-Net"]
    assert set(rep["gain_base"].values()) == {"your model"}
    assert not list((out / "models").glob("inet_*"))
    from rsnet_edge.checkpoint import load_model
    model, _ = load_model(out / "models" / "source.pt")
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model(x), single(x), atol=1e-5)
    ft = torch.load(out / "models" / "finetune.pt", weights_only=True)["train_args"]
    assert ft["teacher"] is None and ft["init"] == str(out / "models" / "source.pt")
