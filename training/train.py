"""Train an RS-Net: parallel multi-resolution training with MRED (paper 3, 4.1).

    python -m training.train --arch mobilenet_v2 --data DIR --resolutions 224 192 160 128 96 \
        --mred full --epochs 150 --batch-size 256 --out rs_mbv2.pt
    torchrun --nproc_per_node 2 -m training.train ...          # DDP, same global batch
    python -m training.train ... --out rs.pt --resume rs.pt       # exact resume (or --resume auto)

One resolution (``--resolutions 224``) trains an individual model (I-Net). Defaults per architecture
follow paper 4.1: SGD momentum 0.9, cosine annealing to 0, lr 0.1 (ResNets) / 0.05 (MobileNetV2) at
batch 256 scaled linearly with the batch, weight decay 1e-4 / 4e-5, 120 / 150 epochs. Not the
paper's, off by default, for short runs (README "Training on CPU in minutes"): ``--warmup-epochs``,
``--crop-scale`` (default 0.08 = the paper's), ``--resolution-loss mean``, ``--head-lr-scale``,
``--zero-init-residual``; ``--dropout`` (default torchvision's 0.2). ``--init PATH`` seeds the weights
from a torchvision single-model state dict or an rsnet-edge checkpoint (``training/finetune.py``).

What is deterministic (and why)
-------------------------------
* Data order: epoch ``e`` visits ``randperm(N)`` drawn from ``seed + e`` (DistributedSampler's rule),
  cut into global batches of ``--batch-size`` (the tail that does not fill one is dropped). Under
  ``torchrun`` rank ``k`` of ``W`` takes the k-th contiguous slice of every global batch, so the
  concatenation of the ranks' batches IS the one-process batch, in the same order.
* Augmentation: every sample's crop and flip come from a seed derived from ``(seed, epoch, index)``
  (``sample_seed``), not from a worker's RNG: the same image gets the same crop whatever the number
  of DataLoader workers or processes, and after a resume.
* Dropout (MobileNetV2's classifier): every rank holds the same torch RNG state and draws the mask of
  the whole global batch, keeping its own rows (``GlobalBatchDropout``): the masks are the
  one-process masks.
* BatchNorm: with several processes the batch statistics are computed over the global batch
  (``SyncedBatchNorm2d``: a differentiable all-reduce of per-channel sums on CPU/gloo;
  ``nn.SyncBatchNorm`` on CUDA), so W processes x B/W images normalise like 1 process x B.
  ``--local-bn`` turns this off (plain DDP: per-process statistics, faster, not equal).
* A batch whose share on some rank is all unreadable images is skipped by EVERY rank (a one-int
  all-reduce per step decides): a rank that skipped alone would leave the others waiting forever
  in DDP's gradient all-reduce.
* Losses are per-sample means and DDP averages gradients, so W ranks reproduce the one-process
  gradient up to float summation order: a 2-process gloo run matches a 1-process run within float
  tolerance (tests/test_distributed.py), not bit for bit.
* Resume: ``train_state`` holds model, optimizer, scheduler, GradScaler, alpha, epoch, batch-in-epoch,
  step, the partial epoch sums, the per-epoch history and the python/numpy/torch(/cuda) RNG states. A
  run killed with SIGKILL and resumed from its last checkpoint ends with bit-identical weights on CPU
  (same thread count; tests/test_resume.py). On GPU add ``--deterministic`` for that.

Speed path (GPU): AMP (bf16 where supported, else fp16 + GradScaler; ``--no-amp`` for fp32),
channels_last, pinned memory, and ``--views device`` (default on GPU): a worker decodes and crops each
image once and renders it at the LARGEST resolution only (uint8); the smaller views are made on the
device with bilinear antialiased ``interpolate`` of that view. ``--views exact`` (default on CPU)
resizes the crop to every resolution from the decoded image (paper 3.3) in the workers.
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
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Sampler, Subset
from torchvision.transforms import functional as TF
from tqdm import tqdm

from rsnet_edge.checkpoint import (IMAGENET_MEAN, IMAGENET_STD, CheckpointError, save_checkpoint,
                                   versions)
from rsnet_edge.flops import count_madds_all
from rsnet_edge.models import (DEFAULT_RESOLUTIONS, SwitchableBatchNorm2d, create_model, head_name,
                               normalize_resolutions, param_counts, zero_init_residual)
from training.data import SCALE, collate_views, crop_scale, draw_crop, render_crop, train_dataset, val_dataset
from training.evaluate import evaluate, format_table
from training.finetune import init_model
from training.mred import MODES, RESOLUTION_LOSSES, mred_loss

# paper 4.1: (lr at batch 256, weight decay, epochs)
ARCH_DEFAULTS = {"mobilenet_v2": (0.05, 4e-5, 150), "resnet18": (0.1, 1e-4, 120), "resnet50": (0.1, 1e-4, 120)}

# arguments that must agree between a checkpoint's run and the run resuming it
RESUME_KEYS = ("arch", "width_mult", "dropout", "crop_scale", "warmup_epochs", "resolution_loss",
               "head_lr_scale", "zero_init_residual",
               "resolutions", "mred", "multi_crop", "epochs", "batch_size", "lr",
               "weight_decay", "momentum", "max_steps_per_epoch", "seed", "views", "dtype")


# ------------------------------------------------------------------ distributed-aware modules
class _GlobalSum(torch.autograd.Function):
    """Sum of a tensor over all processes of ``group``; its gradient is the sum of the gradients
    (every process's loss depends on every process's contribution)."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the GLOBAL batch of all processes
    (``nn.SyncBatchNorm`` is CUDA-only). Same parameters and buffers as BatchNorm2d (same state dict
    keys); identical to it in eval mode or when ``sync_group`` is None."""

    sync_group = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sync_group is None:
            return super().forward(x)
        c = x.shape[1]
        shape = (1, c, 1, 1)
        local = torch.cat([x.sum(dim=(0, 2, 3)), x.new_full((1,), float(x.numel() // c))])
        total = _GlobalSum.apply(local, self.sync_group)
        n = total[c].detach()
        mean = total[:c] / n
        d = x - mean.view(shape)
        var = _GlobalSum.apply((d * d).sum(dim=(0, 2, 3)), self.sync_group) / n  # biased, as BN normalises
        y = d * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n / torch.clamp(n - 1, min=1))
                self.running_mean.mul_(1 - f).add_(mean.detach().to(self.running_mean.dtype), alpha=f)
                self.running_var.mul_(1 - f).add_(unbiased.to(self.running_var.dtype), alpha=f)
        return y


class GlobalBatchDropout(nn.Dropout):
    """Dropout whose mask is drawn for the whole global batch (``world`` x the local batch) from the
    torch RNG that all ranks share; each rank keeps its own contiguous rows. With one process it is
    ordinary inverted dropout."""

    rank = 0
    world = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:
            return torch.zeros_like(x)
        b = x.shape[0]
        u = torch.rand((b * self.world,) + tuple(x.shape[1:]), device=x.device)
        keep = (u[self.rank * b:(self.rank + 1) * b] >= self.p).to(x.dtype)
        return x * keep / (1.0 - self.p)


def prepare_model(model: nn.Module, rank: int, world: int, sync_group, use_cuda: bool) -> nn.Module:
    """Swap dropout for GlobalBatchDropout and, with a sync group, every BN of every resolution for
    a synchronised BN. Module names, parameters and buffers are unchanged (state dicts interchange)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                d = GlobalBatchDropout(child.p, child.inplace)
                d.rank, d.world = rank, world
                setattr(parent, name, d)
    if sync_group is None:
        return model
    for sbn in [m for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]:
        for k, bn in enumerate(sbn.bns):
            if use_cuda:
                new = nn.SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, process_group=sync_group)
            else:
                new = SyncedBatchNorm2d(bn.num_features, bn.eps, bn.momentum)
                new.sync_group = sync_group
            new.load_state_dict(bn.state_dict())
            sbn.bns[k] = new
    return model


class MultiResolutionNet(nn.Module):
    """What DDP wraps: the RS-Net plus the MRED scores alpha. One forward runs all S views and, given
    targets, returns the MRED loss terms, so DDP sees one forward and one backward per step."""

    def __init__(self, model: nn.Module, num_resolutions: int, learn_alpha: bool, mode: str = "full",
                 resolution_loss: str = "sum"):
        super().__init__()
        self.model = model
        self.mode = mode
        self.resolution_loss = resolution_loss
        self.alpha = nn.Parameter(torch.zeros(num_resolutions), requires_grad=learn_alpha)

    def forward(self, views: list[torch.Tensor], target: torch.Tensor | None = None):
        logits = [self.model(v) for v in views]
        if target is None:
            return logits
        return mred_loss(logits, target, self.alpha, self.mode if len(views) > 1 else "none",
                         self.resolution_loss)


# ------------------------------------------------------------------------------ sampling
def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one sample in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class GlobalBatchSampler(Sampler):
    """Yields this rank's share of each global batch as ``(index, sample_seed)`` pairs.

    Epoch ``e`` permutes the dataset with ``seed + e`` and cuts it into ``batches_per_epoch`` global
    batches of ``global_batch``; rank ``k`` gets the k-th contiguous slice of each. ``set_epoch(e,
    start)`` skips the first ``start`` batches (resume)."""

    def __init__(self, n: int, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 max_batches: int | None = None):
        self.n, self.global_batch, self.rank, self.world, self.seed = n, global_batch, rank, world, seed
        full = n // global_batch
        self.batches_per_epoch = full if full else 1  # a dataset smaller than one batch: one short batch
        if max_batches:
            self.batches_per_epoch = min(self.batches_per_epoch, max_batches)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def global_batch_indices(self, epoch: int, k: int) -> list[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        return perm[k * self.global_batch:(k + 1) * self.global_batch]

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        for k in range(self.start, self.batches_per_epoch):
            batch = perm[k * self.global_batch:(k + 1) * self.global_batch]
            mine = np.array_split(np.asarray(batch), self.world)[self.rank].tolist()
            yield [(i, sample_seed(self.seed, self.epoch, i)) for i in mine]


# --------------------------------------------------------------------------- device views
class MaxResolutionView:
    """Worker-side transform of ``--views device``: ONE crop and flip rendered at the largest
    resolution only, as uint8 [3, R, R] (4x less to copy than float); see :func:`expand_views`."""

    def __init__(self, resolutions, scale=SCALE):
        self.resolution = max(int(r) for r in resolutions)
        self.scale = tuple(scale)

    def __call__(self, img) -> list[torch.Tensor]:
        return [TF.pil_to_tensor(render_crop(img, draw_crop(img, self.scale), self.resolution))]


def expand_views(x: torch.Tensor, resolutions, mean, std) -> list[torch.Tensor]:
    """uint8 [N, 3, R, R] at the largest resolution -> S normalised float views (highest first),
    the smaller ones by bilinear antialiased downsampling on x's device."""
    m = torch.tensor(mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    x = (x.float().div_(255) - m) / s  # normalising commutes with (weights-sum-to-one) resizing
    return [x if r == x.shape[-1] else
            F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
            for r in resolutions]


# ------------------------------------------------------------------------------- options
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="mobilenet_v2", choices=sorted(ARCH_DEFAULTS))
    ap.add_argument("--width-mult", type=float, default=1.0, help="MobileNetV2 width multiplier")
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--resolutions", type=int, nargs="+", default=list(DEFAULT_RESOLUTIONS))
    ap.add_argument("--mred", default="full", choices=MODES, help="full (Eq. 10), vanilla (Eq. 8), "
                    "none (Parallel), from_students (no ensemble teacher)")
    ap.add_argument("--multi-crop", action="store_true", help="independent crop per resolution (ablation)")
    ap.add_argument("--resolution-loss", choices=RESOLUTION_LOSSES, default="sum",
                    help="sum: Eq. 2, the S per-resolution losses summed (paper); mean: divided by S "
                         "(the shared weights get about an individual model's gradient)")
    ap.add_argument("--crop-scale", type=float, default=SCALE[0], metavar="MIN",
                    help=f"RandomResizedCrop area range MIN-1 (default {SCALE[0]}, the paper's ImageNet "
                         f"recipe; larger keeps more of each object)")
    ap.add_argument("--warmup-epochs", type=float, default=0.0,
                    help="linear lr warmup over this many epochs before the cosine decay (paper: 0)")
    ap.add_argument("--dropout", type=float, help="classifier dropout (MobileNetV2 only; default "
                    "torchvision's 0.2; the paper's code uses none: --dropout 0)")
    ap.add_argument("--head-lr-scale", type=float, default=1.0, metavar="F",
                    help="the classifier's lr is F x --lr (default 1, the paper). Its input is 1280 "
                         "non-negative pooled features (norm ~17 at init): at small batches SGD on it "
                         "swings the logits of all images together; 0.1 lets short runs learn")
    ap.add_argument("--zero-init-residual", action="store_true",
                    help="start the last BN (every set) of each residual block at gamma 0, so each "
                         "block starts as the identity (torchvision's ResNet option, also for MobileNetV2)")
    ap.add_argument("--init", metavar="PATH", help="start from these weights: a torchvision-layout "
                    "single-model state dict (every BN set seeded from its BN) or an rsnet-edge "
                    "checkpoint (weights only; other resolutions mapped by BN interpolation); a "
                    "classifier of another size is re-initialised")
    ap.add_argument("--epochs", type=int, help="default per architecture (paper 4.1)")
    ap.add_argument("--batch-size", type=int, default=256, help="global batch size (all processes)")
    ap.add_argument("--lr", type=float, help="default: paper lr x batch/256")
    ap.add_argument("--weight-decay", type=float, help="default per architecture")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="intra-op CPU threads of each process (default: "
                    "torch's; 1 avoids OpenMP oversubscription on busy machines)")
    ap.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    ap.add_argument("--no-amp", action="store_true", help="fp32 on GPU too")
    ap.add_argument("--views", choices=("auto", "exact", "device"), default="auto",
                    help="exact: every view resized from the decoded crop in the workers (default on "
                         "CPU); device: crop rendered once at the largest resolution, smaller views "
                         "downsampled on the device (default on GPU)")
    ap.add_argument("--local-bn", action="store_true",
                    help="with several processes, per-process BN statistics (not synchronised)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="parameter dtype; float64 (CPU) is for checking exactness, e.g. DDP against "
                         "one process without float32 noise")
    ap.add_argument("--deterministic", action="store_true", help="deterministic algorithms (GPU)")
    ap.add_argument("--save-every", type=int, default=0, help="also checkpoint every K steps")
    ap.add_argument("--eval-every", type=int, default=1, metavar="K",
                    help="validate every K epochs and after the last one (0: after the last one only)")
    ap.add_argument("--resume", help="checkpoint with train_state to continue from, or 'auto' "
                    "(continue from --out if it holds an unfinished run)")
    ap.add_argument("--out", required=True, help="checkpoint path (.pt)")
    ap.add_argument("--force", action="store_true",
                    help="replace an existing --out checkpoint (refused otherwise, unless --resume)")
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
    if a.save_every < 0:
        raise ValueError("--save-every must be >= 0")
    if a.eval_every < 0:
        raise ValueError(f"--eval-every must be >= 0, got {a.eval_every}")
    crop_scale(a.crop_scale)
    if a.warmup_epochs < 0:
        raise ValueError(f"--warmup-epochs must be >= 0, got {a.warmup_epochs}")
    if a.dropout is None:
        a.dropout = 0.2 if a.arch == "mobilenet_v2" else 0.0  # torchvision's defaults
    if not a.head_lr_scale > 0:
        raise ValueError(f"--head-lr-scale must be > 0, got {a.head_lr_scale}")
    if not 0 <= a.dropout < 1:
        raise ValueError(f"--dropout must be in [0, 1), got {a.dropout}")
    if a.dropout and a.arch != "mobilenet_v2":
        raise ValueError(f"--dropout: torchvision's {a.arch} has no dropout layer (only mobilenet_v2 takes it)")
    return a


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """lr multiplier: linear warmup from 1/warmup_steps to 1 over ``warmup_steps``, then cosine
    annealing to 0 at ``total_steps`` (without warmup: the paper's plain cosine)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))


# ------------------------------------------------------------------------ distribution
def all_ranks_have_data(mine: bool, world: int, device: torch.device) -> bool:
    """True when every process has at least one readable image in its share of this batch. A rank
    whose share is all unreadable cannot run forward/backward; if the others did, they would wait
    forever in DDP's gradient all-reduce (and synchronised BN's), so all ranks skip the step together."""
    if world == 1:
        return mine
    flag = torch.tensor([1 if mine else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


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
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), world, device
    device = torch.device(device_arg or ("cuda" if torch.cuda.is_available() else "cpu"))
    return 0, 1, device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # S resizes per image; OpenMP threads in every worker oversubscribe
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def _loader_generator(seed: int) -> torch.Generator:
    """A DataLoader's own generator: creating an iterator then draws its worker base seed from it
    instead of from torch's global RNG (whose state dropout uses and a resume restores)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def json_safe(d: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool, list, type(None))) else str(v)) for k, v in d.items()}


# ------------------------------------------------------------------------------ RNG state
def rng_state() -> dict:
    """Every global RNG, as tensors/lists/numbers (loadable with weights_only=True)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    st = {"python": {"version": version, "state": list(mt), "gauss": gauss},
          "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                    "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict) -> None:
    p = st["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    n = st["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# ---------------------------------------------------------------------------- evaluation
def evaluate_distributed(model, val_ds, a, device, alpha, rank, world, progress) -> tuple[dict, int]:
    """Top-1/top-5 over the validation set; with several processes each rank evaluates a contiguous
    shard and the hit counts are summed. Returns (metrics, skipped)."""
    def loader(ds):
        return DataLoader(ds, batch_size=max(1, a.batch_size // world), shuffle=False,
                          num_workers=a.workers, collate_fn=collate_views, pin_memory=device.type == "cuda",
                          worker_init_fn=_worker_init, generator=_loader_generator(a.seed))
    if world == 1:
        res = evaluate(model, loader(val_ds), a.resolutions, device, alpha=alpha, progress=progress,
                       desc="validate")
        return res.metrics, res.skipped
    shard = np.array_split(np.arange(len(val_ds)), world)[rank].tolist()
    keys = [str(r) for r in a.resolutions] + (["ensemble"] if alpha is not None else [])
    counts = torch.zeros(2 * len(keys) + 2, dtype=torch.float64)
    if shard:
        res = evaluate(model, loader(Subset(val_ds, shard)), a.resolutions, device, alpha=alpha,
                       progress=progress, desc="validate")
        for j, k in enumerate(keys):
            counts[2 * j] = round(res.metrics[k]["top1"] * res.count / 100.0)
            counts[2 * j + 1] = round(res.metrics[k]["top5"] * res.count / 100.0)
        counts[-2], counts[-1] = res.count, res.skipped
    counts = counts.to(device)
    dist.all_reduce(counts)
    counts = counts.cpu()
    n = float(counts[-2])
    if n == 0:
        raise ValueError("no readable validation image")

    def pct(c):  # as evaluate() computes it: 100 x float32 mean
        return 100.0 * (torch.tensor(float(c), dtype=torch.float32) / n).item()
    metrics = {k: {"top1": pct(counts[2 * j]), "top5": pct(counts[2 * j + 1])} for j, k in enumerate(keys)}
    return metrics, int(counts[-1])


# --------------------------------------------------------------------------------- resume
def load_resume(a: argparse.Namespace) -> dict | None:
    """The checkpoint to resume from, or None for a fresh start."""
    if not a.resume:
        return None
    auto = a.resume == "auto"
    path = Path(a.out if auto else a.resume)
    if not path.is_file():
        if auto:
            return None
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one error line
        if auto:
            print(f"warning: {path} is unreadable ({type(e).__name__}); starting afresh", file=sys.stderr)
            return None
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?)") from None
    if not isinstance(ckpt, dict) or "train_state" not in ckpt:
        raise CheckpointError(f"{path} has no train_state to resume from")
    old = ckpt["train_state"].get("args", {})
    diff = [k for k in RESUME_KEYS if k in old and old[k] != _arg_value(a, k)]
    if diff:
        raise CheckpointError(f"cannot resume {path}: it was trained with different " + ", ".join(
            f"--{k.replace('_', '-')} ({old[k]} vs {_arg_value(a, k)})" for k in diff))
    return ckpt


def _arg_value(a, k):
    v = getattr(a, k)
    return list(v) if isinstance(v, (list, tuple)) else v


# -------------------------------------------------------------------------------- train
def train(a: argparse.Namespace) -> dict | None:
    a = resolve_defaults(a)
    if a.threads:
        torch.set_num_threads(a.threads)
    rank, world, device = init_distributed(a.device)
    is_main = rank == 0
    use_cuda = device.type == "cuda"
    if a.batch_size % world:
        raise ValueError(f"--batch-size {a.batch_size} is not divisible by {world} processes")
    if a.views == "auto":
        a.views = "device" if use_cuda and not a.multi_crop else "exact"
    if a.views == "device" and a.multi_crop:
        raise ValueError("--multi-crop draws one crop per resolution: it needs --views exact")
    if a.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif use_cuda:
        torch.backends.cudnn.benchmark = True
    resume = load_resume(a)
    # every rank seeds the same: identical init, and dropout masks drawn for the global batch
    seed_everything(a.seed)
    amp_dtype = None
    if use_cuda and not a.no_amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    mean, std, crop_pct = list(IMAGENET_MEAN), list(IMAGENET_STD), 0.875

    train_ds = train_dataset(a.data, a.resolutions, mean, std, a.multi_crop, crop_scale(a.crop_scale))
    if a.views == "device":
        train_ds.transform = MaxResolutionView(a.resolutions, crop_scale(a.crop_scale))
    val_ds = val_dataset(a.data, a.resolutions, mean, std, crop_pct, train_ds.classes)
    if world > 1 and len(train_ds) < a.batch_size:
        raise ValueError(f"{len(train_ds)} training images are fewer than one global batch "
                         f"({a.batch_size}); lower --batch-size")
    sampler = GlobalBatchSampler(len(train_ds), a.batch_size, rank, world, a.seed, a.max_steps_per_epoch)
    train_loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=a.workers,
                              collate_fn=collate_views, pin_memory=use_cuda,
                              worker_init_fn=_worker_init, persistent_workers=a.workers > 0,
                              generator=_loader_generator(a.seed + rank))

    arch_args = {"num_classes": len(train_ds.classes)}
    if a.arch == "mobilenet_v2":
        arch_args["width_mult"] = a.width_mult
        arch_args["dropout"] = a.dropout
    model = create_model(a.arch, a.resolutions, **arch_args)
    if a.zero_init_residual:
        zero_init_residual(model)
    if a.init:
        notes = init_model(model, a.init, a.arch)
        if is_main:
            print("\n".join(notes))
    S = len(a.resolutions)
    sync_group = None
    if world > 1 and not a.local_bn:
        sync_group = dist.new_group(backend="nccl" if use_cuda else "gloo")
    prepare_model(model, rank, world, sync_group, use_cuda)
    net = MultiResolutionNet(model, S, learn_alpha=a.mred != "none" and S > 1, mode=a.mred,
                             resolution_loss=a.resolution_loss)
    dtype = getattr(torch, a.dtype)
    if dtype != torch.float32:
        if use_cuda:
            raise ValueError("--dtype float64 is for CPU checks")
        net = net.to(dtype)
    net = net.to(device)  # before the optimizer exists; its restored state follows the parameters
    if use_cuda:
        net = net.to(memory_format=torch.channels_last)
    counts = param_counts(model)
    madds = {str(r): v for r, v in count_madds_all(model, a.resolutions).items()}

    head = {id(p) for p in dict(model.named_modules())[head_name(model)].parameters()}
    scaled_head = a.head_lr_scale != 1.0
    decay = [p for n, p in net.named_parameters() if n != "alpha" and not (scaled_head and id(p) in head)]
    groups = [{"params": decay, "weight_decay": a.weight_decay}]
    if scaled_head:  # only then a group of its own: optimizer states of older runs keep their layout
        groups.append({"params": [p for p in net.parameters() if id(p) in head], "weight_decay": a.weight_decay,
                       "lr": a.lr * a.head_lr_scale})
    if net.alpha.requires_grad:
        groups.append({"params": [net.alpha], "weight_decay": 0.0})  # alpha gets no weight decay
    opt = torch.optim.SGD(groups, lr=a.lr, momentum=a.momentum, nesterov=False)
    steps_per_epoch = sampler.batches_per_epoch
    total_steps = max(1, a.epochs * steps_per_epoch)
    warmup_steps = min(total_steps - 1, round(a.warmup_epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup_steps, total_steps))

    # state that a resume restores
    start_epoch, start_batch, step, history, elapsed = 0, 0, 0, [], 0.0
    sums = {"total": 0.0, "cls": 0.0, "ens": 0.0, "dis": 0.0}
    n_batches, skipped = 0, 0
    if resume is not None:
        ts = resume["train_state"]
        model.load_state_dict(resume["state_dict"])
        with torch.no_grad():
            net.alpha.copy_(ts.get("alpha", resume["alpha"]))
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        if ts.get("scaler"):
            scaler.load_state_dict(ts["scaler"])
        start_epoch, start_batch, step = int(ts["epoch"]), int(ts["batch"]), int(ts["step"])
        history = json.loads(ts["history"])
        elapsed = float(ts.get("elapsed_s", 0.0))
        sums = {k: float(v) for k, v in ts["epoch_sums"].items()}
        n_batches, skipped = int(ts["epoch_batches"]), int(ts["epoch_skipped"])
        set_rng_state(ts["rng"])
        if ts.get("finished"):
            if is_main:
                print(f"{a.resume if a.resume != 'auto' else a.out}: training already finished "
                      f"({step} steps); nothing to do")
            if world > 1:
                dist.barrier()
                dist.destroy_process_group()
            return dict(resume)

    ddp = net
    if world > 1:  # BN buffers need no per-forward broadcast: synchronised BN keeps them equal
        import inspect
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})
        ddp = DDP(net, device_ids=[device.index] if use_cuda else None, **no_sync)

    if is_main:
        print(f"{a.arch} RS-Net, resolutions {a.resolutions}, {len(train_ds.classes)} classes, "
              f"{len(train_ds)} train / {len(val_ds)} val images, {world} process(es) on {device}, "
              f"mred={a.mred}, {'multi' if a.multi_crop else 'single'}-crop, views={a.views}"
              + (f", AMP {str(amp_dtype).replace('torch.', '')}" if amp_dtype else "")
              + (", BN synchronised across processes" if sync_group is not None else ""))
        print(f"params: {counts['total']:,} = single model {counts['single']:,} + (S-1) x "
              f"{counts['bn_per_resolution']:,} BN affine parameters")
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.log).parent.mkdir(parents=True, exist_ok=True)
        Path(a.log).write_text("".join(json.dumps(rec) + "\n" for rec in history))
        if resume is not None:
            print(f"resumed at epoch {start_epoch + 1}, batch {start_batch}/{steps_per_epoch}, step {step}")

    def checkpoint(epoch_done: int, batch_done: int, finished: bool) -> dict:
        ckpt = {
            "arch": a.arch, "arch_args": arch_args, "resolutions": a.resolutions,
            "class_names": list(train_ds.classes), "mean": mean, "std": std, "crop_pct": crop_pct,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "alpha": net.alpha.detach().float().cpu(),
            "metrics": next((h["metrics"] for h in reversed(history) if h["metrics"]), {}), "madds": madds, "params": counts,
            "train_args": json_safe(vars(a)), "versions": versions(),
            "train_time_s": round(elapsed + time.time() - t_start, 1),
            "train_state": {
                "finished": finished, "alpha": net.alpha.detach().cpu().clone(), "epoch": epoch_done, "batch": batch_done, "step": step,
                "optimizer": _to_cpu(opt.state_dict()), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "rng": rng_state(), "history": json.dumps(history),
                "epoch_sums": dict(sums), "epoch_batches": n_batches, "epoch_skipped": skipped,
                "elapsed_s": elapsed + time.time() - t_start, "world_size": world,
                "args": {k: _arg_value(a, k) for k in RESUME_KEYS},
            },
        }
        bad = next((k for k, v in ckpt["state_dict"].items()
                    if v.is_floating_point() and not torch.isfinite(v).all()), None)
        if bad is not None:
            raise NonFiniteError(f"weights became non-finite ({bad}) at step {step}: not saved; {a.out} "
                                 f"keeps the last good checkpoint, if any (lower --lr?)")
        save_checkpoint(ckpt, a.out)
        return ckpt

    t_start = time.time()
    ckpt = None
    for epoch in range(start_epoch, a.epochs):
        first = start_batch if epoch == start_epoch else 0
        if epoch != start_epoch or resume is None:
            sums = dict.fromkeys(sums, 0.0)
            n_batches, skipped = 0, 0
        sampler.set_epoch(epoch, first)
        ddp.train()
        bar = tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{a.epochs}",
                   disable=not is_main or a.no_progress)
        for i, (views, target, bad) in enumerate(train_loader, start=first):
            skipped += bad
            if all_ranks_have_data(views is not None, world, device):
                if a.views == "device":
                    views = expand_views(views[0].to(device, non_blocking=True), a.resolutions, mean, std)
                else:
                    views = [v.to(device, non_blocking=True) for v in views]
                if dtype != torch.float32:
                    views = [v.to(dtype) for v in views]
                if use_cuda:
                    views = [v.contiguous(memory_format=torch.channels_last) for v in views]
                target = target.to(device, non_blocking=True)
                with torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext():
                    losses = ddp(views, target)
                if not torch.isfinite(losses["total"].detach()).all():
                    raise NonFiniteError(f"loss became {float(losses['total'].detach())} at step {step + 1} "
                                         f"(epoch {epoch + 1}): training stopped; {a.out} keeps the last "
                                         f"good checkpoint, if any (lower --lr?)")
                opt.zero_grad(set_to_none=True)
                scaler.scale(losses["total"]).backward()
                scaler.step(opt)
                scaler.update()
                n_batches += 1
                for k in sums:
                    sums[k] += float(losses[k].detach())
                bar.set_postfix(loss=f"{sums['total'] / n_batches:.3f}", lr=f"{sched.get_last_lr()[0]:.4f}")
            # a batch whose images were all unreadable (on any rank: every rank skips it together,
            # none waits alone in DDP's collectives) still counts as a step (same schedule everywhere)
            sched.step()
            step += 1
            bar.update(1)
            if is_main and a.save_every and step % a.save_every == 0 and i + 1 < steps_per_epoch:
                checkpoint(epoch, i + 1, finished=False)
        bar.close()
        ep_sums, ep_batches, ep_skipped = dict(sums), n_batches, skipped
        if world > 1:
            t = torch.tensor([ep_skipped, ep_batches] + list(ep_sums.values()), dtype=torch.float64, device=device)
            dist.all_reduce(t)
            ep_skipped, ep_batches = int(t[0]), int(t[1])
            ep_sums = dict(zip(ep_sums, t[2:].tolist()))
        metrics, skipped_val = {}, 0
        if epoch + 1 == a.epochs or (a.eval_every > 0 and (epoch + 1) % a.eval_every == 0):
            metrics, skipped_val = evaluate_distributed(
                model if dtype == torch.float32 else _CastInput(model, dtype), val_ds, a, device,
                net.alpha.detach() if S > 1 else None, rank, world, progress=is_main and not a.no_progress)
        rec = {"epoch": epoch + 1, "step": step, "time_s": round(elapsed + time.time() - t_start, 1),
               "lr": sched.get_last_lr()[0],
               "loss": {k: v / max(1, ep_batches) for k, v in ep_sums.items()},
               "alpha": torch.softmax(net.alpha.detach().float().cpu(), 0).tolist(),
               "metrics": metrics, "skipped_train": ep_skipped, "skipped_val": skipped_val}
        history.append(rec)
        sums = dict.fromkeys(sums, 0.0)
        n_batches, skipped = 0, 0
        if is_main:
            with open(a.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            accs = "  ".join(f"{k}:{v['top1']:.1f}" for k, v in metrics.items())
            print(f"epoch {epoch + 1}: loss {rec['loss']['total']:.3f}" + (f"  top-1 {accs}" if accs else "")
                  + (f"  (skipped {ep_skipped} unreadable train image(s))" if ep_skipped else ""), flush=True)
            ckpt = checkpoint(epoch + 1, 0, finished=epoch + 1 == a.epochs)
        if world > 1:
            dist.barrier()

    if is_main:
        if S > 1 and a.mred != "none":
            alpha_w = torch.softmax(net.alpha.detach().float().cpu(), 0)
            print("learned alpha (softmax): " + ", ".join(f"{r}:{w:.3f}" for r, w in zip(a.resolutions, alpha_w.tolist())))
        print(format_table(ckpt["metrics"], madds, a.resolutions, title=f"\n{a.arch} RS-Net on {a.data}"))
        print(f"wrote {a.out}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return ckpt


class _CastInput(nn.Module):
    """Feeds a float64 model the float32 views of the evaluation loader."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x):
        return self.model(x.to(self.dtype))


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class NonFiniteError(ValueError):
    """The loss or the weights became NaN/inf: training stops before writing them."""


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        from rsnet_edge.cli import Output, check_outputs
        check_outputs([Output(a.out, "--out", keep=not a.resume,
                              force_flag="--force (or --resume auto to continue an unfinished run)"),
                       Output(a.log or str(a.out) + ".log.jsonl", "--log")],
                      inputs=[a.data, getattr(a, "init", None)], force=a.force)
        train(a)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
