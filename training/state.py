"""What a training run saves to continue exactly where it stopped, and how it comes back.

A checkpoint of ``training.train`` is a regular rsnet-edge checkpoint plus ``train_state``: the
position (epoch, batch in the epoch, step), the per-epoch history, the partial sums of the epoch
under way, the optimizer, scheduler, GradScaler and alpha, the python/numpy/torch(/cuda) RNG states
and the arguments that must match to resume (:data:`training.config.RESUME_KEYS`). :class:`TrainState`
is that state in one object; :meth:`TrainState.save` writes the ``train_state`` dict and
:meth:`TrainState.load` reads it back, restoring what ``save`` read. Everything in it loads with
``torch.load(..., weights_only=True)``.

A run killed with SIGKILL and resumed from its last checkpoint ends with bit-identical weights on CPU
(same thread count; tests/test_resume.py). On GPU add ``--deterministic`` for that.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rsnet_edge import jsonio
from rsnet_edge.checkpoint import CheckpointError, save_checkpoint, versions
from training.config import RESUME_KEYS, config_record, resume_args

LOSS_TERMS = ("total", "cls", "ens", "dis", "tea")

# the checkpoint's model card: these keys first, in this order (then the weights, alpha, metrics)
CARD_HEAD = ("arch", "arch_args", "resolutions", "class_names", "mean", "std", "crop_pct")


class NonFiniteError(ValueError):
    """The loss or the weights became NaN/inf: training stops before writing them."""


# ------------------------------------------------------------------------------ RNG state
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


# ---------------------------------------------------------------------------- train state
@dataclass
class TrainState:
    """Where a run stands. ``epoch``/``batch``: epochs finished and batches done in the next one (a
    mid-epoch checkpoint has ``batch`` > 0); ``step``: scheduler steps so far (skipped batches
    included); ``history``: one record per finished epoch; ``elapsed``: seconds trained by earlier
    processes of this run; ``sums``/``batches``/``skipped``: the loss sums, trained batches and
    unreadable images of the epoch under way; ``finished``: the last epoch is done."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    elapsed: float = 0.0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LOSS_TERMS, 0.0))
    batches: int = 0
    skipped: int = 0
    finished: bool = False
    started: float = field(default_factory=time.time, repr=False)  # this process's clock; not saved

    def seconds(self) -> float:
        """Training time of the whole run so far (earlier processes + this one)."""
        return self.elapsed + time.time() - self.started

    def new_epoch(self) -> None:
        """Clear the sums of the epoch under way."""
        self.sums = dict.fromkeys(self.sums, 0.0)
        self.batches, self.skipped = 0, 0

    def save(self, alpha: torch.Tensor, optimizer, scheduler, scaler, world: int, args: dict) -> dict:
        """The checkpoint's ``train_state``: this state, alpha, the optimizer's, scheduler's and
        GradScaler's states and every RNG's, as they are now; ``args``: the resume arguments."""
        return {
            "finished": self.finished, "alpha": alpha.detach().cpu().clone(), "epoch": self.epoch,
            "batch": self.batch, "step": self.step,
            "optimizer": _to_cpu(optimizer.state_dict()), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "rng": rng_state(), "history": json.dumps(self.history),
            "epoch_sums": dict(self.sums), "epoch_batches": self.batches, "epoch_skipped": self.skipped,
            "elapsed_s": self.seconds(), "world_size": world,
            "args": args,
        }

    @classmethod
    def load(cls, ts: dict, alpha: torch.Tensor, optimizer, scheduler, scaler,
             alpha_fallback: torch.Tensor | None = None) -> TrainState:
        """The mirror of :meth:`save`: restores alpha (``alpha_fallback``, the checkpoint's own,
        when ``ts`` has none), the optimizer, scheduler, GradScaler and every RNG from ``ts`` and
        returns the state."""
        with torch.no_grad():
            alpha.copy_(ts.get("alpha", alpha_fallback))
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        if ts.get("scaler"):
            scaler.load_state_dict(ts["scaler"])
        history = jsonio.loads(ts["history"], "the checkpoint's train_state history")   # bounded
        st = cls(epoch=int(ts["epoch"]), batch=int(ts["batch"]), step=int(ts["step"]),
                 history=history, elapsed=float(ts.get("elapsed_s", 0.0)),
                 sums={k: float(v) for k, v in ts["epoch_sums"].items()},
                 batches=int(ts["epoch_batches"]), skipped=int(ts["epoch_skipped"]),
                 finished=bool(ts.get("finished")))
        set_rng_state(ts["rng"])
        return st


def write_checkpoint(cfg: argparse.Namespace, card: dict, model: nn.Module, alpha: torch.Tensor,
                     st: TrainState, train_state: dict) -> dict:
    """Write the run's checkpoint to ``cfg.out`` (atomically) and return it: the model ``card``
    (:data:`CARD_HEAD`, ``madds``, ``params``), the weights, alpha, the last metrics, the config and
    ``train_state``. Non-finite weights are not written (:class:`NonFiniteError`)."""
    ckpt = {k: card[k] for k in CARD_HEAD}
    ckpt.update({
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "alpha": alpha.detach().float().cpu(),
        "metrics": next((h["metrics"] for h in reversed(st.history) if h["metrics"]), {}),
        "madds": card["madds"], "params": card["params"],
        "train_args": config_record(cfg), "versions": versions(),
        "train_time_s": round(st.seconds(), 1),
        "train_state": train_state,
    })
    bad = next((k for k, v in ckpt["state_dict"].items()
                if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise NonFiniteError(f"weights became non-finite ({bad}) at step {st.step}: not saved; {cfg.out} "
                             f"keeps the last good checkpoint, if any (lower --lr?)")
    save_checkpoint(ckpt, cfg.out)
    return ckpt


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
    now = resume_args(a)
    diff = [k for k in RESUME_KEYS if k in old and old[k] != now[k]]
    if diff:
        raise CheckpointError(f"cannot resume {path}: it was trained with different " + ", ".join(
            f"--{k.replace('_', '-')} ({old[k]} vs {now[k]})" for k in diff))
    return ckpt


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
