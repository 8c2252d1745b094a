"""int8 calibration data: the real images each int8 entry point is calibrated on (``--calib DIR``,
``--calib-images N``), read once and kept only as large as the views need.

Images are spread evenly over the folder's sorted file list (every class folder of an ImageFolder is
represented), decoded one at a time, and each is kept as its eval-view pixels at the converted
resolutions (:func:`rsnet_edge.preprocess.eval_crop`, exactly the views of the full image): memory
is ``N`` small views, never ``N`` decoded photos. Unreadable images are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from converters.prepare import ConversionError
from rsnet_edge.preprocess import IMAGE_SUFFIXES, list_images

INT8_CALIB_IMAGES = 256   # --dtype int8: default number of calibration images
CALIB_BATCH = 16


class CalibrationError(ConversionError):
    """Calibration data missing, empty or unreadable (one line naming the folder)."""


@dataclass
class CalibImage:
    """One calibration image, kept only as large as its views need (never the decoded photo):
    ``crops`` are its eval-view pixels (uint8 ``r x r``, :func:`rsnet_edge.preprocess.eval_crop`)
    at the resolutions given when it was decoded; without them, ``image`` is the decoded image
    reduced (integer box filter) to no more than twice what the largest resolution needs."""
    crops: dict[tuple[int, float], Any]
    image: Any = None

    def crop(self, resolution: int, crop_pct: float):
        from rsnet_edge.preprocess import eval_crop

        got = self.crops.get((int(resolution), float(crop_pct)))
        if got is not None:
            return got
        if self.image is None:
            raise CalibrationError(f"calibration was decoded for resolutions "
                                   f"{sorted({r for r, _ in self.crops})}, not {resolution}")
        return eval_crop(self.image, resolution, crop_pct)


def decode_for_views(path: Path, resolutions: Sequence[int] | None, crop_pct: float) -> CalibImage:
    """Decode one image and keep only what its eval views need: the ``r x r`` crops at
    ``resolutions`` (exactly the views of the full image), or, without resolutions, the image
    reduced by the largest integer factor that keeps its shorter side at least what the largest
    possible resolution needs. Raises ImageError naming the file."""
    from rsnet_edge.manifest import MAX_RESOLUTION
    from rsnet_edge.preprocess import eval_crop, load_rgb

    im = load_rgb(path)
    if resolutions:
        return CalibImage({(int(r), float(crop_pct)): eval_crop(im, int(r), crop_pct) for r in resolutions})
    need = int(round(MAX_RESOLUTION / crop_pct))
    factor = min(im.size) // need
    return CalibImage({}, im.reduce(factor) if factor >= 2 else im)


@dataclass
class Calibration:
    folder: Path
    images: list[CalibImage]           # one per readable image, in file order
    files: list[Path]
    skipped: list[str] = field(default_factory=list)   # "file: reason" of unreadable images

    def facts(self) -> dict[str, Any]:
        return {"folder": self.folder.name, "images": len(self.images), "skipped": len(self.skipped)}


def calibration_files(folder: str | Path, n: int) -> list[Path]:
    """Up to ``n`` image files under ``folder`` (recursively), spread evenly over the sorted list so
    every class folder of an ImageFolder is represented. Raises CalibrationError naming the folder."""
    p = Path(folder)
    if n < 1:
        raise CalibrationError(f"--calib-images must be at least 1, got {n}")
    if not p.exists():
        raise CalibrationError(f"calibration folder {p} does not exist")
    if not p.is_dir():
        raise CalibrationError(f"calibration folder {p} is not a folder")
    try:
        files = list_images(p)
    except OSError as e:
        raise CalibrationError(f"calibration folder {p} cannot be read: {e.strerror or e}") from None
    if not files:
        raise CalibrationError(f"calibration folder {p} holds no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))}); pass the training images, "
                               f"e.g. DATA/train")
    if len(files) > n:
        idx = np.unique(np.linspace(0, len(files) - 1, n).round().astype(int))
        files = [files[i] for i in idx]
    return files


def load_calibration(folder: str | Path, n: int = INT8_CALIB_IMAGES,
                     resolutions: Sequence[int] | None = None, crop_pct: float = 0.875) -> Calibration:
    """Decode the calibration images once, one at a time, keeping of each only its eval views at
    ``resolutions`` (see :func:`decode_for_views`: memory is ``n`` views, not ``n`` photos).
    Unreadable images are skipped and counted (as training skips them); none readable is a
    CalibrationError naming the folder."""
    from rsnet_edge.preprocess import ImageError

    files = calibration_files(folder, n)
    images, used, skipped = [], [], []
    for f in files:
        try:
            images.append(decode_for_views(f, resolutions, crop_pct))
            used.append(f)
        except ImageError as e:
            skipped.append(str(e))
    if not images:
        raise CalibrationError(f"none of the {len(files)} calibration images in {Path(folder)} can be "
                               f"read (first: {skipped[0]})")
    return Calibration(Path(folder), images, used, skipped)


def calibration_batches(cal: Calibration, resolution: int, mean: Sequence[float], std: Sequence[float],
                        crop_pct: float, batch: int = CALIB_BATCH) -> Iterator[torch.Tensor]:
    """The eval views (rsnet_edge.preprocess) of the calibration images at one resolution."""
    from rsnet_edge.preprocess import normalize

    for i in range(0, len(cal.images), batch):
        yield torch.stack([normalize(im.crop(resolution, crop_pct), mean, std)
                           for im in cal.images[i:i + batch]])
