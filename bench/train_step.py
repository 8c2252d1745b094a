"""Training-cost benchmark (not a test): is parallel multi-resolution training as cheap as it should be?

    python -m bench.train_step [--arch mobilenet_v2 --width-mult 0.35 --resolutions 128 112 96 80 64 \
        --batch-size 32 --steps 8 --device cpu --data DIR --json out.json]

1. Time per optimisation step of one S-resolution parallel + full MRED step (``training.mred``'s
   MultiResolutionNet, SGD) against the SUM of the S single-resolution steps an I-Net of each
   resolution would take on the same batch. Ratio ~1: parallel training costs what the S individual
   models cost together (same MAdds); MRED, BN switching and alpha add nothing that matters.
2. Images/s of the training data pipeline: ``exact`` (decode once, one crop, S resizes: the default),
   ``device`` (decode once, ONE resize to the largest resolution, the S-1 others downsampled as a
   batch on the device) against a ``naive`` pipeline that decodes and crops/resizes each resolution
   separately (what S independent I-Net pipelines do).

Timings are medians over repeats (other processes on the machine make single runs noisy); both
ratios are printed and optionally written as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from rsnet_edge import archs
from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from rsnet_edge.files import atomic_write_bytes
from rsnet_edge.models import create_model, normalize_resolutions
from rsnet_edge.preprocess import load_rgb, normalize
from training.data import (MaxResolutionView, TrainViews, draw_crop, expand_views, render_crop,
                           train_dataset)
from training.mred import MultiResolutionNet


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_time(arch, arch_args, resolutions, batch, steps, warmup, device, mode, amp_dtype) -> float:
    """Median seconds of one SGD step of an RS-Net over ``resolutions`` (one view each)."""
    torch.manual_seed(0)
    model = create_model(arch, resolutions, **arch_args)
    net = MultiResolutionNet(model, len(resolutions), learn_alpha=len(resolutions) > 1 and mode != "none",
                             mode=mode).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(batch, 3, r, r, generator=g).to(device) for r in resolutions]
    target = torch.randint(0, arch_args["num_classes"], (batch,), generator=g).to(device)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t = time.perf_counter()
        with torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else torch.autocast("cpu", enabled=False):
            loss = net(views, target)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def pipeline_rate(kind, paths, resolutions, repeats, device) -> float:
    """Median images/s of one pipeline over ``paths`` (in this process, no DataLoader)."""
    mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    exact = TrainViews(resolutions, mean, std)
    maxres = MaxResolutionView(resolutions)
    rates = []
    for rep in range(repeats):
        torch.manual_seed(rep)
        _sync(device)
        t = time.perf_counter()
        if kind == "naive":
            for p in paths:
                for r in resolutions:  # one decode, crop and resize per resolution
                    img = load_rgb(p)
                    normalize(render_crop(img, draw_crop(img), r), mean, std)
        elif kind == "exact":
            for p in paths:
                exact(load_rgb(p))
        elif kind == "device":
            x = torch.stack([maxres(load_rgb(p))[0] for p in paths])
            expand_views(x.to(device), resolutions, mean, std)
        else:
            raise ValueError(kind)
        _sync(device)
        rates.append(len(paths) / (time.perf_counter() - t))
    return statistics.median(rates)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.train_step", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="mobilenet_v2")
    ap.add_argument("--width-mult", type=float, default=0.35,
                    help="width multiplier, for architectures whose builder has one (default 0.35)")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[128, 112, 96, 80, 64])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternate parallel / single timings this often")
    ap.add_argument("--images", type=int, default=64, help="images per pipeline repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", help="ImageFolder root with train/ (default: a built-in dataset in a temp dir)")
    ap.add_argument("--image-size", type=int, default=256, help="side of the generated images")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="torch intra-op threads on CPU")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    rs = list(normalize_resolutions(a.resolutions))
    amp = None
    if device.type == "cuda" and not a.no_amp:
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    spec = archs.get(a.arch)
    arch_args = archs.arch_args(a.arch, a.num_classes, width_mult=a.width_mult if spec.width_arg else None)
    print(f"{a.arch} {arch_args}, resolutions {rs}, batch {a.batch_size}, {device}, "
          f"{torch.get_num_threads()} thread(s)" + (f", AMP {amp}" if amp else ""))

    # 1. step time, parallel+MRED vs the sum of single-resolution steps; rounds interleave the two
    par, singles = [], {r: [] for r in rs}
    for _ in range(a.rounds):
        par.append(step_time(a.arch, arch_args, rs, a.batch_size, a.steps, a.warmup, device, "full", amp))
        for r in rs:
            singles[r].append(step_time(a.arch, arch_args, [r], a.batch_size, a.steps, a.warmup, device, "none", amp))
    t_par = statistics.median(par)
    t_single = {r: statistics.median(v) for r, v in singles.items()}
    t_sum = sum(t_single.values())
    print("\nstep time (median s): " + ", ".join(f"I-{r} {t:.3f}" for r, t in t_single.items()))
    print(f"  sum of {len(rs)} single-resolution steps: {t_sum:.3f} s")
    print(f"  one {len(rs)}-resolution parallel + MRED step: {t_par:.3f} s")
    print(f"  ratio parallel / sum of singles: {t_par / t_sum:.3f}")

    # 2. data pipeline images/s
    with tempfile.TemporaryDirectory() as tmp:
        root = a.data
        if root is None:
            from training.synthetic import generate
            root = generate(Path(tmp) / "ds", num_classes=4, train_per_class=max(1, a.images // 4),
                            val_per_class=1, size=a.image_size, progress=False)
        paths = [p for p, _ in train_dataset(root, rs, IMAGENET_MEAN, IMAGENET_STD).samples][:a.images]
        rates = {}
        for _ in range(2):  # interleave so that load spikes hit every pipeline alike
            for kind in ("naive", "exact", "device"):
                rates.setdefault(kind, []).append(pipeline_rate(kind, paths, rs, a.repeats, device))
        rate = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\ndata pipeline, images/s (median, one process, {len(paths)} images): "
          + ", ".join(f"{k} {v:.0f}" for k, v in rate.items()))
    print(f"  ratio exact (decode once, S resizes) / naive (S decodes): {rate['exact'] / rate['naive']:.2f}")
    print(f"  ratio device (decode once, 1 resize + on-device downsampling) / naive: "
          f"{rate['device'] / rate['naive']:.2f}")
    out = {"arch": a.arch, "arch_args": arch_args, "resolutions": rs, "batch_size": a.batch_size,
           "device": str(device), "threads": torch.get_num_threads(), "amp": str(amp),
           "step_s": {"parallel_mred": t_par, "single": {str(r): t for r, t in t_single.items()},
                      "sum_single": t_sum, "ratio": t_par / t_sum},
           "pipeline_images_per_s": rate,
           "pipeline_ratio": {"exact_over_naive": rate["exact"] / rate["naive"],
                              "device_over_naive": rate["device"] / rate["naive"]}}
    if a.json:
        atomic_write_bytes(a.json, json.dumps(out, indent=1).encode())
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
