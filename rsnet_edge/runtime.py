"""One runtime interface over every artifact rsnet-edge makes.

``rsnet_edge.load(path)`` opens

* a checkpoint (``.pt``): the PyTorch RS-Net itself; it also serves *untrained* resolutions through
  interpolated BatchNorm (paper 4.3),
* an ExecuTorch program (``.pte``): one method per resolution (``forward_224`` ...),
* a LiteRT model (``.tflite``): one signature per resolution,
* an ONNX model (``.onnx``): one graph serving one resolution (ONNX has no named methods),
* a Core ML package (``.mlpackage``): macOS only (one function per resolution),

and returns a :class:`Classifier` with the same interface whatever the backend::

    clf = rsnet_edge.load("rs_mbv2.pte")
    clf.resolutions                      # [224, 192, 160, 128, 96] (from the manifest)
    clf.set_resolution(128)              # never reloads the file
    clf.predict(["cat.jpg"], topk=3)     # [[("cat", 0.91), ("dog", 0.05), ("fox", 0.01)]]

The manifest (``<artifact>.manifest.json``; see :mod:`rsnet_edge.manifest`) says which entry points
exist and how to preprocess (mean/std, crop_pct, layout); preprocessing is
:func:`rsnet_edge.preprocess.eval_batch`, never re-derived here. An artifact is refused with one
:class:`RuntimeLoadError` line when it is missing, truncated or corrupt, or when its manifest does
not describe it (sha256 recorded at conversion, entry points absent from the file, other backend).

Switching resolution never reopens the file: each backend opens its artifact once in ``load`` and
loads every entry point lazily, once, on first use (``Classifier.stats`` counts both).
"""

from __future__ import annotations

import importlib

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .manifest import Manifest, ManifestError, check_artifact, entry_name, read_sidecar, sidecar_path

#: where the converters embed the manifest (same names as converters.prepare.MANIFEST_KEY and
#: ET_MANIFEST_METHOD; the runtime does not import the converters)
TFLITE_MANIFEST_METADATA = "rsnet_edge.manifest"
ET_MANIFEST_METHOD = "manifest_json"

SUFFIXES = {".pt": "torch", ".pth": "torch", ".pte": "executorch", ".tflite": "tflite",
            ".onnx": "onnx", ".mlpackage": "coreml", ".rsfold": "rsfold"}
#: what an RSFOLD compact artifact unpacks to (rsnet_edge.rsfold header "inner")
RSFOLD_INNER = {"pte": "executorch", "tflite": "tflite"}


class RuntimeLoadError(ValueError):
    """An artifact that cannot be served: missing, corrupt, truncated, or not what its manifest says.
    The message is one line, ready to print as ``error: ...``."""


def _one_line(e: BaseException | str) -> str:
    s = str(e).strip()
    s = s.splitlines()[0].strip() if s else (type(e).__name__ if isinstance(e, BaseException) else "")
    return s


@dataclass
class Stats:
    """How often the artifact file was opened and how often each entry point was loaded."""
    file_loads: int = 0
    entry_loads: dict[int, int] | None = None
    switches: int = 0
    unpack_s: float | None = None          # RSFOLD: seconds to unpack (or to re-check the cache)
    unpack_reused: bool | None = None      # RSFOLD: the cache already held the folded program
    program: str | None = None             # RSFOLD: the folded program the stock runtime loaded

    def __post_init__(self) -> None:
        if self.entry_loads is None:
            self.entry_loads = {}


# ================================================================================ backends
class _Backend:
    """Opens the artifact once; ``run(resolution, x)`` -> logits ``[N, classes]`` (numpy)."""

    name = "?"
    fixed_batch: int | None = 1       # entry points exported with a static batch of 1

    def __init__(self, path: Path, manifest: Manifest, stats: Stats):
        self.path, self.manifest, self.stats = path, manifest, stats

    def entry_names(self) -> set[str]:
        raise NotImplementedError

    def supports(self, resolution: int) -> bool:
        return resolution in self.manifest.resolutions

    def embedded_manifest(self) -> str | bytes | None:
        """The manifest JSON stored inside the artifact, if the format carries one."""
        return None

    def run(self, resolution: int, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _count_entry_load(self, resolution: int) -> None:
        self.stats.entry_loads[resolution] = self.stats.entry_loads.get(resolution, 0) + 1


class TorchBackend(_Backend):
    """The checkpoint itself (eval mode, interpolated BN allowed for untrained resolutions)."""

    name = "torch"
    fixed_batch = None

    def __init__(self, path, manifest, stats, model):
        super().__init__(path, manifest, stats)
        self.model = model

    def entry_names(self) -> set[str]:
        return {e.entry for e in self.manifest.entries}

    def supports(self, resolution: int) -> bool:
        return int(resolution) >= 16          # any size: untrained ones via interpolated BN

    def run(self, resolution, x):
        import torch

        if resolution not in self.stats.entry_loads:      # BN set chosen by the input size (hook)
            self._count_entry_load(resolution)
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).float().numpy()


def _require(module: str, path: Path, what: str, extra: str):
    """Import a backend's runtime module, or refuse the artifact with one line saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeLoadError(f"cannot open {path.name}: {what} is not installed "
                               f"(pip install 'rsnet-edge[{extra}]'): {_one_line(e)}") from None


class ExecuTorchBackend(_Backend):
    """``Runtime.get().load_program(path)`` once; each ``forward_<r>`` method loaded once, lazily."""

    name = "executorch"

    def __init__(self, path, manifest, stats):
        super().__init__(path, manifest, stats)
        Runtime = _require("executorch.runtime", path, "the ExecuTorch runtime", "executorch").Runtime
        try:
            self.program = Runtime.get().load_program(path)
        except Exception as e:  # the pybindings raise RuntimeError/ValueError for bad flatbuffers
            raise RuntimeLoadError(f"{path.name} is not a loadable ExecuTorch program (truncated or "
                                   f"corrupt?): {_one_line(e)}") from None
        stats.file_loads += 1
        self.methods: dict[str, Any] = {}

    def entry_names(self) -> set[str]:
        return set(self.program.method_names) - {ET_MANIFEST_METHOD}

    def embedded_manifest(self):
        if ET_MANIFEST_METHOD not in self.program.method_names:
            return None
        out = self.program.load_method(ET_MANIFEST_METHOD).execute([])
        return out[0] if out else None

    def _method(self, resolution: int):
        name = entry_name(resolution)
        m = self.methods.get(name)
        if m is None:
            try:
                m = self.program.load_method(name)
            except Exception as e:
                raise RuntimeLoadError(f"{self.path.name}: cannot load method {name}: "
                                       f"{_one_line(e)}") from None
            if m is None:
                raise RuntimeLoadError(f"{self.path.name} has no method {name}")
            self.methods[name] = m
            self._count_entry_load(resolution)
        return m

    def run(self, resolution, x):
        import torch

        out = self._method(resolution).execute([torch.from_numpy(x)])
        return out[0].float().numpy() if hasattr(out[0], "numpy") else np.asarray(out[0])


class TFLiteBackend(_Backend):
    """One LiteRT ``Interpreter`` for the file; one signature runner per resolution, made once."""

    name = "tflite"

    def __init__(self, path, manifest, stats, num_threads: int | None = None):
        super().__init__(path, manifest, stats)
        Interpreter = _require("ai_edge_litert.interpreter", path, "the LiteRT runtime", "tflite").Interpreter
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.signatures = dict(self.interpreter.get_signature_list())
        except Exception as e:
            raise RuntimeLoadError(f"{path.name} is not a loadable LiteRT model (truncated or "
                                   f"corrupt?): {_one_line(e)}") from None
        stats.file_loads += 1
        self.runners: dict[str, tuple[Any, str, str]] = {}

    def entry_names(self) -> set[str]:
        return set(self.signatures)

    def embedded_manifest(self):
        from ai_edge_litert import schema_py_generated as fb

        data = self.path.read_bytes()
        model = fb.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            md = model.Metadata(i)
            if md.Name().decode() != TFLITE_MANIFEST_METADATA:
                continue
            buf = model.Buffers(md.Buffer())
            if buf.Offset() > 1:                       # stored after the flatbuffer (large models)
                return bytes(data[buf.Offset():buf.Offset() + buf.Size()])
            return buf.DataAsNumpy().tobytes() if buf.DataLength() else None
        return None

    def _runner(self, resolution: int):
        name = entry_name(resolution)
        r = self.runners.get(name)
        if r is None:
            try:
                runner = self.interpreter.get_signature_runner(name)
            except Exception as e:
                raise RuntimeLoadError(f"{self.path.name}: no signature {name}: {_one_line(e)}") from None
            inputs = list(runner.get_input_details())
            outputs = list(self.signatures[name].get("outputs", []))
            if len(inputs) != 1:
                raise RuntimeLoadError(f"{self.path.name}: signature {name} takes {len(inputs)} inputs, "
                                       f"expected one image tensor")
            r = (runner, inputs[0], outputs[0] if outputs else "")
            self.runners[name] = r
            self._count_entry_load(resolution)
        return r

    def run(self, resolution, x):
        runner, in_name, out_name = self._runner(resolution)
        out = runner(**{in_name: x})
        y = out[out_name] if out_name in out else next(iter(out.values()))
        return np.asarray(y, dtype=np.float32)


class OnnxBackend(_Backend):
    """One ``onnxruntime.InferenceSession`` (CPU, full graph optimisation) over the whole model.

    An rsnet-edge ``.onnx`` routes by input size (nested ``If`` on H, see converters/onnx.py), so
    one session serves every entry point of the manifest: switching resolution is feeding another
    size. With ``weights: shared`` ONNX Runtime folds each BN (Mul+Add) into its conv while it
    creates the session; the session creation time is the load-time fold cost."""

    name = "onnx"

    def __init__(self, path, manifest, stats, num_threads: int | None = None):
        super().__init__(path, manifest, stats)
        ort = _require("onnxruntime", path, "onnxruntime", "onnx")
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # no busy-waiting worker threads between runs: they would steal the cores from whatever
            # runs next (the app's own work, another model, the bench's other artifacts)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if num_threads:
                opts.intra_op_num_threads = int(num_threads)
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise RuntimeLoadError(f"{path.name} is not a loadable ONNX model (truncated or corrupt?): "
                                   f"{_one_line(e)}") from None
        stats.file_loads += 1
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise RuntimeLoadError(f"{path.name}: expected one input and one output, found "
                                   f"{len(self.inputs)} and {len(self.outputs)}")
        self.seen: set[int] = set()

    def embedded_manifest(self):
        meta = self.session.get_modelmeta().custom_metadata_map
        return meta.get(TFLITE_MANIFEST_METADATA)

    def entry_names(self) -> set[str]:
        entries = self.manifest.entries
        shape = self.session.get_inputs()[0].shape              # [1, 3, "H", "W"] when routed
        if len(entries) == 1 or not all(isinstance(d, int) for d in shape[2:]):
            return {e.entry for e in entries}
        return set()

    def run(self, resolution, x):
        if resolution not in self.seen:
            self.seen.add(resolution)
            self._count_entry_load(resolution)
        return np.asarray(self.session.run([self.outputs[0]], {self.inputs[0]: x})[0], dtype=np.float32)


class CoreMLBackend(_Backend):
    """A Core ML multifunction ``.mlpackage`` (one function per resolution). macOS only."""

    name = "coreml"

    def __init__(self, path, manifest, stats):
        super().__init__(path, manifest, stats)
        if platform.system() != "Darwin":
            raise RuntimeLoadError(f"{path.name}: Core ML packages run only on macOS (this is "
                                   f"{platform.system()}); use the .pte or .tflite artifact here")
        ct = _require("coremltools", path, "coremltools", "coreml")
        self.ct = ct
        self.models: dict[str, Any] = {}
        try:   # validate the package once; functions are compiled lazily per resolution
            self.spec = ct.utils.load_spec(str(path))
        except Exception as e:
            raise RuntimeLoadError(f"{path.name} is not a readable Core ML package: {_one_line(e)}") from None
        stats.file_loads += 1

    def entry_names(self) -> set[str]:
        desc = self.spec.description
        names = {f.name for f in getattr(desc, "functions", [])}
        return names or {e.entry for e in self.manifest.entries}

    def run(self, resolution, x):
        name = entry_name(resolution)
        m = self.models.get(name)
        if m is None:
            try:
                m = self.ct.models.MLModel(str(self.path), function_name=name)
            except Exception as e:
                raise RuntimeLoadError(f"{self.path.name}: cannot load function {name}: "
                                       f"{_one_line(e)}") from None
            self.models[name] = m
            self._count_entry_load(resolution)
        in_name = m.get_spec().description.input[0].name
        out = m.predict({in_name: x})
        return np.asarray(next(iter(out.values())), dtype=np.float32)


# ============================================================================== classifier
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """The loaded artifact: same interface for every backend (see the module docstring)."""

    def __init__(self, path: Path, manifest: Manifest, backend: _Backend, stats: Stats):
        self.path, self.manifest, self.backend, self.stats = path, manifest, backend, stats
        self.resolution = int(manifest.default_resolution)

    def __repr__(self) -> str:
        return (f"Classifier({self.path.name!r}, backend={self.backend_name}, "
                f"resolutions={self.resolutions}, resolution={self.resolution})")

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def resolutions(self) -> list[int]:
        return list(self.manifest.resolutions)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    def _check(self, resolution: int) -> int:
        from .manifest import check_resolution

        r = check_resolution(resolution)          # the one rule: an integer in 16..1024
        if not self.backend.supports(r):
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
        x = np.ascontiguousarray(x, dtype=np.float32)
        fb = self.backend.fixed_batch
        if fb is None or x.shape[0] == fb:
            return self.backend.run(r, x)
        return np.concatenate([self.backend.run(r, x[i:i + 1]) for i in range(x.shape[0])])

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
                               f"{_one_line(e)}") from None


def _same_model(a: Manifest, b: Manifest) -> str | None:
    """Why two manifests (sidecar, embedded) do not describe the same model, or None."""
    for what, x, y in (("backend", a.backend, b.backend), ("arch", a.arch, b.arch),
                       ("entry points", [(e.resolution, e.entry) for e in a.entries],
                        [(e.resolution, e.entry) for e in b.entries]),
                       ("class names", a.class_names, b.class_names),
                       ("preprocessing", a.input, b.input), ("weights", a.weights, b.weights)):
        if x != y:
            return what
    return None


#: flatbuffer file identifiers (bytes 4..8): ExecuTorch "ET" + schema version, LiteRT "TFL3"
_MAGIC = {"executorch": (b"ET", "an ExecuTorch program"), "tflite": (b"TFL3", "a LiteRT model")}


def _check_magic(path: Path, kind: str) -> None:
    """Refuse a file that is not even of the right format before a native loader sees it (the
    ExecuTorch pybindings abort the process on some garbage inputs instead of raising)."""
    if kind not in _MAGIC:
        return
    magic, what = _MAGIC[kind]
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or not head[4:].startswith(magic):
        raise RuntimeLoadError(f"{path.name} is not {what} (no {magic.decode()!r} identifier in its "
                               f"header; truncated or corrupt?)")


def _load_torch(path: Path, resolutions: Iterable[int] | None, stats: Stats) -> Classifier:
    from .checkpoint import CheckpointError, load_checkpoint, manifest_for, model_from_checkpoint

    try:
        ckpt = load_checkpoint(path)
        model = model_from_checkpoint(ckpt, interpolate=True)
        manifest = manifest_for(ckpt, "torch", resolutions=list(resolutions) if resolutions else None,
                                checkpoint_path=path)
    except (CheckpointError, ValueError) as e:
        raise RuntimeLoadError(_one_line(e)) from None
    stats.file_loads += 1
    manifest.artifact = {"file": path.name, "sha256": manifest.checkpoint.get("sha256"),
                         "size_bytes": path.stat().st_size}
    return Classifier(path, manifest, TorchBackend(path, manifest, stats, model), stats)


def load(path: str | os.PathLike, *, verify: bool = True, resolutions: Iterable[int] | None = None,
         num_threads: int | None = None, cache: str | os.PathLike | None = None) -> Classifier:
    """Open an artifact (``.pt``, ``.pte``, ``.tflite``, ``.onnx``, ``.mlpackage``, or a compact
    ``.pte.rsfold`` / ``.tflite.rsfold``).

    A compact RSFOLD artifact is unpacked once into ``cache`` (default
    :func:`rsnet_edge.rsfold.cache_dir`) as the BN-folded ``.pte`` / ``.tflite`` and that file is
    loaded by the stock runtime; later loads reuse it after checking its sha256.
    ``verify`` checks the artifact's sha256 against its manifest (refuses a mismatch).
    ``resolutions`` (checkpoints only) adds served resolutions, untrained ones by interpolated BN.
    ``num_threads`` (LiteRT only) sets the interpreter's thread count.
    Raises :class:`RuntimeLoadError` (a ValueError) with one clear line.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    kind = SUFFIXES.get(suffix)
    if kind is None:
        raise RuntimeLoadError(f"{p.name}: unknown artifact type {suffix or '(no suffix)'} "
                               f"(expected one of {', '.join(sorted(SUFFIXES))})")
    if not p.exists():
        raise RuntimeLoadError(f"{p} does not exist")
    stats = Stats()
    if kind == "torch":
        return _load_torch(p, resolutions, stats)
    if resolutions:
        raise RuntimeLoadError(f"{p.name}: only checkpoints serve extra resolutions (the artifact's "
                               f"entry points are fixed at conversion)")
    if kind != "coreml" and (not p.is_file() or p.stat().st_size == 0):
        raise RuntimeLoadError(f"{p.name} is empty or not a file (truncated?)")
    sidecar: Manifest | None = None
    if sidecar_path(p).exists():
        try:
            sidecar = read_sidecar(p)
        except ManifestError as e:
            raise RuntimeLoadError(f"{sidecar_path(p).name}: {_one_line(e)}") from None
        if sidecar.backend != kind and kind != "rsfold":
            raise RuntimeLoadError(f"{p.name}: its manifest describes a {sidecar.backend} artifact, "
                                   f"not {kind} ({sidecar_path(p).name} belongs to another file?)")
        if verify:                                   # before the native loader sees the bytes
            try:
                check_artifact(sidecar, p)
            except ManifestError as e:
                raise RuntimeLoadError(_one_line(e)) from None
    program = p
    if kind == "rsfold":                             # fold at load: unpack once, then stock runtime
        from .rsfold import RsfoldError, cached_unpack
        try:
            unpacked = cached_unpack(p, cache)
        except RsfoldError as e:
            raise RuntimeLoadError(_one_line(e)) from None
        except OSError as e:
            raise RuntimeLoadError(f"{p.name}: cannot write the unpacked program to the cache "
                                   f"({e.strerror or e}); set RSNET_EDGE_CACHE to a writable folder") from None
        kind, program = RSFOLD_INNER[unpacked.inner], unpacked.path
        stats.unpack_s, stats.unpack_reused, stats.program = unpacked.seconds, unpacked.reused, str(program)
        if sidecar is not None and sidecar.backend != kind:
            raise RuntimeLoadError(f"{p.name}: its manifest describes a {sidecar.backend} artifact, "
                                   f"but it unpacks to {kind}")
    _check_magic(program, kind)
    if kind == "executorch":
        backend: _Backend = ExecuTorchBackend(program, sidecar, stats)
    elif kind == "tflite":
        backend = TFLiteBackend(program, sidecar, stats, num_threads)
    elif kind == "onnx":
        backend = OnnxBackend(program, sidecar, stats, num_threads)
    else:
        backend = CoreMLBackend(program, sidecar, stats)
    embedded = None
    if sidecar is None or verify:
        try:
            embedded = _parse_embedded(p, backend.embedded_manifest())
        except RuntimeLoadError:
            raise
        except Exception as e:
            raise RuntimeLoadError(f"{p.name}: cannot read the embedded manifest: {_one_line(e)}") from None
    if sidecar is None and embedded is None:
        raise RuntimeLoadError(f"{p.name}: no manifest (expected {sidecar_path(p).name} beside it, "
                               f"and none is embedded)")
    if sidecar is not None and embedded is not None:
        why = _same_model(sidecar, embedded)
        if why:
            raise RuntimeLoadError(f"{p.name}: {sidecar_path(p).name} disagrees with the manifest "
                                   f"embedded in the artifact ({why} differ)")
    manifest = sidecar or embedded
    if manifest.backend != kind:
        raise RuntimeLoadError(f"{p.name}: its manifest describes a {manifest.backend} artifact, not {kind}")
    backend.manifest = manifest
    have = backend.entry_names()
    missing = [e.entry for e in manifest.entries if e.entry not in have]
    if missing:
        raise RuntimeLoadError(f"{p.name}: manifest lists entry point(s) {', '.join(missing)} that the "
                               f"artifact does not have (it has {', '.join(sorted(have)) or 'none'})")
    return Classifier(p, manifest, backend, stats)


def timed_load(path: str | os.PathLike, **kw) -> tuple[Classifier, float]:
    """(classifier, seconds) -- used by the bench."""
    t = time.perf_counter()
    clf = load(path, **kw)
    return clf, time.perf_counter() - t
