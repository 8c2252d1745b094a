"""The built-in images: one drawn object of a class (shapes), deterministic by seed.

The drawing lives in the library core so that ``rsnet_edge.demo`` (no dataset at hand) and
``training.synthetic`` (the built-in dataset) make the very same images. Each image shows one object
of its class at a random position, rotation and colour on a random background. Some classes differ
only in fine detail (striped vs plain disc, ring vs disc, 5- vs 8-point star, hexagon vs 8-point star),
so resolution matters: a model trained at one resolution loses accuracy at a much lower one.

Two styles:

- ``clean`` (default): the object spans 50-90% of the image side, its colour is at least 100 (of
  255) away in luminance from the background, which is a soft gradient or blotches with mild noise;
  no distractors. A small MobileNetV2 learns it from scratch in a few CPU minutes (the quickstart).
- ``cluttered`` (the look before issue 14): 35-90% of the side, any colour (it can nearly vanish
  into the background), striped backgrounds (easily confused with the striped disc), 0-3 distractor
  strokes, blur on 30% of images. From scratch it stays near chance for hundreds of SGD steps.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

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


STYLES = ("clean", "cluttered")


def _luma(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _background(rng: np.random.Generator, size: int, style: str = "cluttered") -> Image.Image:
    if style == "clean":  # gradient or blotches (no stripes), two colours of similar luminance
        kind = 2 * rng.integers(2)
        c0 = rng.integers(0, 256, 3)
        c1 = np.clip(c0 + rng.integers(-60, 61, 3), 0, 255)
    else:
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
    img += rng.normal(0, 4 if style == "clean" else 8, img.shape)
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


def _contrasting_colour(rng: np.random.Generator, bg: Image.Image) -> tuple[int, int, int]:
    """A random colour at least 100 away in luminance from the background's mean colour."""
    mean_luma = _luma(np.asarray(bg, dtype=np.float64).reshape(-1, 3).mean(0))
    while True:
        c = rng.integers(0, 256, 3)
        if abs(_luma(c) - mean_luma) >= 100:
            return tuple(int(v) for v in c)


def make_image(cls: str, seed: int, size: int = 160, style: str = "clean") -> Image.Image:
    """One deterministic image of class ``cls`` in ``style`` (see the module docstring)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r} (expected one of {STYLES})")
    rng = np.random.default_rng(seed)
    bg = _background(rng, size, style)
    d = ImageDraw.Draw(bg)
    if style == "clean":
        r = rng.uniform(0.5, 0.9) * size / 2
    else:
        for _ in range(rng.integers(0, 4)):  # distractor strokes
            p = rng.uniform(0, size, 4).tolist()
            d.line(p, fill=tuple(rng.integers(0, 256, 3).tolist()), width=int(rng.integers(1, 4)))
        r = rng.uniform(0.35, 0.9) * size / 2
    cx, cy = rng.uniform(r, size - r, 2).tolist()
    rot = rng.uniform(0, 2 * math.pi)
    color = _contrasting_colour(rng, bg) if style == "clean" else tuple(rng.integers(30, 256, 3).tolist())
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
    if style == "cluttered" and rng.uniform() < 0.3:
        bg = bg.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return bg
