"""Data for RS-Net training: ImageFolder datasets and single-crop multi-resolution views.

Training view (paper 3.3, 4.1, Table 6): each image is decoded ONCE; ONE RandomResizedCrop
(area ``scale``-1 of the image, default 0.08-1 as the paper's ImageNet recipe; aspect 3/4-4/3) and ONE
horizontal flip are drawn; that same crop is resized
(bilinear) to every resolution. ``multi_crop=True`` draws an independent crop and flip per
resolution instead (the Table 6 ablation).

Validation view: :func:`rsnet_edge.preprocess.eval_view` at every resolution, decoded once.

Unreadable or corrupt images are skipped and counted (the collate function reports how many were
dropped from each batch), never a crash.

What the trainer reads (``training.train``), and why it is deterministic:

* Data order (:class:`GlobalBatchSampler`): epoch ``e`` visits ``randperm(N)`` drawn from ``seed + e``
  (DistributedSampler's rule), cut into global batches of ``--batch-size`` (the tail that does not
  fill one is dropped). Under ``torchrun`` rank ``k`` of ``W`` takes the k-th contiguous slice of
  every global batch, so the concatenation of the ranks' batches IS the one-process batch, in the
  same order.
* Augmentation: every sample's crop and flip come from a seed derived from ``(seed, epoch, index)``
  (:func:`sample_seed`), not from a worker's RNG: the same image gets the same crop whatever the
  number of DataLoader workers or processes, and after a resume.
* ``--views device`` (:class:`MaxResolutionView`, :func:`expand_views`): a worker decodes and crops
  each image once and renders it at the LARGEST resolution only (uint8); the smaller views are made
  on the device with bilinear antialiased ``interpolate`` of that view. ``--views exact``
  (:class:`TrainViews`) resizes the crop to every resolution from the decoded image (paper 3.3).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler
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
    """Dataset transform: one decoded image -> S normalised views from ONE crop (or S crops).
    ``extra`` resolutions (``--teacher``'s own, when it is not a training resolution) are rendered
    from the same crop after the S views."""

    def __init__(self, resolutions: Sequence[int], mean, std, multi_crop: bool = False,
                 scale: Sequence[float] = SCALE, extra: Sequence[int] = ()):
        if multi_crop and extra:
            raise ValueError("a teacher sees the one crop every view comes from: not with --multi-crop")
        self.resolutions = [int(r) for r in resolutions] + [int(r) for r in extra]
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
                  scale: Sequence[float] = SCALE, extra: Sequence[int] = ()) -> ImageFolderViews:
    return ImageFolderViews(Path(data_dir) / "train", TrainViews(resolutions, mean, std, multi_crop, scale, extra))


def val_dataset(data_dir, resolutions, mean, std, crop_pct: float, classes=None) -> ImageFolderViews:
    return ImageFolderViews(Path(data_dir) / "val", EvalViews(resolutions, mean, std, crop_pct), classes)


# ------------------------------------------------------------------------------ sampling
def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one sample in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class GlobalBatchSampler(Sampler):
    """Yields this rank's share of each global batch as ``(index, sample_seed)`` pairs.

    Epoch ``e`` permutes the dataset with ``seed + e`` and cuts it into ``batches_per_epoch`` global
    batches of ``global_batch``; rank ``k`` gets the k-th contiguous slice of each. ``set_epoch(e,
    start)`` skips the first ``start`` batches (resume)."""

    def __init__(self, n: int, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 max_batches: int | None = None):
        self.n, self.global_batch, self.rank, self.world, self.seed = n, global_batch, rank, world, seed
        full = n // global_batch
        self.batches_per_epoch = full if full else 1  # a dataset smaller than one batch: one short batch
        if max_batches:
            self.batches_per_epoch = min(self.batches_per_epoch, max_batches)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def global_batch_indices(self, epoch: int, k: int) -> list[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        return perm[k * self.global_batch:(k + 1) * self.global_batch]

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        for k in range(self.start, self.batches_per_epoch):
            batch = perm[k * self.global_batch:(k + 1) * self.global_batch]
            mine = np.array_split(np.asarray(batch), self.world)[self.rank].tolist()
            yield [(i, sample_seed(self.seed, self.epoch, i)) for i in mine]


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one intra-op thread, numpy and python seeded from torch's seed."""
    torch.set_num_threads(1)  # S resizes per image; OpenMP threads in every worker oversubscribe
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def loader_generator(seed: int) -> torch.Generator:
    """A DataLoader's own generator: creating an iterator then draws its worker base seed from it
    instead of from torch's global RNG (whose state dropout uses and a resume restores)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# --------------------------------------------------------------------------- device views
class MaxResolutionView:
    """Worker-side transform of ``--views device``: ONE crop and flip rendered at the largest
    resolution only, as uint8 [3, R, R] (4x less to copy than float); see :func:`expand_views`."""

    def __init__(self, resolutions, scale=SCALE):
        self.resolution = max(int(r) for r in resolutions)
        self.scale = tuple(scale)

    def __call__(self, img) -> list[torch.Tensor]:
        return [TF.pil_to_tensor(render_crop(img, draw_crop(img, self.scale), self.resolution))]


def expand_views(x: torch.Tensor, resolutions, mean, std) -> list[torch.Tensor]:
    """uint8 [N, 3, R, R] at the largest resolution -> S normalised float views (highest first),
    the smaller ones by bilinear antialiased downsampling on x's device."""
    m = torch.tensor(mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    x = (x.float().div_(255) - m) / s  # normalising commutes with (weights-sum-to-one) resizing
    return [x if r == x.shape[-1] else
            F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
            for r in resolutions]
