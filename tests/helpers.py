"""What every test module shares: the repo root, the environment and runner of CLI subprocesses, the
one-error-line check, the eval view and softmax written by hand (independent references), and a
random RS-Net checkpoint maker."""

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


def pil_eval_view(img, r: int, crop_pct: float, mean, std):
    """The documented eval recipe written with PIL and numpy alone (never rsnet_edge.preprocess):
    shorter side to round(r / crop_pct) (bilinear; PIL's resize antialiases when it shrinks),
    centre crop r x r, /255, normalise. A CHW float32 numpy array."""
    import numpy as np
    from PIL import Image

    w, h = img.size
    s = int(round(r / crop_pct))
    nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    im = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - r) / 2.0)), int(round((nh - r) / 2.0))
    a = np.asarray(im.crop((left, top, left + r, top + r)), dtype=np.float32) / 255.0
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return a.transpose(2, 0, 1)


def softmax(z):
    """Row-wise softmax of a numpy array, written out (float64)."""
    import numpy as np

    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def hand_probabilities(ckpt_path, images, r: int):
    """What a checkpoint predicts for image files at resolution ``r``, computed without the runtime:
    each file opened by PIL (``convert("RGB")``), :func:`pil_eval_view` with the checkpoint's own
    mean, std and crop_pct, the torch model saved in the checkpoint, :func:`softmax`. The reference
    for artifacts and CLIs (never ``rsnet_edge.load(ckpt).predict``, which shares their
    preprocessing)."""
    import numpy as np
    from PIL import Image

    from rsnet_edge.checkpoint import load_model

    model, ck = load_model(ckpt_path, interpolate=True)
    views = []
    for p in images:
        with Image.open(p) as im:
            views.append(pil_eval_view(im.convert("RGB"), r, ck["crop_pct"], ck["mean"], ck["std"]))
    with torch.no_grad():
        return softmax(model.eval()(torch.from_numpy(np.stack(views))).numpy())


RS = [64, 48]


def randomize_bn(model, seed=0, bias=0.2, mean=0.2):
    """Non-trivial BN statistics and affine parameters of every ``nn.BatchNorm2d`` (in place), so a
    wrong or default BN is visible; returns ``model``."""
    import torch
    from torch import nn
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(bias * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(mean * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model


def make_ckpt(path, resolutions=RS, num_classes=10, width=0.35, seed=0, arch="mobilenet_v2"):
    """A random RS-Net checkpoint whose BN sets really differ per resolution (x0.35 by default)."""
    from bench.arch_table import random_checkpoint
    return random_checkpoint(arch, resolutions, num_classes, path, seed, width)


def teacher_ckpt(path, data, resolution=64):
    """A random I-Net checkpoint at ``resolution`` that predicts the classes of the dataset ``data``
    (``training.train --teacher``, ``training.recalibrate --init``)."""
    from rsnet_edge.checkpoint import save_checkpoint

    classes = sorted(p.name for p in (Path(data) / "train").iterdir())
    make_ckpt(path, resolutions=[resolution], num_classes=len(classes))
    ck = torch.load(path, weights_only=True)
    ck["class_names"] = classes
    save_checkpoint(ck, path)
    return path
