"""What every test module shares: the repo root, the environment and runner of CLI subprocesses, the
one-error-line check, and a random RS-Net checkpoint maker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict:
    """Environment for `python -m ...` subprocesses: one OpenMP thread (two cores, several
    processes: more threads only oversubscribe), the repo importable, no inherited torchrun rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra)
    env.pop("WORLD_SIZE", None)
    return env


def run_module(module: str, *args, check: bool = False, timeout: float = 900,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m module args...`` from the repo root (text output captured). ``check``: fail the
    test with the command's output when it exits non-zero."""
    r = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, env=env or subprocess_env(),
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{module} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def error_line(stderr: str) -> str:
    """The ONE error line of a refused command: ``error: ...`` (or argparse's own
    ``prog: error: ...``); fails the test on none, several, or a traceback. tqdm's ``\\r`` count as
    line breaks."""
    lines = [ln for ln in re.split(r"[\r\n]", stderr)
             if ln.startswith("error") or (ln.startswith("python -m ") and ": error: " in ln)]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith("error: ") or ": error: " in lines[0], stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


RS = [64, 48]


def make_ckpt(path, resolutions=RS, num_classes=10, width=0.35, seed=0, arch="mobilenet_v2"):
    """A random RS-Net checkpoint whose BN sets really differ per resolution."""
    from rsnet_edge.checkpoint import save_checkpoint, versions
    from rsnet_edge.models import create_model, param_counts, switchable_bns

    torch.manual_seed(seed)
    from rsnet_edge import archs
    args = archs.arch_args(arch, num_classes, width_mult=width if archs.get(arch).width_arg else None)
    model = create_model(arch, resolutions, **args)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for sbn in switchable_bns(model):
            for bn in sbn.bns:
                c = bn.num_features
                bn.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                bn.bias.copy_(0.1 * torch.randn(c, generator=g))
                bn.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                bn.running_var.copy_(0.5 + torch.rand(c, generator=g))
    ckpt = {"arch": arch, "arch_args": args, "resolutions": list(resolutions),
            "class_names": [f"c{i}" for i in range(num_classes)], "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225], "crop_pct": 0.875, "state_dict": model.state_dict(),
            "alpha": torch.zeros(len(resolutions)), "metrics": {}, "madds": {},
            "params": param_counts(model), "versions": versions()}
    save_checkpoint(ckpt, path)
    return path
