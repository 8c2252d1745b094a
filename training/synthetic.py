"""The built-in dataset: an offline ImageFolder of drawn shapes, deterministic by seed.

``python -m training.synthetic --out data/shapes`` writes ``train/<class>/*.jpg`` and
``val/<class>/*.jpg`` exactly as ImageNet is laid out, so the quickstart, tests and demos run the
same code path as a real dataset with no download. Each image shows one object of its class, drawn
at a random scale (15-75% of the image side), position, rotation and colour, on a random background
(gradient, stripes or blotches, plus noise and a few distractor strokes). Some classes differ only in
fine detail (striped vs plain disc, ring vs disc, 5- vs 8-point star), so resolution matters.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

CLASSES = ("disc", "ring", "striped_disc", "square", "triangle", "star5", "star8", "cross",
           "hexagon", "crescent", "arrow", "diamond")


def _polygon(cx, cy, radius, n, rot, inner=None):
    pts = []
    for k in range(n * (2 if inner else 1)):
        ang = rot + 2 * math.pi * k / (n * (2 if inner else 1))
        rr = radius if (not inner or k % 2 == 0) else radius * inner
        pts.append((cx + rr * math.cos(ang), cy + rr * math.sin(ang)))
    return pts


def _rotated(points, cx, cy, rot):
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    kind = rng.integers(3)
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == 0:  # linear gradient in a random direction
        a = rng.uniform(0, 2 * math.pi)
        t = (np.cos(a) * xx + np.sin(a) * yy)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
    elif kind == 1:  # soft stripes
        f = rng.uniform(2, 8)
        a = rng.uniform(0, math.pi)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * f * (np.cos(a) * xx + np.sin(a) * yy))
    else:  # blotches
        t = np.zeros((size, size))
        for _ in range(4):
            cx, cy, r = rng.uniform(0, 1, 2).tolist() + [rng.uniform(0.1, 0.4)]
            t += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        t = t / (t.max() + 1e-6)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    img += rng.normal(0, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _draw_object(d: ImageDraw.ImageDraw, cls: str, cx, cy, r, rot, color, rng):
    if cls == "disc":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif cls == "ring":
        w = max(2, int(r * 0.3))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=w)
    elif cls == "striped_disc":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
        dark = tuple(int(c * 0.35) for c in color)
        step = max(3, int(r / 4))
        for off in range(-int(r), int(r), step * 2):
            pts = _rotated([(cx - r, cy + off), (cx + r, cy + off), (cx + r, cy + off + step),
                            (cx - r, cy + off + step)], cx, cy, rot)
            d.polygon(pts, fill=dark)
        # stripes overhang the disc; the mask in make_image trims them to the disc
    elif cls == "square":
        d.polygon(_polygon(cx, cy, r, 4, rot), fill=color)
    elif cls == "triangle":
        d.polygon(_polygon(cx, cy, r, 3, rot), fill=color)
    elif cls == "star5":
        d.polygon(_polygon(cx, cy, r, 5, rot, inner=0.45), fill=color)
    elif cls == "star8":
        d.polygon(_polygon(cx, cy, r, 8, rot, inner=0.6), fill=color)
    elif cls == "cross":
        w = r * 0.3
        for pts in ([(cx - r, cy - w), (cx + r, cy - w), (cx + r, cy + w), (cx - r, cy + w)],
                    [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy + r), (cx - w, cy + r)]):
            d.polygon(_rotated(pts, cx, cy, rot), fill=color)
    elif cls == "hexagon":
        d.polygon(_polygon(cx, cy, r, 6, rot), fill=color)
    elif cls == "crescent":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
        ox, oy = cx + 0.45 * r * math.cos(rot), cy + 0.45 * r * math.sin(rot)
        return ("cut", ox, oy, 0.85 * r)
    elif cls == "arrow":
        pts = [(cx - r, cy - 0.2 * r), (cx + 0.2 * r, cy - 0.2 * r), (cx + 0.2 * r, cy - 0.6 * r),
               (cx + r, cy), (cx + 0.2 * r, cy + 0.6 * r), (cx + 0.2 * r, cy + 0.2 * r), (cx - r, cy + 0.2 * r)]
        d.polygon(_rotated(pts, cx, cy, rot), fill=color)
    elif cls == "diamond":
        pts = [(cx, cy - r), (cx + 0.55 * r, cy), (cx, cy + r), (cx - 0.55 * r, cy)]
        d.polygon(_rotated(pts, cx, cy, rot), fill=color)
    else:
        raise ValueError(cls)
    return None


def make_image(cls: str, seed: int, size: int = 160) -> Image.Image:
    """One deterministic image of class ``cls``."""
    rng = np.random.default_rng(seed)
    bg = _background(rng, size)
    d = ImageDraw.Draw(bg)
    for _ in range(rng.integers(0, 4)):  # distractor strokes
        p = rng.uniform(0, size, 4).tolist()
        d.line(p, fill=tuple(rng.integers(0, 256, 3).tolist()), width=int(rng.integers(1, 4)))
    r = rng.uniform(0.35, 0.9) * size / 2
    cx, cy = rng.uniform(r, size - r, 2).tolist()
    rot = rng.uniform(0, 2 * math.pi)
    color = tuple(rng.integers(30, 256, 3).tolist())
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ld = ImageDraw.Draw(layer)
    cut = _draw_object(ld, cls, cx, cy, r, rot, color, rng)
    mask = Image.new("L", (size, size), 0)
    md = ImageDraw.Draw(mask)
    if cls == "striped_disc":
        md.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        mask = layer.getchannel("A")
    if cut is not None:
        _, ox, oy, orad = cut
        md = ImageDraw.Draw(mask)
        md.ellipse([ox - orad, oy - orad, ox + orad, oy + orad], fill=0)
    bg.paste(layer.convert("RGB"), (0, 0), mask)
    if rng.uniform() < 0.3:
        bg = bg.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return bg


def generate(out: str | os.PathLike, num_classes: int = 10, train_per_class: int = 100,
             val_per_class: int = 30, size: int = 160, seed: int = 0, progress: bool = True) -> Path:
    """Write the dataset to ``out`` (atomically: built in a temp folder, then renamed)."""
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"--classes must be between 2 and {len(CLASSES)}")
    if size < 32:
        raise ValueError("--size must be at least 32")
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
            make_image(c, img_seed, size).save(d / f"{c}_{k:05d}.jpg", quality=90)
        (tmp / "dataset.json").write_text(json.dumps(
            {"name": "rsnet-edge built-in shapes", "classes": list(classes), "size": size, "seed": seed,
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
    a = ap.parse_args(argv)
    try:
        out = generate(a.out, a.classes, a.train_per_class, a.val_per_class, a.size, a.seed)
    except (ValueError, FileExistsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({a.classes} classes, {a.train_per_class}+{a.val_per_class} images per class)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
