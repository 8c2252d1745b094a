"""The backend registry: everything rsnet-edge knows about an artifact format, in ONE table.

Each :class:`Backend` names its file suffix, how to recognise its bytes, whether its programs can be
shipped in the RSFOLD compact form (and under which inner tag), where the manifest is embedded, its
int8 scheme, its phone runner, and -- lazily, as ``"module:attr"`` strings, so that this module stays
standard-library only -- the runtime class that runs it (:mod:`rsnet_edge.runners`) and the converter
that writes it (``converters.<name>:lower``). Every other module asks this table; nothing else keeps a
per-backend list. Adding a backend: docs/adding-a-backend.md.
"""

from __future__ import annotations

import importlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the compact fold-at-load form of a program (rsnet_edge.rsfold): ``<name>.pte.rsfold``
RSFOLD_SUFFIX = ".rsfold"
#: where converters embed the manifest: LiteRT/ONNX/Core ML metadata key ...
MANIFEST_KEY = "rsnet_edge.manifest"
#: ... and the ExecuTorch constant method returning it
ET_MANIFEST_METHOD = "manifest_json"


@dataclass(frozen=True)
class Int8Scheme:
    """How a backend quantizes to int8 (converters.quantize): its own PT2E quantizer and config
    (``"module:attr"``), and whether ``convert_pt2e`` folds the int8 weight into a constant
    (ExecuTorch) or keeps the float weight + ``quantize_per_channel`` (LiteRT's converter wants that)."""
    description: str
    quantizer: str
    config: str
    fold_quantize: bool


@dataclass(frozen=True)
class Backend:
    name: str                          # the manifest's "backend"
    suffixes: tuple[str, ...]          # file suffixes, the one converters write first
    what: str                          # "an ExecuTorch program" (error messages)
    runtime: str                       # "module:Class" of its runner (rsnet_edge.runners)
    runtime_import: str | None         # the third-party module its runner needs
    extra: str | None                  # pip extra that installs it: rsnet-edge[extra]
    converter: str | None = None       # "module:lower" of its converter
    magic: bytes | None = None         # flatbuffer file identifier at byte 4 (None: not checked)
    rsfold_inner: str | None = None    # RSFOLD inner tag: its folded programs can ship as .rsfold
    manifest_embed: str = ""           # where the converter embeds the manifest (docs, errors)
    dtypes: tuple[str, ...] = ("fp32",)
    encodings: tuple[str, ...] = ("folded", "affine", "hybrid")   # BN encodings it can lower
    int8: Int8Scheme | None = None
    #: the default entry is a pointer to the top resolution's forward_<r> (Core ML's default
    #: function), not an entry point of its own named "forward"
    default_is_pointer: bool = False
    adb_runner: str | None = None      # phone benchmark binary (bench --adb)
    directory: bool = False            # the artifact is a folder (.mlpackage)
    systems: tuple[str, ...] | None = None   # platform.system() values its runtime runs on (None: all)

    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    def runs_here(self) -> bool:
        """Its runtime can run on this machine (Core ML: macOS only)."""
        return self.systems is None or platform.system() in self.systems

    def runtime_class(self):
        return load_attr(self.runtime)

    def converter_lower(self):
        if self.converter is None:
            raise ValueError(f"no converter writes {self.name} artifacts")
        return load_attr(self.converter)

    def shipped_suffix(self, weights: str, dtype: str = "fp32") -> str:
        """What a converter writes for ``--weights``/``--dtype``: the plain file, or its RSFOLD
        compact form (``--weights shared`` where the backend has one; int8 shares its canonical
        int8 weights inside a plain file)."""
        rsfold = weights == "shared" and self.rsfold_inner is not None and dtype != "int8"
        return self.suffix + RSFOLD_SUFFIX if rsfold else self.suffix


#: THE table (order: how they are listed to users)
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("executorch", (".pte",), "an ExecuTorch program", "rsnet_edge.runners:ExecuTorchRunner",
            "executorch.runtime", "executorch", converter="converters.executorch:lower", magic=b"ET",
            rsfold_inner="pte", manifest_embed=f"constant method {ET_MANIFEST_METHOD}",
            dtypes=("fp32", "int8"),
            int8=Int8Scheme("xnnpack pt2e: int8 activations per tensor (affine), int8 weights per channel "
                            "symmetric [-127, 127]",
                            "executorch.backends.xnnpack.quantizer.xnnpack_quantizer:XNNPACKQuantizer",
                            "executorch.backends.xnnpack.quantizer.xnnpack_quantizer:"
                            "get_symmetric_quantization_config", fold_quantize=True),
            adb_runner="executor_runner"),
    Backend("tflite", (".tflite",), "a LiteRT model", "rsnet_edge.runners:LiteRTRunner",
            "ai_edge_litert.interpreter", "tflite", converter="converters.tflite:lower", magic=b"TFL3",
            rsfold_inner="tflite", manifest_embed=f"metadata {MANIFEST_KEY}", dtypes=("fp32", "int8"),
            int8=Int8Scheme("litert-torch pt2e: int8 activations per tensor (affine), int8 weights per "
                            "channel symmetric [-127, 127]",
                            "litert_torch.quantize.pt2e_quantizer:PT2EQuantizer",
                            "litert_torch.quantize.pt2e_quantizer:get_symmetric_quantization_config",
                            fold_quantize=False),
            adb_runner="benchmark_model"),
    Backend("onnx", (".onnx",), "an ONNX model", "rsnet_edge.onnx_runner:OnnxRunner", "onnxruntime", "onnx",
            converter="converters.onnx:lower", manifest_embed=f"metadata_props {MANIFEST_KEY}",
            encodings=("folded",)),
    Backend("coreml", (".mlpackage",), "a Core ML package", "rsnet_edge.runners:CoreMLRunner",
            "coremltools", "coreml", converter="converters.coreml:lower",
            manifest_embed=f"user_defined_metadata {MANIFEST_KEY}", dtypes=("fp32", "fp16"),
            default_is_pointer=True, directory=True, systems=("Darwin",)),
    Backend("torch", (".pt", ".pth"), "an rsnet-edge checkpoint", "rsnet_edge.runners:TorchRunner",
            "torch", None),
)}


def names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def get(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None


def converted() -> tuple[Backend, ...]:
    """Backends a converter writes (every one but the checkpoint itself)."""
    return tuple(b for b in BACKENDS.values() if b.converter is not None)


def for_suffix(suffix: str) -> Backend | None:
    s = suffix.lower()
    return next((b for b in BACKENDS.values() if s in b.suffixes), None)


def for_rsfold_inner(inner: str) -> Backend | None:
    return next((b for b in BACKENDS.values() if b.rsfold_inner is not None and b.rsfold_inner == inner),
                None)


def rsfold_inners() -> tuple[str, ...]:
    return tuple(b.rsfold_inner for b in BACKENDS.values() if b.rsfold_inner)


def is_rsfold(path: str | os.PathLike) -> bool:
    return Path(path).name.lower().endswith(RSFOLD_SUFFIX)


def program_suffix(path: str | os.PathLike) -> str:
    """``.pte`` for ``x.pte`` and for the compact ``x.pte.rsfold``."""
    p = Path(path)
    return Path(p.name[:-len(RSFOLD_SUFFIX)]).suffix.lower() if is_rsfold(p) else p.suffix.lower()


def known_suffixes() -> list[str]:
    return sorted({s for b in BACKENDS.values() for s in b.suffixes} | {RSFOLD_SUFFIX})


def load_attr(spec: str) -> Any:
    """``"package.module:attr"`` -> the attribute (imported on first use)."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)
