"""Preprocessing, defined once: what training validated is what every runtime applies.

Evaluation view of resolution ``r`` (paper 4.1): bilinear resize of the shorter side to
``round(r / crop_pct)``, centre crop ``r x r``, scale to [0, 1], normalise with mean/std, CHW float.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

BILINEAR = InterpolationMode.BILINEAR


def load_rgb(path) -> Image.Image:
    """Decode an image file once, as RGB."""
    with Image.open(path) as im:
        return im.convert("RGB")


def normalize(img: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(img), list(mean), list(std))


def eval_view(img: Image.Image, resolution: int, mean: Sequence[float], std: Sequence[float],
              crop_pct: float = 0.875) -> torch.Tensor:
    """The validation view of one decoded image at one resolution: a [3, r, r] float tensor."""
    resized = TF.resize(img, int(round(resolution / crop_pct)), interpolation=BILINEAR, antialias=True)
    return normalize(TF.center_crop(resized, [resolution, resolution]), mean, std)


def eval_batch(images: Sequence[Image.Image], resolution: int, mean, std, crop_pct: float = 0.875,
               layout: str = "NCHW") -> np.ndarray:
    """A float32 batch in the artifact's layout, for runtimes that take numpy."""
    x = torch.stack([eval_view(im, resolution, mean, std, crop_pct) for im in images])
    if layout == "NHWC":
        x = x.permute(0, 2, 3, 1)
    return np.ascontiguousarray(x.numpy(), dtype=np.float32)


class EvalViews:
    """Dataset transform: one decoded image -> its validation view at every resolution."""

    def __init__(self, resolutions: Sequence[int], mean, std, crop_pct: float = 0.875):
        self.resolutions = [int(r) for r in resolutions]
        self.mean, self.std, self.crop_pct = list(mean), list(std), float(crop_pct)

    def __call__(self, img: Image.Image) -> list[torch.Tensor]:
        return [eval_view(img, r, self.mean, self.std, self.crop_pct) for r in self.resolutions]
