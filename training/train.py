"""Train an RS-Net: parallel multi-resolution training with MRED (paper 3, 4.1).

    python -m training.train --arch mobilenet_v2 --data DIR --resolutions 224 192 160 128 96 \
        --mred full --epochs 150 --batch-size 256 --out rs_mbv2.pt
    torchrun --nproc_per_node 2 -m training.train ...          # DDP, same global batch
    python -m training.train ... --out rs.pt --resume rs.pt       # exact resume (or --resume auto)

One resolution (``--resolutions 224``) trains an individual model (I-Net). Defaults per architecture
follow paper 4.1: SGD momentum 0.9, cosine annealing to 0, lr 0.1 (ResNets) / 0.05 (MobileNetV2) at
batch 256 scaled linearly with the batch, weight decay 1e-4 / 4e-5, 120 / 150 epochs. Not the
paper's, off by default, for short runs (docs/recipes.md): ``--warmup-epochs``,
``--crop-scale`` (default 0.08 = the paper's), ``--resolution-loss mean``, ``--head-lr-scale``,
``--zero-init-residual``; ``--dropout`` (default torchvision's 0.2). ``--init PATH`` seeds the weights
from a torchvision single-model state dict or an rsnet-edge checkpoint (``training/finetune.py``); then
the flags left unset take the fine-tune recipe's values (``training.config.FINETUNE_RECIPE``, printed
first). ``--teacher PATH`` adds distillation from a frozen model at its own resolution on the same crop
(``training/teacher.py``; off by default).

Where things live (split as torchvision's reference scripts are)
----------------------------------------------------------------
* this module: the model, optimizer and schedule (:func:`set_up`), one epoch (:func:`train_one_epoch`),
  the epoch loop with validation and checkpoints (:func:`train`), the command line (:func:`main`);
* ``training/config.py``: the flags (``build_parser``), the per-architecture defaults
  (``arch_recipe``) and a config built without argv (``make_config``, used by ``training.compare``);
* ``training/data.py``: datasets and views, the global-batch sampler, per-sample augmentation seeds,
  ``--views device``; ``training/mred.py``: the MRED loss and ``MultiResolutionNet`` (views -> loss);
* ``training/distributed.py``: DDP set-up, synchronised BN, global-batch dropout, skipped batches,
  distributed validation; ``training/state.py``: resume state (``TrainState``), RNG states, the
  checkpoint a run writes.

What is deterministic, and why, is told where it is done: data order and augmentation in
``training/data.py``; dropout masks, BN statistics and batches skipped together under ``torchrun`` in
``training/distributed.py``; exact resume in ``training/state.py``. Losses are per-sample means and
DDP averages gradients, so W ranks reproduce the one-process gradient up to float summation order: a
2-process gloo run matches a 1-process run within float tolerance (tests/test_distributed.py), not
bit for bit.

Speed path (GPU): AMP (bf16 where supported, else fp16 + GradScaler; ``--no-amp`` for fp32),
channels_last, pinned memory, and ``--views device`` (default on GPU; ``--views exact`` on CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD, CheckpointError
from rsnet_edge.files import atomic_write_bytes
from rsnet_edge.flops import count_madds_all
from rsnet_edge.models import create_model, head_name, param_counts, zero_init_residual
from training.config import (FINETUNE_FULL_LR_STEPS, FINETUNE_LR, build_parser, finetune_lr, recipe_defaults,
                             resolve_defaults, resume_args)
from training.data import (GlobalBatchSampler, MaxResolutionView, TrainViews, collate_views, crop_scale,
                           expand_views, loader_generator, train_dataset, val_dataset, worker_init)
from training.distributed import (all_ranks_have_data, barrier, bn_sync_group, evaluate_distributed,
                                  init_distributed, prepare_model, shutdown, sum_over_ranks, wrap_ddp)
from training.evaluate import CastInput, format_table
from training.finetune import init_model
from training.mred import MultiResolutionNet
from training.state import NonFiniteError, TrainState, load_resume, seed_everything, write_checkpoint
from training.teacher import Teacher, extra_views, load_teacher


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """lr multiplier: linear warmup from 1/warmup_steps to 1 over ``warmup_steps``, then cosine
    annealing to 0 at ``total_steps`` (without warmup: the paper's plain cosine)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))


@dataclass
class Setup:
    """What :func:`set_up` builds: the RS-Net ``model`` (its state dict is the checkpoint's), ``net``
    (model + alpha, on the device), the optimizer, schedule and GradScaler, the AMP and parameter
    dtypes, the BN sync group (or None) and the checkpoint's model ``card``."""
    model: nn.Module
    net: MultiResolutionNet
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    dtype: torch.dtype
    sync_group: object
    card: dict
    teacher: Teacher | None = None


def arch_args_of(cfg: argparse.Namespace, num_classes: int) -> dict:
    """The checkpoint's ``arch_args``: the builder's arguments of ``cfg`` with ``num_classes``."""
    arch_args = {"num_classes": num_classes}
    if cfg.arch == "mobilenet_v2":
        arch_args["width_mult"] = cfg.width_mult
        arch_args["dropout"] = cfg.dropout
    return arch_args


def set_up(cfg: argparse.Namespace, classes: list[str], steps_per_epoch: int, rank: int, world: int,
           device: torch.device, is_main: bool, teacher: Teacher | None = None) -> Setup:
    """The RS-Net of ``cfg`` (``--init`` weights, global-batch dropout, synchronised BN), alpha, SGD
    (alpha without weight decay; with ``--head-lr-scale`` the classifier in a group of its own),
    warmup + cosine schedule (:func:`lr_factor`) and AMP, on ``device``; the frozen ``teacher`` (or
    None) goes to the device too."""
    use_cuda = device.type == "cuda"
    amp_dtype = None
    if use_cuda and not cfg.no_amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    arch_args = arch_args_of(cfg, len(classes))
    model = create_model(cfg.arch, cfg.resolutions, **arch_args)
    if cfg.zero_init_residual:
        zero_init_residual(model)
    if cfg.init:
        notes = init_model(model, cfg.init, cfg.arch)
        if is_main:
            print("\n".join(notes))
    S = len(cfg.resolutions)
    sync_group = bn_sync_group(world, cfg.local_bn, use_cuda)
    prepare_model(model, rank, world, sync_group, use_cuda)
    net = MultiResolutionNet(model, S, learn_alpha=cfg.mred != "none" and S > 1, mode=cfg.mred,
                             resolution_loss=cfg.resolution_loss, teacher_weight=cfg.teacher_weight)
    dtype = getattr(torch, cfg.dtype)
    if dtype != torch.float32:
        if use_cuda:
            raise ValueError("--dtype float64 is for CPU checks")
        net = net.to(dtype)
    net = net.to(device)  # before the optimizer exists; its restored state follows the parameters
    if teacher is not None:
        teacher.to(device, dtype)
    if use_cuda:
        net = net.to(memory_format=torch.channels_last)
        if teacher is not None:
            teacher.model = teacher.model.to(memory_format=torch.channels_last)
    card = {"arch": cfg.arch, "arch_args": arch_args, "resolutions": cfg.resolutions, "class_names": list(classes),
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "crop_pct": 0.875,
            "params": param_counts(model),
            "madds": {str(r): v for r, v in count_madds_all(model, cfg.resolutions).items()}}

    head = {id(p) for p in dict(model.named_modules())[head_name(model)].parameters()}
    scaled_head = cfg.head_lr_scale != 1.0
    decay = [p for n, p in net.named_parameters() if n != "alpha" and not (scaled_head and id(p) in head)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if scaled_head:  # only then a group of its own: optimizer states of older runs keep their layout
        groups.append({"params": [p for p in net.parameters() if id(p) in head], "weight_decay": cfg.weight_decay,
                       "lr": cfg.lr * cfg.head_lr_scale})
    if net.alpha.requires_grad:
        groups.append({"params": [net.alpha], "weight_decay": 0.0})  # alpha gets no weight decay
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False)
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    warmup_steps = min(total_steps - 1, round(cfg.warmup_epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup_steps, total_steps))
    return Setup(model, net, opt, sched, scaler, amp_dtype, dtype, sync_group, card, teacher)


def train_one_epoch(cfg: argparse.Namespace, s: Setup, ddp: nn.Module, loader: DataLoader,
                    sampler: GlobalBatchSampler, st: TrainState, epoch: int, device: torch.device,
                    world: int, is_main: bool, save: Callable[[bool], dict]) -> None:
    """Epoch ``epoch`` from batch ``st.batch`` on (a resumed run may start mid-epoch), updating
    ``st``; ``save(finished)`` writes a checkpoint every ``--save-every`` steps."""
    steps_per_epoch = sampler.batches_per_epoch
    first = st.batch
    sampler.set_epoch(epoch, first)
    ddp.train()
    bar = tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not is_main or cfg.no_progress)
    rendered = list(cfg.resolutions) + extra_views(s.teacher, cfg.resolutions)
    for i, (views, target, bad) in enumerate(loader, start=first):
        st.skipped += bad
        if all_ranks_have_data(views is not None, world, device):
            if cfg.views == "device":
                views = expand_views(views[0].to(device, non_blocking=True), rendered,
                                     s.card["mean"], s.card["std"])
            else:
                views = [v.to(device, non_blocking=True) for v in views]
            if s.dtype != torch.float32:
                views = [v.to(s.dtype) for v in views]
            if device.type == "cuda":
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            target = target.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=s.amp_dtype) if s.amp_dtype else nullcontext():
                # the frozen teacher on this rank's share, at its own resolution, the same crops
                t_logits = None if s.teacher is None else s.teacher.logits(views[s.teacher.view_index(cfg.resolutions)])
                losses = ddp(views[:len(cfg.resolutions)], target, t_logits)
            if not torch.isfinite(losses["total"].detach()).all():
                raise NonFiniteError(f"loss became {float(losses['total'].detach())} at step {st.step + 1} "
                                     f"(epoch {epoch + 1}): training stopped; {cfg.out} keeps the last "
                                     f"good checkpoint, if any (lower --lr?)")
            s.opt.zero_grad(set_to_none=True)
            s.scaler.scale(losses["total"]).backward()
            s.scaler.step(s.opt)
            s.scaler.update()
            st.batches += 1
            for k in st.sums:
                st.sums[k] += float(losses[k].detach())
            bar.set_postfix(loss=f"{st.sums['total'] / st.batches:.3f}", lr=f"{s.sched.get_last_lr()[0]:.4f}")
        # a batch whose images were all unreadable (on any rank: every rank skips it together,
        # none waits alone in DDP's collectives) still counts as a step (same schedule everywhere)
        s.sched.step()
        st.step += 1
        st.batch = i + 1
        bar.update(1)
        if is_main and cfg.save_every and st.step % cfg.save_every == 0 and i + 1 < steps_per_epoch:
            save(False)
    bar.close()


def train(cfg: argparse.Namespace) -> dict | None:
    """Train as ``cfg`` (a :mod:`training.config` config) says; returns the last checkpoint written
    (a finished run resumed: that run's checkpoint)."""
    from_recipe = recipe_defaults(cfg)   # before they are filled in: what the fine-tune recipe sets
    cfg = resolve_defaults(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world, device = init_distributed(cfg.device)
    is_main = rank == 0
    use_cuda = device.type == "cuda"
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} is not divisible by {world} processes")
    if cfg.views == "auto":
        cfg.views = "device" if use_cuda and not cfg.multi_crop else "exact"
    if cfg.views == "device" and cfg.multi_crop:
        raise ValueError("--multi-crop draws one crop per resolution: it needs --views exact")
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif use_cuda:
        torch.backends.cudnn.benchmark = True
    # every rank seeds the same: identical init, and dropout masks drawn for the global batch
    seed_everything(cfg.seed)

    mean, std, crop_pct = list(IMAGENET_MEAN), list(IMAGENET_STD), 0.875
    train_ds = train_dataset(cfg.data, cfg.resolutions, mean, std, cfg.multi_crop, crop_scale(cfg.crop_scale))
    teacher = None
    if cfg.teacher:
        teacher = load_teacher(cfg.teacher, cfg.arch, {k: v for k, v in arch_args_of(cfg, 0).items()
                                                       if k != "num_classes"},
                               train_ds.classes, cfg.resolutions, cfg.teacher_resolution)
        extra = extra_views(teacher, cfg.resolutions)   # its view, from the same crop as the others
        train_ds.transform = TrainViews(cfg.resolutions, mean, std, cfg.multi_crop, crop_scale(cfg.crop_scale), extra)
    if cfg.views == "device":
        train_ds.transform = MaxResolutionView(list(cfg.resolutions) + extra_views(teacher, cfg.resolutions),
                                               crop_scale(cfg.crop_scale))
    val_ds = val_dataset(cfg.data, cfg.resolutions, mean, std, crop_pct, train_ds.classes)
    if world > 1 and len(train_ds) < cfg.batch_size:
        raise ValueError(f"{len(train_ds)} training images are fewer than one global batch "
                         f"({cfg.batch_size}); lower --batch-size")
    sampler = GlobalBatchSampler(len(train_ds), cfg.batch_size, rank, world, cfg.seed, cfg.max_steps_per_epoch)
    loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=cfg.workers,
                        collate_fn=collate_views, pin_memory=use_cuda,
                        worker_init_fn=worker_init, persistent_workers=cfg.workers > 0,
                        generator=loader_generator(cfg.seed + rank))
    steps_per_epoch = sampler.batches_per_epoch
    if cfg.lr is None:      # --init without --lr: the recipe's, knowing the run's length
        cfg.lr = finetune_lr(cfg.batch_size, cfg.epochs * steps_per_epoch)
        from_recipe = {"lr": cfg.lr, **from_recipe}
    resume = load_resume(cfg)
    if is_main and from_recipe:
        print("fine-tune recipe (--init; flags you did not set): " + " ".join(
            f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
            for k, v in from_recipe.items()) + (
            f" (lr: {FINETUNE_LR:g} x {cfg.batch_size}/256" + (
                f" x {cfg.epochs * steps_per_epoch}/{FINETUNE_FULL_LR_STEPS} steps, a short run" if
                cfg.epochs * steps_per_epoch < FINETUNE_FULL_LR_STEPS else "") + ")" if "lr" in from_recipe else ""),
            flush=True)
    if is_main and teacher is not None:
        print(teacher.note + f", weight {cfg.teacher_weight:g}", flush=True)
    s = set_up(cfg, train_ds.classes, steps_per_epoch, rank, world, device, is_main, teacher)
    S = len(cfg.resolutions)

    st = TrainState()
    if resume is not None:
        s.model.load_state_dict(resume["state_dict"])
        st = TrainState.load(resume["train_state"], s.net.alpha, s.opt, s.sched, s.scaler, resume["alpha"])
        if st.finished:
            if is_main:
                print(f"{cfg.resume if cfg.resume != 'auto' else cfg.out}: training already finished "
                      f"({st.step} steps); nothing to do")
            shutdown(world)
            return dict(resume)
    ddp = wrap_ddp(s.net, world, device)

    if is_main:
        counts = s.card["params"]
        print(f"{cfg.arch} RS-Net, resolutions {cfg.resolutions}, {len(train_ds.classes)} classes, "
              f"{len(train_ds)} train / {len(val_ds)} val images, {world} process(es) on {device}, "
              f"mred={cfg.mred}, {'multi' if cfg.multi_crop else 'single'}-crop, views={cfg.views}"
              + (f", AMP {str(s.amp_dtype).replace('torch.', '')}" if s.amp_dtype else "")
              + (", BN synchronised across processes" if s.sync_group is not None else ""))
        print(f"params: {counts['total']:,} = single model {counts['single']:,} + (S-1) x "
              f"{counts['bn_per_resolution']:,} BN affine parameters")
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.log).parent.mkdir(parents=True, exist_ok=True)    # written after each epoch
        if resume is not None:
            print(f"resumed at epoch {st.epoch + 1}, batch {st.batch}/{steps_per_epoch}, step {st.step}")

    def save(finished: bool) -> dict:
        st.finished = finished
        train_state = st.save(s.net.alpha, s.opt, s.sched, s.scaler, world, resume_args(cfg))
        return write_checkpoint(cfg, s.card, s.model, s.net.alpha, st, train_state)

    st.started = time.time()
    ckpt = None
    start_epoch = st.epoch
    for epoch in range(start_epoch, cfg.epochs):
        if epoch != start_epoch or resume is None:
            st.new_epoch()
        train_one_epoch(cfg, s, ddp, loader, sampler, st, epoch, device, world, is_main, save)
        ep = sum_over_ranks([st.skipped, st.batches] + list(st.sums.values()), world, device)
        ep_skipped, ep_batches, ep_sums = int(ep[0]), int(ep[1]), dict(zip(st.sums, ep[2:]))
        metrics, skipped_val = {}, 0
        if epoch + 1 == cfg.epochs or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0):
            metrics, skipped_val = evaluate_distributed(
                s.model if s.dtype == torch.float32 else CastInput(s.model, s.dtype), val_ds, cfg, device,
                s.net.alpha.detach() if S > 1 else None, rank, world, progress=is_main and not cfg.no_progress)
        rec = {"epoch": epoch + 1, "step": st.step, "time_s": round(st.seconds(), 1),
               "lr": s.sched.get_last_lr()[0],
               "loss": {k: v / max(1, ep_batches) for k, v in ep_sums.items()},
               "alpha": torch.softmax(s.net.alpha.detach().float().cpu(), 0).tolist(),
               "metrics": metrics, "skipped_train": ep_skipped, "skipped_val": skipped_val}
        st.history.append(rec)
        st.new_epoch()
        st.epoch, st.batch = epoch + 1, 0
        if is_main:
            # the whole history, atomically: a run that stops before its first epoch leaves no
            # empty log (and a previous run's log stays until this one has a record to replace it)
            atomic_write_bytes(cfg.log, "".join(json.dumps(r) + "\n" for r in st.history).encode())
            accs = "  ".join(f"{k}:{v['top1']:.1f}" for k, v in metrics.items())
            print(f"epoch {epoch + 1}: loss {rec['loss']['total']:.3f}" + (f"  top-1 {accs}" if accs else "")
                  + (f"  (skipped {ep_skipped} unreadable train image(s))" if ep_skipped else ""), flush=True)
            ckpt = save(epoch + 1 == cfg.epochs)
        barrier(world)

    if is_main:
        if S > 1 and cfg.mred != "none":
            alpha_w = torch.softmax(s.net.alpha.detach().float().cpu(), 0)
            print("learned alpha (softmax): "
                  + ", ".join(f"{r}:{w:.3f}" for r, w in zip(cfg.resolutions, alpha_w.tolist())))
        print(format_table(ckpt["metrics"], s.card["madds"], cfg.resolutions,
                           title=f"\n{cfg.arch} RS-Net on {cfg.data}"))
        print(f"wrote {cfg.out}")
    shutdown(world)
    return ckpt


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        from rsnet_edge.cli import Output, check_outputs
        check_outputs([Output(a.out, "--out", keep=not a.resume,
                              force_flag="--force (or --resume auto to continue an unfinished run)"),
                       Output(a.log or str(a.out) + ".log.jsonl", "--log")],
                      inputs=[a.data, getattr(a, "init", None), getattr(a, "teacher", None)], force=a.force)
        train(a)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
