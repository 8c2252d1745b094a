"""Train an RS-Net: parallel multi-resolution training with MRED (paper 3, 4.1).

    python -m training.train --arch mobilenet_v2 --data DIR --resolutions 224 192 160 128 96 \
        --mred full --epochs 150 --batch-size 256 --out rs_mbv2.pt

One resolution (``--resolutions 224``) trains an individual model (I-Net). Defaults per architecture
follow paper 4.1: SGD momentum 0.9, cosine annealing to 0, lr 0.1 (ResNets) / 0.05 (MobileNetV2) at
batch 256 scaled linearly with the batch, weight decay 1e-4 / 4e-5, 120 / 150 epochs. Runs on CPU and
GPU (AMP + channels_last on GPU) and on many GPUs/processes under ``torchrun`` (PyTorch DDP).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from rsnet_edge.checkpoint import (IMAGENET_MEAN, IMAGENET_STD, CheckpointError, save_checkpoint,
                                   versions)
from rsnet_edge.flops import count_madds_all
from rsnet_edge.models import DEFAULT_RESOLUTIONS, create_model, normalize_resolutions, param_counts
from training.data import collate_views, train_dataset, val_dataset
from training.evaluate import evaluate, format_table
from training.mred import MODES, mred_loss

# paper 4.1: (lr at batch 256, weight decay, epochs)
ARCH_DEFAULTS = {"mobilenet_v2": (0.05, 4e-5, 150), "resnet18": (0.1, 1e-4, 120), "resnet50": (0.1, 1e-4, 120)}


class MultiResolutionNet(nn.Module):
    """What DDP wraps: the RS-Net plus the MRED scores alpha; one forward runs all S views so DDP
    sees one forward and one backward per step."""

    def __init__(self, model: nn.Module, num_resolutions: int, learn_alpha: bool):
        super().__init__()
        self.model = model
        self.alpha = nn.Parameter(torch.zeros(num_resolutions), requires_grad=learn_alpha)

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.model(v) for v in views]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="mobilenet_v2", choices=sorted(ARCH_DEFAULTS))
    ap.add_argument("--width-mult", type=float, default=1.0, help="MobileNetV2 width multiplier")
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--resolutions", type=int, nargs="+", default=list(DEFAULT_RESOLUTIONS))
    ap.add_argument("--mred", default="full", choices=MODES, help="full (Eq. 10), vanilla (Eq. 8), "
                    "none (Parallel), from_students (no ensemble teacher)")
    ap.add_argument("--multi-crop", action="store_true", help="independent crop per resolution (ablation)")
    ap.add_argument("--epochs", type=int, help="default per architecture (paper 4.1)")
    ap.add_argument("--batch-size", type=int, default=256, help="global batch size")
    ap.add_argument("--lr", type=float, help="default: paper lr x batch/256")
    ap.add_argument("--weight-decay", type=float, help="default per architecture")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    ap.add_argument("--no-amp", action="store_true", help="fp32 on GPU too")
    ap.add_argument("--out", required=True, help="checkpoint path (.pt)")
    ap.add_argument("--log", help="per-epoch JSON lines (default: <out>.log.jsonl)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def resolve_defaults(a: argparse.Namespace) -> argparse.Namespace:
    base_lr, wd, epochs = ARCH_DEFAULTS[a.arch]
    a.resolutions = list(normalize_resolutions(a.resolutions))
    a.epochs = a.epochs if a.epochs is not None else epochs
    a.lr = a.lr if a.lr is not None else base_lr * a.batch_size / 256
    a.weight_decay = a.weight_decay if a.weight_decay is not None else wd
    a.log = a.log or str(a.out) + ".log.jsonl"
    if a.epochs < 1 or a.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    return a


# ------------------------------------------------------------------------ distribution
def init_distributed(device_arg: str | None) -> tuple[int, int, torch.device]:
    """(rank, world_size, device) from torchrun's environment, or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device_arg is None and torch.cuda.is_available():
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        else:
            device = torch.device(device_arg or "cpu")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), world, device
    device = torch.device(device_arg or ("cuda" if torch.cuda.is_available() else "cpu"))
    return 0, 1, device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def json_safe(d: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool, list, type(None))) else str(v)) for k, v in d.items()}


# -------------------------------------------------------------------------------- train
def train(a: argparse.Namespace) -> dict:
    a = resolve_defaults(a)
    rank, world, device = init_distributed(a.device)
    is_main = rank == 0
    if a.batch_size % world:
        raise ValueError(f"--batch-size {a.batch_size} is not divisible by {world} processes")
    seed_everything(a.seed + rank)
    use_cuda = device.type == "cuda"
    amp_dtype = None
    if use_cuda and not a.no_amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    mean, std, crop_pct = list(IMAGENET_MEAN), list(IMAGENET_STD), 0.875

    train_ds = train_dataset(a.data, a.resolutions, mean, std, a.multi_crop)
    val_ds = val_dataset(a.data, a.resolutions, mean, std, crop_pct, train_ds.classes)
    sampler = DistributedSampler(train_ds, world, rank, shuffle=True, seed=a.seed) if world > 1 else None
    g = torch.Generator()
    g.manual_seed(a.seed + rank)
    train_loader = DataLoader(train_ds, batch_size=a.batch_size // world, shuffle=sampler is None,
                              sampler=sampler, num_workers=a.workers, collate_fn=collate_views,
                              pin_memory=use_cuda, drop_last=len(train_ds) >= a.batch_size,
                              worker_init_fn=_worker_init, generator=g,
                              persistent_workers=a.workers > 0)
    val_loader = DataLoader(val_ds, batch_size=max(1, a.batch_size // world), shuffle=False,
                            num_workers=a.workers, collate_fn=collate_views, pin_memory=use_cuda)

    arch_args = {"num_classes": len(train_ds.classes)}
    if a.arch == "mobilenet_v2":
        arch_args["width_mult"] = a.width_mult
    model = create_model(a.arch, a.resolutions, **arch_args)
    S = len(a.resolutions)
    net = MultiResolutionNet(model, S, learn_alpha=a.mred != "none" and S > 1).to(device)
    if use_cuda:
        net = net.to(memory_format=torch.channels_last)
    ddp = DDP(net, device_ids=[device.index] if use_cuda else None) if world > 1 else net

    decay = [p for n, p in net.named_parameters() if n != "alpha"]
    groups = [{"params": decay, "weight_decay": a.weight_decay}]
    if net.alpha.requires_grad:
        groups.append({"params": [net.alpha], "weight_decay": 0.0})  # alpha gets no weight decay
    opt = torch.optim.SGD(groups, lr=a.lr, momentum=a.momentum, nesterov=False)
    steps_per_epoch = len(train_loader)
    if a.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, a.max_steps_per_epoch)
    total_steps = max(1, a.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))

    counts = param_counts(model)
    if is_main:
        print(f"{a.arch} RS-Net, resolutions {a.resolutions}, {len(train_ds.classes)} classes, "
              f"{len(train_ds)} train / {len(val_ds)} val images, {world} process(es) on {device}, "
              f"mred={a.mred}, {'multi' if a.multi_crop else 'single'}-crop")
        print(f"params: {counts['total']:,} = single model {counts['single']:,} + (S-1) x "
              f"{counts['bn_per_resolution']:,} BN affine parameters")
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.log).write_text("")

    t_start = time.time()
    history = []
    step = 0
    for epoch in range(a.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        ddp.train()
        skipped = 0
        sums = {"total": 0.0, "cls": 0.0, "ens": 0.0, "dis": 0.0}
        n_batches = 0
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{a.epochs}", disable=not is_main or a.no_progress)
        for i, (views, target, bad) in enumerate(train_loader):
            if i >= steps_per_epoch:
                break
            skipped += bad
            if views is None:
                bar.update(1)
                continue
            views = [v.to(device, non_blocking=True) for v in views]
            if use_cuda:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            target = target.to(device, non_blocking=True)
            ctx = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext()
            with ctx:
                logits = ddp(views)
            losses = mred_loss(logits, target, net.alpha, a.mred)
            opt.zero_grad(set_to_none=True)
            scaler.scale(losses["total"]).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            n_batches += 1
            for k in sums:
                sums[k] += float(losses[k].detach())
            bar.set_postfix(loss=f"{sums['total'] / n_batches:.3f}", lr=f"{sched.get_last_lr()[0]:.4f}")
            bar.update(1)
        bar.close()
        if world > 1:
            t = torch.tensor([skipped, n_batches] + list(sums.values()), dtype=torch.float64, device=device)
            dist.all_reduce(t)
            skipped, n_batches = int(t[0]), int(t[1])
            sums = dict(zip(sums, t[2:].tolist()))
        if is_main:
            res = evaluate(model, val_loader, a.resolutions, device,
                           alpha=net.alpha.detach() if S > 1 else None,
                           progress=not a.no_progress, desc="validate")
            rec = {"epoch": epoch + 1, "step": step, "time_s": round(time.time() - t_start, 1),
                   "lr": sched.get_last_lr()[0],
                   "loss": {k: v / max(1, n_batches) for k, v in sums.items()},
                   "alpha": torch.softmax(net.alpha.detach().float(), 0).tolist(),
                   "metrics": res.metrics, "skipped_train": skipped, "skipped_val": res.skipped}
            history.append(rec)
            with open(a.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            accs = "  ".join(f"{k}:{v['top1']:.1f}" for k, v in res.metrics.items())
            print(f"epoch {epoch + 1}: loss {rec['loss']['total']:.3f}  top-1 {accs}"
                  + (f"  (skipped {skipped} unreadable train image(s))" if skipped else ""))
        if world > 1:
            dist.barrier()

    ckpt = None
    if is_main:
        madds = {str(r): v for r, v in count_madds_all(model, a.resolutions).items()}
        alpha_w = torch.softmax(net.alpha.detach().float().cpu(), 0)
        if S > 1 and a.mred != "none":
            print("learned alpha (softmax): " + ", ".join(f"{r}:{w:.3f}" for r, w in zip(a.resolutions, alpha_w.tolist())))
        ckpt = {
            "arch": a.arch, "arch_args": arch_args, "resolutions": a.resolutions,
            "class_names": list(train_ds.classes), "mean": mean, "std": std, "crop_pct": crop_pct,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "alpha": net.alpha.detach().float().cpu(),
            "metrics": history[-1]["metrics"], "madds": madds, "params": counts,
            "train_args": json_safe(vars(a)), "versions": versions(),
            "train_time_s": round(time.time() - t_start, 1),
        }
        save_checkpoint(ckpt, a.out)
        print(format_table(ckpt["metrics"], madds, a.resolutions, title=f"\n{a.arch} RS-Net on {a.data}"))
        print(f"wrote {a.out}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return ckpt


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        train(a)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
