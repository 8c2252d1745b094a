"""The built-in dataset: an offline ImageFolder of drawn shapes, deterministic by seed.

``python -m training.synthetic --out data/shapes`` writes ``train/<class>/*.jpg`` and
``val/<class>/*.jpg`` exactly as ImageNet is laid out, so the quickstart, tests and demos run the
same code path as a real dataset with no download. Each image shows one object of its class (drawn
by :mod:`rsnet_edge.shapes`; its docstring describes the two ``--style`` s: ``clean``, the default,
and ``cluttered``, the harder look before issue 14). Some classes differ only in fine detail
(striped vs plain disc, ring vs disc, 5- vs 8-point star), so resolution matters.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from rsnet_edge.shapes import CLASSES, STYLES, make_image  # noqa: E402,F401  (the drawing lives in the core)


def generate(out: str | os.PathLike, num_classes: int = 10, train_per_class: int = 100,
             val_per_class: int = 30, size: int = 160, seed: int = 0, progress: bool = True,
             style: str = "clean") -> Path:
    """Write the dataset to ``out`` (atomically: built in a temp folder, then renamed)."""
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"--classes must be between 2 and {len(CLASSES)}")
    if size < 32:
        raise ValueError("--size must be at least 32")
    if style not in STYLES:
        raise ValueError(f"--style must be one of {STYLES}, got {style!r}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    classes = CLASSES[:num_classes]
    jobs = [(split, c, k) for split, n in (("train", train_per_class), ("val", val_per_class))
            for c in classes for k in range(n)]
    try:
        for split, c, k in tqdm(jobs, desc="built-in dataset", disable=not progress, unit="img"):
            d = tmp / split / c
            d.mkdir(parents=True, exist_ok=True)
            split_id = 0 if split == "train" else 1
            img_seed = (seed * 1_000_003 + split_id * 100_003 + CLASSES.index(c) * 10_007 + k)
            make_image(c, img_seed, size, style).save(d / f"{c}_{k:05d}.jpg", quality=90)
        (tmp / "dataset.json").write_text(json.dumps(
            {"name": "rsnet-edge built-in shapes", "classes": list(classes), "size": size, "seed": seed,
             "style": style,
             "train_per_class": train_per_class, "val_per_class": val_per_class}, indent=2))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.synthetic", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder to create (must not exist)")
    ap.add_argument("--classes", type=int, default=10, help=f"number of classes (2-{len(CLASSES)})")
    ap.add_argument("--train-per-class", type=int, default=100)
    ap.add_argument("--val-per-class", type=int, default=30)
    ap.add_argument("--size", type=int, default=160, help="image side in pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--style", choices=STYLES, default="clean",
                    help="clean (default): large, contrasting objects on soft backgrounds; cluttered: "
                         "the harder look before issue 14 (striped backgrounds, distractors, blur)")
    a = ap.parse_args(argv)
    try:
        out = generate(a.out, a.classes, a.train_per_class, a.val_per_class, a.size, a.seed,
                       style=a.style)
    except (ValueError, FileExistsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({a.classes} classes, {a.train_per_class}+{a.val_per_class} images per class)")
    return 0


if __name__ == "__main__":
    from rsnet_edge.cli import run as _run
    sys.exit(_run(main))
