"""The zero-training RS-Net: a model you have, with BN statistics re-estimated for every resolution.

    python -m training.recalibrate --init MODEL --data DIR --resolutions 224 192 160 128 96 --out RS.pt \
        [--images 1024] [--arch mobilenet_v2 --width-mult 1.0]

MODEL is an rsnet-edge checkpoint (an I-Net or an RS-Net; its architecture and arguments are read
from it) or a single-model state dict in torchvision's layout (``--arch``, ``--width-mult``). It is
loaded as ``training.train --init`` loads it (``training/finetune.py``: every BN set starts from the
single model's BN); then, for each resolution, that resolution's BN running statistics are reset and
re-estimated EXACTLY as the cumulative average (``momentum=None``) over N training views at that
resolution: each image's ONE random crop (``--crop-scale``) rendered at every resolution, as
``training.train`` renders it, the BN layers in training mode (batch statistics), no gradient, no
dropout. Each batch counts once (``--images`` a multiple of ``--batch-size``, as the defaults are,
makes the mean the exact mean over the N views). Nothing else moves: every weight, every BN affine
parameter and the classifier stay the file's. This is the per-resolution BN calibration of
US-Nets, MutualNet and Once-for-All, here without any training after it. Minutes on CPU.

The result is evaluated on DIR/val like ``training.train`` evaluates (its table is printed and its
metrics go into the checkpoint, so the manifests of its exports carry them) and written atomically
as a normal checkpoint: convert it, evaluate it or fine-tune it (``training.train --init RS.pt``)
like any other.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from rsnet_edge.checkpoint import FORMAT, IMAGENET_MEAN, IMAGENET_STD, save_checkpoint, versions
from rsnet_edge.flops import count_madds_all
from rsnet_edge.models import create_model, head_name, param_counts, switchable_bns
from training.config import arch_names, make_config
from training.data import collate_views, sample_seed, train_dataset, val_dataset, worker_init
from training.evaluate import evaluate, format_table
from training.finetune import init_model, read_init_file
from training.train import arch_args_of

DEFAULT_IMAGES = 1024
DEFAULT_BATCH = 64


def view_batches(n_dataset: int, images: int, batch_size: int, seed: int) -> list[list[tuple[int, int]]]:
    """``images`` training samples as ``(index, augmentation seed)`` batches: a permutation of the
    dataset drawn from ``seed`` (then ``seed + 1``, ... when more views than images are asked for,
    each pass with new crops), cut into batches of ``batch_size`` (the last one may be shorter)."""
    picked, epoch = [], 0
    while len(picked) < images:
        g = torch.Generator().manual_seed(seed + epoch)
        perm = torch.randperm(n_dataset, generator=g).tolist()
        picked += [(i, sample_seed(seed, epoch, i)) for i in perm[:images - len(picked)]]
        epoch += 1
    return [picked[k:k + batch_size] for k in range(0, len(picked), batch_size)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader, device="cpu", progress: bool = True) -> int:
    """Re-estimate every resolution's BN running statistics of the RS-Net ``model`` from the
    loader's multi-resolution views: reset, then the cumulative average (``momentum=None``) of the
    batch statistics; BN in training mode, everything else in eval mode (no dropout), no gradient.
    Each view of resolution r runs through r's BN set only, so one pass serves every resolution.
    Returns the number of images seen; the model is left in eval mode, its momenta restored."""
    bns = [bn for sbn in switchable_bns(model) for bn in sbn.bns]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.eval()
    for bn in bns:
        bn.train()
    seen = 0
    try:
        for views, _, _ in tqdm(loader, desc="recalibrate", disable=not progress, unit="batch"):
            if views is None:
                continue
            for v in views:
                model(v.to(device))
            seen += int(views[0].shape[0])
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.eval()
    if seen == 0:
        raise ValueError("no readable training image to recalibrate with")
    return seen


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.recalibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--init", required=True, metavar="MODEL",
                    help="an rsnet-edge checkpoint or a torchvision-layout single-model state dict")
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--resolutions", type=int, nargs="+", required=True)
    ap.add_argument("--out", required=True, help="the recalibrated RS-Net checkpoint (.pt)")
    ap.add_argument("--images", type=int, default=DEFAULT_IMAGES, metavar="N",
                    help=f"training views per resolution (default {DEFAULT_IMAGES}; more than the "
                         f"training set: further passes with new crops)")
    ap.add_argument("--arch", choices=arch_names(), help="a state dict's architecture (default "
                    "mobilenet_v2; a checkpoint's own)")
    ap.add_argument("--width-mult", type=float, help="a state dict's MobileNetV2 width (default 1.0)")
    ap.add_argument("--dropout", type=float, help="recorded in arch_args (default torchvision's)")
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--crop-scale", type=float, help="RandomResizedCrop area MIN-1 of the views "
                    "(default 0.08, the paper's)")
    ap.add_argument("--seed", type=int, default=0, help="which images and crops")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, help="intra-op CPU threads")
    ap.add_argument("--device", help="cpu, cuda (default: cuda if available)")
    ap.add_argument("--force", action="store_true", help="replace an existing --out")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def _source(obj, a: argparse.Namespace) -> dict:
    """Architecture, its arguments and preprocessing of the --init file (a checkpoint's own, or the
    flags' for a state dict); a flag that contradicts a checkpoint is refused."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        args = dict(obj.get("arch_args") or {})
        given = {"arch": a.arch, "width_mult": a.width_mult}
        have = {"arch": obj.get("arch"), "width_mult": args.get("width_mult")}
        for k, v in given.items():
            if v is not None and v != have[k]:
                raise ValueError(f"--init {a.init} holds a {have['arch']} RS-Net"
                                 + (f" of width {have['width_mult']}" if have["width_mult"] is not None else "")
                                 + f": --{k.replace('_', '-')} {v} contradicts it")
        return {"arch": obj["arch"], "width_mult": args.get("width_mult", 1.0),
                "dropout": args.get("dropout") if a.dropout is None else a.dropout,
                "class_names": list(obj["class_names"]), "mean": list(obj["mean"]), "std": list(obj["std"]),
                "crop_pct": float(obj["crop_pct"])}
    return {"arch": a.arch or "mobilenet_v2", "width_mult": 1.0 if a.width_mult is None else a.width_mult,
            "dropout": a.dropout, "class_names": None, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "crop_pct": 0.875}


def recalibrate(a: argparse.Namespace) -> dict:
    """Build, recalibrate, evaluate and write; returns the checkpoint written."""
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.images < 1 or a.batch_size < 1:
        raise ValueError(f"--images and --batch-size must be >= 1, got {a.images} and {a.batch_size}")
    obj = read_init_file(a.init)
    src = _source(obj, a)
    given = {k: v for k, v in (("dropout", src["dropout"]), ("crop_scale", a.crop_scale)) if v is not None}
    cfg = make_config(data=a.data, out=a.out, arch=src["arch"], width_mult=src["width_mult"],
                      resolutions=a.resolutions, batch_size=a.batch_size, seed=a.seed, workers=a.workers,
                      **given)  # the checks (and defaults) a training run of these arguments gets
    for sub in ("train", "val"):
        if not (Path(a.data) / sub).is_dir():
            raise FileNotFoundError(f"--data {a.data} has no {sub}/ folder (ImageFolder layout expected)")
    train_ds = train_dataset(a.data, cfg.resolutions, src["mean"], src["std"], scale=(cfg.crop_scale, 1.0))
    classes = train_ds.classes
    if src["class_names"] is not None and src["class_names"] != classes:
        raise ValueError(f"--init {a.init} predicts other classes ({len(src['class_names'])}) than "
                         f"{a.data}/train ({len(classes)}): recalibration moves no weight; fine-tune a "
                         f"new classifier with training.train --init")
    arch_args = arch_args_of(cfg, len(classes))
    model = create_model(cfg.arch, cfg.resolutions, **arch_args)
    if src["class_names"] is None:
        key = f"{head_name(model)}.weight"
        w = obj.get(key) if isinstance(obj, dict) else None
        if torch.is_tensor(w) and w.ndim == 2 and w.shape[0] != len(classes):
            raise ValueError(f"--init {a.init} has a classifier of {w.shape[0]} classes, {a.data}/train "
                             f"{len(classes)}: recalibration moves no weight; fine-tune a new classifier "
                             f"with training.train --init")
    notes = init_model(model, a.init, cfg.arch)
    print("\n".join(notes))
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    batches = view_batches(len(train_ds), a.images, a.batch_size, a.seed)
    loader = DataLoader(train_ds, batch_sampler=batches, num_workers=a.workers, collate_fn=collate_views,
                        worker_init_fn=worker_init)
    t0 = time.time()
    print(f"recalibrating the BN statistics of {cfg.resolutions} from {a.images} training views each "
          f"({len(batches)} batches; every weight stays the file's)", flush=True)
    seen = recalibrate_bn(model, loader, device, progress=not a.no_progress)
    val_ds = val_dataset(a.data, cfg.resolutions, src["mean"], src["std"], src["crop_pct"], classes)
    val = DataLoader(val_ds, batch_size=a.batch_size, shuffle=False, num_workers=a.workers,
                     collate_fn=collate_views, worker_init_fn=worker_init)
    res = evaluate(model, val, cfg.resolutions, device, progress=not a.no_progress, desc="validate")
    model.cpu()
    madds = {str(r): v for r, v in count_madds_all(model, cfg.resolutions).items()}
    ckpt = {"arch": cfg.arch, "arch_args": arch_args, "resolutions": list(cfg.resolutions),
            "class_names": list(classes), "mean": src["mean"], "std": src["std"], "crop_pct": src["crop_pct"],
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "alpha": torch.zeros(len(cfg.resolutions)), "metrics": res.metrics, "madds": madds,
            "params": param_counts(model),
            "train_args": {"tool": "training.recalibrate", "init": str(a.init), "images": a.images,
                           "seen": seen, "batch_size": a.batch_size, "crop_scale": cfg.crop_scale,
                           "seed": a.seed, "mred": "none", "resolutions": list(cfg.resolutions)},
            "versions": versions(), "train_time_s": round(time.time() - t0, 1)}
    save_checkpoint(ckpt, a.out)
    print(format_table(res.metrics, madds, cfg.resolutions,
                       title=f"\n{cfg.arch} recalibrated (no weight trained) on {a.data}, {res.count} val images"))
    print(f"wrote {a.out}")
    return ckpt


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from rsnet_edge.cli import Output, check_outputs
    check_outputs([Output(a.out, "--out", keep=True)], inputs=[a.data, a.init], force=a.force)
    recalibrate(a)
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run
    sys.exit(run(main))
