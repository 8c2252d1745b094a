"""One runtime interface over every artifact rsnet-edge makes.

``rsnet_edge.load(path)`` opens

* a checkpoint (``.pt``): the PyTorch RS-Net itself; it also serves *untrained* resolutions through
  interpolated BatchNorm (paper 4.3),
* an ExecuTorch program (``.pte``): one method per resolution (``forward_224`` ...),
* a LiteRT model (``.tflite``): one signature per resolution,
* an ONNX model (``.onnx``): one graph routed by the input size, serving every resolution,
* a Core ML package (``.mlpackage``): macOS only (one function per resolution),
* the compact fold-at-load form of an ExecuTorch or LiteRT program (``.pte.rsfold`` /
  ``.tflite.rsfold``): unpacked once into a cache (:mod:`rsnet_edge.rsfold`), then the stock runtime,

and returns a :class:`Classifier` with the same interface whatever the backend::

    clf = rsnet_edge.load("rs_mbv2.pte.rsfold")
    clf.resolutions                      # [224, 192, 160, 128, 96] (from the manifest)
    clf.set_resolution(128)              # never reloads the file
    clf.predict(["cat.jpg"], topk=3)     # [[("cat", 0.91), ("dog", 0.05), ("fox", 0.01)]]

Which runner opens a file is the backend registry's business (:mod:`rsnet_edge.backends`, runners in
:mod:`rsnet_edge.runners`). The manifest (``<artifact>.manifest.json``; see :mod:`rsnet_edge.manifest`,
formats in docs/formats.md) says which entry points exist and how to preprocess (mean/std, crop_pct,
layout); preprocessing is :func:`rsnet_edge.preprocess.eval_batch`, never re-derived here. An
artifact is refused with one :class:`RuntimeLoadError` line when it is missing, truncated or corrupt,
or when its manifest does not describe it (sha256 recorded at conversion, entry points absent from
the file, other backend, a sidecar that disagrees with the copy embedded in the artifact).

Switching resolution never reopens the file: each runner opens its artifact once in ``load`` and
loads every entry point lazily, once, on first use (``Classifier.stats`` counts both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from . import backends
from .cli import one_line
from .manifest import (Manifest, ManifestError, check_artifact, disagreement, entry_name, read_sidecar,
                       sidecar_path)
from .runners import Runner, RuntimeLoadError, TorchRunner, check_magic

__all__ = ["Classifier", "RuntimeLoadError", "Stats", "load", "open_artifact"]


@dataclass
class Stats:
    """How often the artifact file was opened and how often each entry point was loaded."""
    file_loads: int = 0
    entry_loads: dict[Any, int] | None = None
    switches: int = 0
    unpack_s: float | None = None          # RSFOLD: seconds to unpack (or to re-check the cache)
    unpack_reused: bool | None = None      # RSFOLD: the cache already held the folded program
    program: str | None = None             # RSFOLD: the folded program the stock runtime loaded

    def __post_init__(self) -> None:
        if self.entry_loads is None:
            self.entry_loads = {}


# ============================================================================== classifier
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """The loaded artifact: same interface for every backend (see the module docstring)."""

    def __init__(self, path: Path, manifest: Manifest, runner: Runner, stats: Stats,
                 embedded: Manifest | None = None):
        self.path, self.manifest, self.runner, self.stats = path, manifest, runner, stats
        self.embedded = embedded          # the copy embedded in the artifact (None if not read)
        self.resolution = int(manifest.default_resolution)
        self.resident = "all"             # "one": only the entry in use stays loaded (rsnet_edge.load)

    def __repr__(self) -> str:
        return (f"Classifier({self.path.name!r}, backend={self.backend_name}, "
                f"resolutions={self.resolutions}, resolution={self.resolution})")

    @property
    def backend_name(self) -> str:
        return self.runner.backend

    @property
    def program(self) -> Path:
        """The file the stock runtime opened: the artifact, or (RSFOLD) its unpacked program."""
        return Path(self.stats.program) if self.stats.program else self.path

    def entry_names(self) -> set[str]:
        """The entry points the artifact itself has (``forward_<r>``, the default ``forward``)."""
        return self.runner.entry_names()

    def run_entry(self, name: str, x: np.ndarray) -> np.ndarray:
        """Logits of one named entry point (as the manifest or the file names it) for a preprocessed
        batch, one image at a time where the entry has a static batch of one."""
        if self.resident == "one":
            self.runner.keep_only(name)
        return self._batched(lambda xb: self.runner.run_entry(name, xb), x)

    def close(self) -> None:
        """Release the runtime's memory now (it is released anyway when the object is dropped)."""
        self.runner.close()

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def resolutions(self) -> list[int]:
        return list(self.manifest.resolutions)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    def _check(self, resolution: int) -> int:
        from .manifest import check_resolution

        r = check_resolution(resolution)          # the one rule: an integer in 16..1024
        if not self.runner.supports(r):
            raise ValueError(f"resolution {r} is not served by {self.path.name} (it has {self.resolutions})")
        return r

    def set_resolution(self, resolution: int) -> int:
        """Make ``resolution`` the default for :meth:`predict`. Cheap: no file access."""
        r = self._check(resolution)
        if r != self.resolution:
            self.stats.switches += 1
        self.resolution = r
        return r

    # ------------------------------------------------------------------ lower level
    def preprocess(self, images: Sequence[Any], resolution: int | None = None) -> np.ndarray:
        """Decoded/loaded images -> the float32 batch the entry point takes (manifest's recipe)."""
        from .preprocess import eval_batch, load_rgb

        r = self.resolution if resolution is None else self._check(resolution)
        pil = [load_rgb(im) for im in images]      # paths, PIL images, HWC uint8 arrays
        inp = self.manifest.input
        return eval_batch(pil, r, inp.mean, inp.std, inp.crop_pct, inp.layout)

    def dummy_input(self, resolution: int | None = None, batch: int = 1) -> np.ndarray:
        r = self.resolution if resolution is None else self._check(resolution)
        shape = (batch, r, r, 3) if self.manifest.input.layout == "NHWC" else (batch, 3, r, r)
        return np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def run(self, x: np.ndarray, resolution: int | None = None) -> np.ndarray:
        """Logits ``[N, classes]`` for a preprocessed batch (split into single images where the
        artifact's entry points have a static batch of one)."""
        r = self.resolution if resolution is None else self._check(resolution)
        if self.resident == "one":
            self.runner.keep_only(entry_name(r))
        return self._batched(lambda xb: self.runner.run(r, xb), x)

    def _batched(self, run, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        fb = self.runner.fixed_batch
        if fb is None or x.shape[0] == fb:
            return run(x)
        return np.concatenate([run(x[i:i + 1]) for i in range(x.shape[0])])

    # ------------------------------------------------------------------ high level
    def predict_proba(self, images: Sequence[Any], resolution: int | None = None) -> np.ndarray:
        return _softmax(self.run(self.preprocess(images, resolution), resolution))

    def predict(self, images: Any, resolution: int | None = None, topk: int = 5
                ) -> list[list[tuple[str, float]]]:
        """Per image, the ``topk`` (class_name, probability) pairs, most likely first.

        ``images``: one image or a list of them; an image is a file path, a PIL image (any mode:
        16-bit, palette, alpha, CMYK and EXIF orientation are handled by
        :func:`rsnet_edge.preprocess.load_rgb`) or a numpy ``HxWx3`` RGB ``uint8`` array (a camera
        frame; ``HxW`` gray, ``HxWx4`` RGBA and ``uint16`` too); a ``NxHxWxC`` array is a batch.
        Raises ``ImageError`` (a ValueError) naming the file for an unreadable image."""
        if isinstance(images, (str, os.PathLike)) or hasattr(images, "convert"):
            images = [images]
        elif isinstance(images, np.ndarray):      # one HxWxC frame, or a batch NxHxWxC
            images = list(images) if images.ndim == 4 else [images]
        images = list(images)
        if not images:
            return []
        p = self.predict_proba(images, resolution)
        names = self.manifest.class_names
        if p.shape[1] != len(names):
            raise RuntimeLoadError(f"{self.path.name} outputs {p.shape[1]} classes but its manifest "
                                   f"names {len(names)}: re-convert from a checkpoint whose "
                                   f"class_names match its classifier")
        k = max(1, min(int(topk), p.shape[1]))
        out = []
        for row in p:
            idx = np.argsort(-row, kind="stable")[:k]
            out.append([(names[i], float(row[i])) for i in idx])
        return out


# =================================================================================== load
def _parse_embedded(path: Path, raw: Any) -> Manifest | None:
    if raw is None:
        return None
    try:
        return Manifest.from_json(raw)
    except ManifestError as e:
        raise RuntimeLoadError(f"{path.name}: the manifest embedded in the artifact is invalid: "
                               f"{one_line(e)}") from None


def _check_file_magic(path: Path, backend: backends.Backend) -> None:
    if backend.magic is None:                    # nothing to check (ONNX, a Core ML folder)
        return
    with open(path, "rb") as f:
        check_magic(f.read(8), backend, path.name)


def _load_torch(path: Path, resolutions: Iterable[int] | None, stats: Stats) -> Classifier:
    from .checkpoint import CheckpointError, load_checkpoint, manifest_for, model_from_checkpoint

    try:
        ckpt = load_checkpoint(path)
        model = model_from_checkpoint(ckpt, interpolate=True)
        manifest = manifest_for(ckpt, "torch", resolutions=list(resolutions) if resolutions else None,
                                checkpoint_path=path)
    except (CheckpointError, ValueError) as e:
        raise RuntimeLoadError(one_line(e)) from None
    stats.file_loads += 1
    manifest.artifact = {"file": path.name, "sha256": manifest.checkpoint.get("sha256"),
                         "size_bytes": path.stat().st_size}
    return Classifier(path, manifest, TorchRunner(path, manifest, stats, model), stats)


def backend_of(path: str | os.PathLike) -> backends.Backend:
    """The registry entry for an artifact path (an RSFOLD file: the backend it unpacks to)."""
    p = Path(path)
    if backends.is_rsfold(p):
        from .rsfold import RsfoldError, backend_of as rsfold_backend
        try:
            return rsfold_backend(p)
        except RsfoldError as e:
            raise RuntimeLoadError(one_line(e)) from None
    b = backends.for_suffix(p.suffix)
    if b is None:
        raise RuntimeLoadError(f"{p.name}: unknown artifact type {p.suffix or '(no suffix)'} "
                               f"(expected one of {', '.join(backends.known_suffixes())})")
    return b


RESIDENT = ("all", "one")


def load(path: str | os.PathLike, *, verify: bool = True, resolutions: Iterable[int] | None = None,
         num_threads: int | None = None, cache: str | os.PathLike | None = None,
         resident: str = "all") -> Classifier:
    """Open an artifact (``.pt``, ``.pte``, ``.tflite``, ``.onnx``, ``.mlpackage``, or a compact
    ``.pte.rsfold`` / ``.tflite.rsfold``).

    A compact RSFOLD artifact's programs (one per resolution) are unpacked into ``cache`` (default
    :func:`rsnet_edge.cache.cache_dir`) when first needed and loaded by the stock runtime; later
    loads reuse them after checking their sha256.
    ``resident``: ``"all"`` keeps every entry it has run loaded (a switch costs nothing after the
    first use of each entry); ``"one"`` keeps only the entry in use (its program and packed weights)
    and releases the previous one on a switch: about one model's memory instead of S, for a switch
    that costs about one single-resolution load (docs/bench.md measures both).
    ``verify`` checks the artifact's sha256 against its manifest (refuses a mismatch) and that the
    sidecar agrees with the manifest embedded in the artifact.
    ``resolutions`` (checkpoints only) adds served resolutions, untrained ones by interpolated BN.
    ``num_threads`` (LiteRT, ONNX Runtime) sets the runtime's thread count.
    Raises :class:`RuntimeLoadError` (a ValueError) with one clear line.
    """
    return open_artifact(path, verify=verify, resolutions=resolutions, num_threads=num_threads,
                         cache=cache, resident=resident)


def _sidecar(p: Path, spec: backends.Backend | None, verify: bool) -> Manifest | None:
    side = sidecar_path(p)
    if not (side.exists() or side.is_symlink()):
        return None
    try:
        sidecar = read_sidecar(p)
    except ManifestError as e:
        raise RuntimeLoadError(one_line(e)) from None          # names the sidecar
    except OSError as e:
        raise RuntimeLoadError(f"{side.name}: cannot read it ({e.strerror or e})") from None
    if spec is not None and sidecar.backend != spec.name:
        raise RuntimeLoadError(f"{p.name}: its manifest describes a {sidecar.backend} artifact, "
                               f"not {spec.name} ({side.name} belongs to another file?)")
    if verify:                                   # before the native loader sees the bytes
        try:
            check_artifact(sidecar, p)
        except ManifestError as e:
            raise RuntimeLoadError(one_line(e)) from None
    return sidecar


def open_artifact(path: str | os.PathLike, *, verify: bool = True, resolutions: Iterable[int] | None = None,
                  num_threads: int | None = None, cache: str | os.PathLike | None = None,
                  runnable: bool = True, resident: str = "all") -> Classifier:
    """:func:`load`; with ``runnable=False`` an artifact whose runtime cannot run on this machine
    (Core ML off macOS) is still opened for inspection (entry points, embedded manifest)."""
    p = Path(path)
    if resident not in RESIDENT:
        raise RuntimeLoadError(f"resident={resident!r}: expected one of {', '.join(RESIDENT)}")
    rsfold = backends.is_rsfold(p)
    spec = None if rsfold else backend_of(p)   # RSFOLD: its header says
    if not p.exists():
        raise RuntimeLoadError(f"{p} does not exist")
    stats = Stats()
    if spec is not None and spec.name == "torch":
        clf = _load_torch(p, resolutions, stats)
        clf.resident = resident
        return clf
    if resolutions:
        raise RuntimeLoadError(f"{p.name}: only checkpoints serve extra resolutions (the artifact's "
                               f"entry points are fixed at conversion)")
    if not (spec is not None and spec.directory) and (not p.is_file() or p.stat().st_size == 0):
        raise RuntimeLoadError(f"{p.name} is empty or not a file (truncated?)")
    sidecar = _sidecar(p, spec, verify)
    if rsfold:                                   # fold at load: programs unpacked when first needed
        from .programs import ProgramSet
        from .rsfold import Container, RsfoldError
        try:
            box = Container.open(p)
        except RsfoldError as e:
            raise RuntimeLoadError(one_line(e)) from None
        spec = box.backend
        if sidecar is not None and sidecar.backend != spec.name:
            raise RuntimeLoadError(f"{p.name}: its manifest describes a {sidecar.backend} artifact, "
                                   f"but it unpacks to {spec.name}")
        try:
            runner: Runner = ProgramSet(p, box, spec, sidecar, stats, cache, num_threads)
        except OSError as e:                     # the cache folder (rsnet_edge.cache.CacheError)
            raise RuntimeLoadError(f"{p.name}: {one_line(e)}") from None
    else:
        _check_file_magic(p, spec)
        runner = spec.runtime_class()(p, sidecar, stats, num_threads=num_threads, runnable=runnable)
    try:
        return _finish(p, runner, sidecar, spec, stats, verify, resident)
    except BaseException:
        runner.close()
        raise


def _finish(p: Path, runner: Runner, sidecar: Manifest | None, spec: backends.Backend, stats: Stats,
            verify: bool, resident: str) -> Classifier:
    embedded = None
    if sidecar is None or verify:
        try:
            embedded = _parse_embedded(p, runner.embedded_manifest())
        except RuntimeLoadError:
            raise
        except Exception as e:
            raise RuntimeLoadError(f"{p.name}: cannot read the embedded manifest: {one_line(e)}") from None
    if sidecar is None and embedded is None:
        raise RuntimeLoadError(f"{p.name}: no manifest (expected {sidecar_path(p).name} beside it, "
                               f"and none is embedded)")
    if sidecar is not None and embedded is not None:
        why = disagreement(sidecar, embedded)
        if why:
            raise RuntimeLoadError(f"{p.name}: {sidecar_path(p).name} disagrees with the manifest "
                                   f"embedded in the artifact ({why} differ)")
    manifest = sidecar or embedded
    if manifest.backend != spec.name:
        raise RuntimeLoadError(f"{p.name}: its manifest describes a {manifest.backend} artifact, "
                               f"not {spec.name}")
    runner.manifest = manifest
    have = runner.entry_names()
    missing = [e.entry for e in manifest.entries if e.entry not in have]
    if missing:
        raise RuntimeLoadError(f"{p.name}: manifest lists entry point(s) {', '.join(missing)} that the "
                               f"artifact does not have (it has {', '.join(sorted(have)) or 'none'})")
    clf = Classifier(p, manifest, runner, stats, embedded)
    clf.resident = resident
    if resident == "one":
        runner.keep_only(entry_name(clf.resolution))
    return clf
