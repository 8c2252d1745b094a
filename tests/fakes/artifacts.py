"""Tiny RS-Net artifacts for the runtime/bench tests, built once and cached.

A MobileNetV2 (width 0.35, 4 classes, resolutions 96 and 64) whose BN sets differ per resolution and
whose classifier is set to class prototypes of the built-in shapes (so predictions vary across
images), converted with the project's own converters (``converters.pipeline.convert``). Conversions
take tens of seconds each on a small CPU, so the files are cached in
``$TMPDIR/rsnet-edge-test-artifacts-<key>`` where the key hashes everything that shapes them (see
:func:`sources`; any change to the library, the converters, the image generator or the lowering
packages' versions rebuilds them). Tests must copy a cached file before changing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESOLUTIONS = (96, 64)
CLASSES = ("disc", "ring", "square", "triangle")
#: What shapes the cached files, by rule rather than by name (modules get renamed and split): every
#: .py under these packages, these files, and the versions of the packages that do the lowering.
SOURCE_PACKAGES = ("rsnet_edge", "converters")
SOURCE_FILES = ("training/__init__.py", "training/synthetic.py", "tests/fakes/artifacts.py")
LOWERING_PACKAGES = ("torch", "executorch", "litert-torch", "ai-edge-litert", "numpy", "pillow")


def sources(root: Path = ROOT) -> list[str]:
    """Repository-relative paths of the files the cache key hashes."""
    files = {f for f in SOURCE_FILES if (root / f).is_file()}
    for pkg in SOURCE_PACKAGES:
        files |= {p.relative_to(root).as_posix() for p in (root / pkg).rglob("*.py")}
    return sorted(files)


def cache_key(root: Path = ROOT) -> str:
    from importlib import metadata

    h = hashlib.sha256()
    for s in sources(root):
        h.update(f"{s}\0{hashlib.sha256((root / s).read_bytes()).hexdigest()}\n".encode())
    for name in LOWERING_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{name}=={version}\n".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = Path(os.environ.get("RSNET_TEST_CACHE", tempfile.gettempdir()))
    d = base / f"rsnet-edge-test-artifacts-{cache_key()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _locked(d: Path):
    with open(d / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def images(d: Path | None = None, n_per_class: int = 3) -> list[Path]:
    """A few built-in shape images (JPEG files), labelled by their folder: d/images/<class>/*.jpg."""
    from training.synthetic import make_image

    d = (d or cache_dir()) / "images"
    out = []
    for c in CLASSES:
        (d / c).mkdir(parents=True, exist_ok=True)
        for k in range(n_per_class):
            p = d / c / f"{c}_{k}.jpg"
            if not p.exists():
                make_image(c, 7_000 + 31 * k + len(c), 112).save(p, quality=92)
            out.append(p)
    return out


def build_checkpoint(path: Path, seed: int = 0) -> Path:
    import torch

    from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD, save_checkpoint
    from rsnet_edge.models import create_model, param_counts, set_resolution
    from rsnet_edge.preprocess import eval_view, load_rgb

    torch.manual_seed(seed)
    model = create_model("mobilenet_v2", RESOLUTIONS, num_classes=len(CLASSES), width_mult=0.35).eval()
    pics = [(p.parent.name, load_rgb(p)) for p in images(path.parent)]
    with torch.no_grad():
        # BN statistics recalibrated on the images at each resolution (so each set is distinct and
        # activations stay in range), then a nearest-prototype classifier (class means of the features)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None                          # cumulative average
        for r in RESOLUTIONS:
            model(torch.stack([eval_view(im, r, IMAGENET_MEAN, IMAGENET_STD) for _, im in pics]))
        model.eval()
        set_resolution(model, RESOLUTIONS[0])                  # model.features skips the root hook
        x = torch.stack([eval_view(im, RESOLUTIONS[0], IMAGENET_MEAN, IMAGENET_STD) for _, im in pics])
        f = torch.nn.functional.adaptive_avg_pool2d(model.features(x), 1).flatten(1)
        mu = f.mean(0)
        labels = [c for c, _ in pics]
        proto = torch.stack([f[[i for i, c in enumerate(labels) if c == k]].mean(0) - mu for k in CLASSES])
        logits = (f - mu) @ proto.T
        w = proto * (3.0 / logits.std().clamp_min(1e-6))        # logits spread of a few units
        fc = model.classifier[-1]
        fc.weight.copy_(w)
        fc.bias.copy_(-(w @ mu))
    ckpt = {
        "arch": "mobilenet_v2", "arch_args": {"width_mult": 0.35, "num_classes": len(CLASSES)},
        "resolutions": list(RESOLUTIONS), "class_names": list(CLASSES),
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "crop_pct": 0.875,
        "state_dict": model.state_dict(),
        "metrics": {"96": {"top1": 75.0, "top5": 100.0}, "64": {"top1": 62.5, "top5": 100.0}},
        "madds": {"96": 10_000_000, "64": 4_500_000}, "params": param_counts(model),
    }
    save_checkpoint(ckpt, path)
    return path


def checkpoint() -> Path:
    d = cache_dir()
    p = d / "tiny.pt"
    with _locked(d):
        if not p.exists():
            build_checkpoint(p)
    return p


def artifact(backend: str, weights: str = "affine", resolutions=None) -> Path:
    """The cached ``tiny.<suffix>`` for ``backend`` ("executorch" | "tflite" | "onnx"), built on first
    use: a plain stock-runtime file (``affine``, or ``folded``); the compact fold-at-load form
    (``shared``) is ``tiny.<suffix>.rsfold`` where the backend has one (ONNX: a plain ``.onnx``)."""
    from converters import pipeline
    from rsnet_edge import backends

    spec = backends.get(backend)
    ck = checkpoint()
    d = cache_dir()
    tag = "" if weights in ("affine", "shared") and not resolutions else f".{weights}" + (
        "_" + "_".join(map(str, resolutions)) if resolutions else "")
    out = d / f"tiny{tag}{spec.shipped_suffix(weights)}"
    with _locked(d):
        if not out.exists() or not (out.parent / (out.name + ".manifest.json")).exists():
            pipeline.convert(backend, spec.converter_lower(), ck, out, resolutions=resolutions, weights=weights,
                             quiet=True)
    return out


def copy_with_sidecar(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """Copy an artifact and its manifest (renamed consistently) into ``dst_dir``."""
    dst = Path(dst_dir) / (name or src.name)
    shutil.copy(src, dst)
    side = src.with_name(src.name + ".manifest.json")
    if side.exists():
        shutil.copy(side, dst.with_name(dst.name + ".manifest.json"))
    return dst
