"""Data for RS-Net training: ImageFolder datasets and single-crop multi-resolution views.

Training view (paper 3.3, 4.1, Table 6): each image is decoded ONCE; ONE RandomResizedCrop
(area ``scale``-1 of the image, default 0.08-1 as the paper's ImageNet recipe; aspect 3/4-4/3) and ONE
horizontal flip are drawn; that same crop is resized
(bilinear) to every resolution. ``multi_crop=True`` draws an independent crop and flip per
resolution instead (the Table 6 ablation).

Validation view: :func:`rsnet_edge.preprocess.eval_view` at every resolution, decoded once.

Unreadable or corrupt images are skipped and counted (the collate function reports how many were
dropped from each batch), never a crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import functional as TF

from rsnet_edge.preprocess import BILINEAR, EvalViews, load_rgb, normalize

SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)


@dataclass(frozen=True)
class Crop:
    top: int
    left: int
    height: int
    width: int
    flip: bool


def draw_crop(img: Image.Image, scale: Sequence[float] = SCALE) -> Crop:
    """One RandomResizedCrop box (torchvision's sampling rule, area ``scale`` of the image) and one
    flip decision, drawn from torch's global RNG (the trainer seeds it per sample: see
    ``ImageFolderViews.__getitem__``)."""
    top, left, h, w = RandomResizedCrop.get_params(img, list(scale), list(RATIO))
    return Crop(top, left, h, w, bool(torch.rand(1) < 0.5))


def render_crop(img: Image.Image, crop: Crop, resolution: int) -> Image.Image:
    """Bilinear resize of the crop box to ``resolution``, flipped if the crop says so."""
    out = TF.resized_crop(img, crop.top, crop.left, crop.height, crop.width, [resolution, resolution],
                          interpolation=BILINEAR, antialias=True)
    return TF.hflip(out) if crop.flip else out


class TrainViews:
    """Dataset transform: one decoded image -> S normalised views from ONE crop (or S crops)."""

    def __init__(self, resolutions: Sequence[int], mean, std, multi_crop: bool = False,
                 scale: Sequence[float] = SCALE):
        self.resolutions = [int(r) for r in resolutions]
        self.mean, self.std = list(mean), list(std)
        self.multi_crop = multi_crop
        self.scale = crop_scale(scale[0])

    def crops(self, img: Image.Image) -> list[Crop]:
        if self.multi_crop:
            return [draw_crop(img, self.scale) for _ in self.resolutions]
        return [draw_crop(img, self.scale)] * len(self.resolutions)

    def __call__(self, img: Image.Image) -> list[torch.Tensor]:
        return [normalize(render_crop(img, c, r), self.mean, self.std)
                for c, r in zip(self.crops(img), self.resolutions)]


class ImageFolderViews(Dataset):
    """``DIR/<class>/*`` images -> (list of S view tensors, class index), or None if unreadable."""

    def __init__(self, root: str | os.PathLike, transform, classes: Sequence[str] | None = None):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder {root} does not exist")
        found, _ = find_classes(str(root))
        self.classes = list(classes) if classes is not None else found
        if classes is not None and set(found) - set(classes):
            raise ValueError(f"{root} has classes not in the training set: {sorted(set(found) - set(classes))[:5]}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        present = {c: self.class_to_idx[c] for c in found}
        self.samples = make_dataset(str(root), present, extensions=IMG_EXTENSIONS)
        if not self.samples:
            raise ValueError(f"no images found under {root}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key):
        """``key`` is an index, or ``(index, seed)``: then the transform's random draws (crop, flip)
        come from torch's RNG seeded with ``seed`` and the caller's RNG state is left untouched, so
        a sample's augmentation depends only on its seed, not on which worker or process loads it."""
        i, seed = key if isinstance(key, tuple) else (key, None)
        path, target = self.samples[i]
        try:
            img = load_rgb(path)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return None
        if seed is None:
            return self.transform(img), target
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self.transform(img), target


def collate_views(batch):
    """Stack S views; drop unreadable samples and report how many: (views, targets, n_skipped)."""
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return None, None, skipped
    s = len(good[0][0])
    views = [torch.stack([b[0][k] for b in good]) for k in range(s)]
    targets = torch.tensor([b[1] for b in good], dtype=torch.long)
    return views, targets, skipped


def crop_scale(min_area: float) -> tuple[float, float]:
    """The RandomResizedCrop area range ``(min_area, 1)``; ``min_area`` must be in (0, 1]."""
    if not 0 < float(min_area) <= 1:
        raise ValueError(f"--crop-scale must be in (0, 1], got {min_area}")
    return (float(min_area), 1.0)


def train_dataset(data_dir, resolutions, mean, std, multi_crop: bool = False,
                  scale: Sequence[float] = SCALE) -> ImageFolderViews:
    return ImageFolderViews(Path(data_dir) / "train", TrainViews(resolutions, mean, std, multi_crop, scale))


def val_dataset(data_dir, resolutions, mean, std, crop_pct: float, classes=None) -> ImageFolderViews:
    return ImageFolderViews(Path(data_dir) / "val", EvalViews(resolutions, mean, std, crop_pct), classes)
