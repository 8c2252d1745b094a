"""Image decoding and preprocessing, defined once: what training validated is what every runtime applies.

Decoding (:func:`load_rgb`, the one decoder of training, evaluation, runtime, bench, demo and
verify): file path, PIL image or numpy HWC array -> 8-bit RGB; EXIF orientation applied, 16-bit
scaled (x/257), alpha and palette transparency composited on white, CMYK/LAB converted, images
over ``PIL.Image.MAX_IMAGE_PIXELS`` refused; every failure is one :class:`ImageError` naming the file.

Evaluation view of resolution ``r`` (paper 4.1): bilinear resize of the shorter side to
``round(r / crop_pct)``, centre crop ``r x r``, scale to [0, 1], normalise with mean/std, CHW float.
Its cost is bounded by the view, whatever the image's shape: when the whole resized image would be
huge (a 50000 x 1 strip becomes 12.8M x 256), only the crop's pixels are computed, with PIL's own
filter (:func:`eval_crop`); the Java twin (``Preprocess.toTensor``) always works that way.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

BILINEAR = InterpolationMode.BILINEAR


#: image file suffixes every folder reader accepts (predict, demo, verify, bench --data, calibration)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff", ".gif"})


def list_images(folder: str | os.PathLike) -> list:
    """Every image file under ``folder`` (recursively, by suffix), sorted by path."""
    from pathlib import Path

    return sorted(q for q in Path(folder).rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())


#: what a transparent pixel is composited on (white, as image viewers and browsers show it)
BACKGROUND = (255, 255, 255)


class ImageError(ValueError):
    """An image that cannot be decoded (missing, not an image, truncated, too large, unsupported
    array): one line naming the file or the value."""


def _name(src) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"


def _composite(im: Image.Image, background=BACKGROUND) -> Image.Image:
    """Any image with an alpha channel (RGBA, LA, PA, premultiplied, palette with transparency)
    -> RGB over ``background``."""
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _high_bit_to_rgb(im: Image.Image) -> Image.Image:
    """16-bit ('I;16*') and 32-bit integer ('I') grayscale: full 16-bit range 0..65535 -> 0..255
    (``convert('RGB')`` would clip every value above 255 to white). Float ('F'): [0, 1] if its
    maximum is at most 1, else [0, 255]."""
    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float64)
        finite = a[np.isfinite(a)]
        a = a * 255.0 if finite.size and finite.max() <= 1.0 else a
    else:
        a = a.astype(np.float64) / 257.0
    a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
    g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(g, "L").convert("RGB")


def to_rgb(im: Image.Image, background=BACKGROUND) -> Image.Image:
    """One decoded PIL image of any mode -> 8-bit RGB, correctly: EXIF orientation applied, 16-bit
    scaled (not saturated), alpha and palette transparency composited on ``background``, CMYK /
    YCbCr / LAB / 1-bit converted."""
    from PIL import ImageOps

    im = ImageOps.exif_transpose(im) or im
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        return _high_bit_to_rgb(im)
    if im.mode == "P" and "transparency" in im.info:
        return _composite(im, background)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite(im, background)
    if im.mode == "LAB":
        from PIL import ImageCms
        return ImageCms.applyTransform(im, ImageCms.buildTransformFromOpenProfiles(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"))
    return im.convert("RGB")


def array_to_rgb(a, what: str = "array", background=BACKGROUND) -> Image.Image:
    """A numpy image (a camera frame) -> RGB: ``HxW``, ``HxWx1`` (gray), ``HxWx3`` (RGB) or
    ``HxWx4`` (RGBA), dtype uint8 (0..255) or uint16 (0..65535). Anything else (CHW tensors,
    floats, empty arrays) is refused with one line: normalisation is the manifest's job."""
    a = np.asarray(a)
    if a.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{what}: dtype {a.dtype} is not supported (give uint8 HxWx3 RGB, "
                         f"e.g. a camera frame; or a file path / PIL image)")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        raise ImageError(f"{what}: shape {a.shape} looks channels-first; give HxWxC (HWC)")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))) or 0 in a.shape:
        raise ImageError(f"{what}: shape {a.shape} is not an image (expected HxW, HxWx1, HxWx3 or HxWx4)")
    if a.dtype == np.uint16:
        a = np.rint(a.astype(np.float64) / 257.0).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(a), "L").convert("RGB")
    if a.shape[2] == 4:
        return _composite(Image.fromarray(np.ascontiguousarray(a), "RGBA"), background)
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def load_rgb(src, background=BACKGROUND) -> Image.Image:
    """THE image decoder (training, evaluation, runtime, bench, demo, verify): a file path, PIL
    image or numpy array -> 8-bit RGB PIL image. Files: first frame; every mode PIL opens (see
    :func:`to_rgb`); images above ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (decompression bombs) are
    refused. Every failure is one :class:`ImageError` line naming the file."""
    import warnings

    from PIL import UnidentifiedImageError

    if isinstance(src, Image.Image):
        return to_rgb(src, background)
    if isinstance(src, np.ndarray):
        return array_to_rgb(src, background=background)
    if not isinstance(src, (str, os.PathLike)):
        raise ImageError(f"cannot read an image from a {type(src).__name__} (give a file path, a PIL "
                         f"image or a numpy HxWx3 uint8 array)")
    name = _name(src)
    if os.path.isdir(src):
        raise ImageError(f"{name} is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                im.load()
                return to_rgb(im, background)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(f"{name}: image too large (over {Image.MAX_IMAGE_PIXELS:,} pixels; refused "
                         f"as a possible decompression bomb)") from None
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image PIL can read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ImageError(f"{name}: cannot decode image (truncated or corrupt?): {first}") from None


def normalize(img: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(img), list(mean), list(std))


#: the most pixels the resized image of :func:`eval_view` may have before only its crop is computed
#: (unless the decoded image itself is larger): 4 Mpixel, far above any photo's resized view
MAX_RESIZED_PIXELS = 1 << 22


def resize_plan(width: int, height: int, resolution: int, crop_pct: float) -> tuple[int, int, int, int]:
    """``(resized width, resized height, crop left, crop top)`` of the eval view: torchvision's
    ``resize(img, round(r / crop_pct))`` (shorter side; the longer one ``int(s * long / short)``) and
    ``center_crop`` (offsets ``int(round((size - r) / 2))``)."""
    s = int(round(resolution / crop_pct))
    nw, nh = (s, int(s * height / width)) if width <= height else (int(s * width / height), s)
    return nw, nh, int(round((nw - resolution) / 2.0)), int(round((nh - resolution) / 2.0))


def _taps(in_size: int, out_size: int, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """PIL's antialiased bilinear filter (libImaging/Resample.c ``precompute_coeffs`` +
    ``normalize_coeffs_8bpc``) for outputs ``first .. first + n - 1`` of an ``in_size -> out_size``
    resize: the first input pixel of each output and its fixed-point weights (22 fraction bits)."""
    scale = float(in_size) / out_size
    fscale = max(scale, 1.0)
    ksize = int(np.ceil(fscale)) * 2 + 1
    centre = (np.arange(first, first + n, dtype=np.float64) + 0.5) * scale
    lo = np.maximum((centre - fscale + 0.5).astype(np.int64), 0)           # C (int): towards zero
    count = np.minimum((centre + fscale + 0.5).astype(np.int64), in_size) - lo
    k = np.zeros((n, ksize))
    total = np.zeros(n)
    for j in range(ksize):                                  # summed in PIL's order
        x = np.abs(((lo + j).astype(np.float64) - centre + 0.5) * (1.0 / fscale))
        k[:, j] = np.where((j < count) & (x < 1.0), 1.0 - x, 0.0)
        total = total + k[:, j]
    k = k / np.where(total == 0.0, 1.0, total)[:, None]
    return lo, (0.5 + k * (1 << 22)).astype(np.int64)


def _resample(a: np.ndarray, lo: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    """One separable pass over ``axis`` of an HxWxC uint8 array, rounded to 8 bits as PIL does."""
    acc = 1 << 21
    for j in range(w.shape[1]):
        idx = np.minimum(lo + j, a.shape[axis] - 1)          # taps past ``count`` weigh 0
        wj = w[:, j][:, None, None] if axis == 0 else w[:, j][None, :, None]
        acc = acc + np.take(a, idx, axis=axis).astype(np.int64) * wj
    return np.clip(acc >> 22, 0, 255).astype(np.uint8)


def _resized_crop(img: Image.Image, plan: tuple[int, int, int, int], r: int) -> Image.Image:
    """The ``r x r`` crop of the resized image, computing only the pixels inside the crop (memory
    and time of the view, not of the resize): PIL's filter, horizontal pass first, each pass rounded
    to 8 bits. Equal to PIL's whole resize then crop within one level (exactly where PIL resamples
    horizontally first; recent PIL starts with the vertical pass when it shrinks height more)."""
    nw, nh, left, top = plan
    a = np.asarray(img)
    ylo, wy = _taps(a.shape[0], nh, top, r)
    xlo, wx = _taps(a.shape[1], nw, left, r)
    y0, y1 = int(ylo[0]), int(min(a.shape[0], ylo[-1] + wy.shape[1]))
    rows = _resample(a[y0:y1], xlo, wx, axis=1)              # only the rows the crop needs
    return Image.fromarray(_resample(rows, ylo - y0, wy, axis=0), img.mode)


def eval_crop(img: Image.Image, resolution: int, crop_pct: float = 0.875) -> Image.Image:
    """The ``r x r`` pixels of the validation view (resized and centre-cropped, before scaling).

    Work is bounded by the view, not by the image's shape: when resizing the whole image would make
    more than :data:`MAX_RESIZED_PIXELS` pixels (and more than the image has: a 50000 x 1 strip
    would become 12.8M x 256), only the crop is computed (:func:`_resized_crop`)."""
    w, h = img.size
    plan = resize_plan(w, h, resolution, crop_pct)
    if plan[0] * plan[1] > max(MAX_RESIZED_PIXELS, w * h):
        return _resized_crop(img.convert("RGB"), plan, resolution)
    resized = TF.resize(img, int(round(resolution / crop_pct)), interpolation=BILINEAR, antialias=True)
    return TF.center_crop(resized, [resolution, resolution])


def eval_view(img: Image.Image, resolution: int, mean: Sequence[float], std: Sequence[float],
              crop_pct: float = 0.875) -> torch.Tensor:
    """The validation view of one decoded image at one resolution: a [3, r, r] float tensor
    (:func:`eval_crop`, scaled to [0, 1] and normalised)."""
    return normalize(eval_crop(img, resolution, crop_pct), mean, std)


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
