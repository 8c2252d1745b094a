"""Several training processes (``torchrun``) that reproduce one: the modules and collectives of
``training.train`` under DDP, each a no-op or the plain path with one process.

* Dropout (MobileNetV2's classifier): every rank holds the same torch RNG state and draws the mask of
  the whole global batch, keeping its own rows (:class:`GlobalBatchDropout`): the masks are the
  one-process masks.
* BatchNorm: with several processes the batch statistics are computed over the global batch
  (:class:`SyncedBatchNorm2d`: a differentiable all-reduce of per-channel sums on CPU/gloo;
  ``nn.SyncBatchNorm`` on CUDA), so W processes x B/W images normalise like 1 process x B.
  ``--local-bn`` turns this off (plain DDP: per-process statistics, faster, not equal).
* A batch whose share on some rank is all unreadable images is skipped by EVERY rank (a one-int
  all-reduce per step decides, :func:`all_ranks_have_data`): a rank that skipped alone would leave
  the others waiting forever in DDP's gradient all-reduce.
* Validation (:func:`evaluate_distributed`): each rank evaluates a contiguous shard of the
  validation set and the hit counts are summed.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Subset

from rsnet_edge.models import SwitchableBatchNorm2d
from training.data import collate_views, loader_generator, worker_init
from training.evaluate import evaluate


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


# ----------------------------------------------------------------------- process group
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


def bn_sync_group(world: int, local_bn: bool, use_cuda: bool):
    """The process group synchronised BN reduces over, or None (one process, or ``--local-bn``)."""
    if world > 1 and not local_bn:
        return dist.new_group(backend="nccl" if use_cuda else "gloo")
    return None


def wrap_ddp(net: nn.Module, world: int, device: torch.device) -> nn.Module:
    """``net`` in DDP with several processes (``net`` itself with one). BN buffers need no
    per-forward broadcast: synchronised BN keeps them equal."""
    if world == 1:
        return net
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
               else {"broadcast_buffers": False})
    return DDP(net, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)


def all_ranks_have_data(mine: bool, world: int, device: torch.device) -> bool:
    """True when every process has at least one readable image in its share of this batch. A rank
    whose share is all unreadable cannot run forward/backward; if the others did, they would wait
    forever in DDP's gradient all-reduce (and synchronised BN's), so all ranks skip the step together."""
    if world == 1:
        return mine
    flag = torch.tensor([1 if mine else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def sum_over_ranks(values: list[float], world: int, device: torch.device) -> list[float]:
    """``values`` summed over all processes (in float64); ``values`` as they are with one process."""
    if world == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shutdown(world: int) -> None:
    """Wait for every process, then leave the process group (several processes only)."""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- evaluation
def evaluate_distributed(model, val_ds, a, device, alpha, rank, world, progress) -> tuple[dict, int]:
    """Top-1/top-5 over the validation set; with several processes each rank evaluates a contiguous
    shard and the hit counts are summed. Returns (metrics, skipped)."""
    def loader(ds):
        return DataLoader(ds, batch_size=max(1, a.batch_size // world), shuffle=False,
                          num_workers=a.workers, collate_fn=collate_views, pin_memory=device.type == "cuda",
                          worker_init_fn=worker_init, generator=loader_generator(a.seed))
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
