"""One runner per backend: opens an artifact once with the backend's STOCK runtime and runs its entry
points. :func:`rsnet_edge.load` picks the runner through the backend registry
(:mod:`rsnet_edge.backends`, ``Backend.runtime``); ``converters.verify`` and the benches run artifacts
through the same runners (``Classifier.run_entry``), so there is one runtime.

A runner: ``entry_names()`` (what the file has), ``embedded_manifest()`` (the manifest JSON inside the
artifact, if the format carries one), ``run_entry(name, x)`` (logits ``[N, classes]`` of one entry
point, loaded lazily, once) and ``run(resolution, x)`` (the entry ``forward_<r>``).
"""

from __future__ import annotations

import importlib
import platform
from pathlib import Path
from typing import Any

import numpy as np

from .backends import ET_MANIFEST_METHOD, MANIFEST_KEY
from .cli import one_line
from .manifest import DEFAULT_ENTRY, Manifest, entry_name


class RuntimeLoadError(ValueError):
    """An artifact that cannot be served: missing, corrupt, truncated, or not what its manifest says.
    The message is one line, ready to print as ``error: ...``."""


def require(module: str, path: Path, what: str, extra: str | None):
    """Import a backend's runtime module, or refuse the artifact with one line saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        hint = f" (pip install 'rsnet-edge[{extra}]')" if extra else ""
        raise RuntimeLoadError(f"cannot open {path.name}: {what} is not installed{hint}: "
                               f"{one_line(e)}") from None


class Runner:
    """Opens the artifact once; ``run_entry(name, x)`` -> logits ``[N, classes]`` (numpy)."""

    backend = "?"
    fixed_batch: int | None = 1       # entry points exported with a static batch of 1

    def __init__(self, path: Path, manifest: Manifest | None, stats):
        self.path, self.manifest, self.stats = path, manifest, stats

    def entry_names(self) -> set[str]:
        raise NotImplementedError

    def supports(self, resolution: int) -> bool:
        return resolution in self.manifest.resolutions

    def embedded_manifest(self) -> str | bytes | None:
        """The manifest JSON stored inside the artifact, if the format carries one."""
        return None

    def run_entry(self, name: str, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self, resolution: int, x: np.ndarray) -> np.ndarray:
        return self.run_entry(entry_name(resolution), x)

    def _resolution_of(self, name: str) -> int | None:
        if name == DEFAULT_ENTRY and self.manifest is not None:
            return int(self.manifest.default_resolution)
        head, _, r = name.rpartition("_")
        return int(r) if head == "forward" and r.isdigit() else None

    def _count_entry_load(self, name: str) -> None:
        r = self._resolution_of(name)
        key = r if r is not None else name
        self.stats.entry_loads[key] = self.stats.entry_loads.get(key, 0) + 1


class TorchRunner(Runner):
    """The checkpoint itself (eval mode, interpolated BN allowed for untrained resolutions)."""

    backend = "torch"
    fixed_batch = None

    def __init__(self, path, manifest, stats, model):
        super().__init__(path, manifest, stats)
        self.model = model
        self.seen: set[str] = set()

    def entry_names(self) -> set[str]:
        return {e.entry for e in self.manifest.entries}

    def supports(self, resolution: int) -> bool:
        return int(resolution) >= 16          # any size: untrained ones via interpolated BN

    def run_entry(self, name, x):
        import torch

        if name not in self.seen:               # BN set chosen by the input size (hook)
            self.seen.add(name)
            self._count_entry_load(name)
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).float().numpy()


class ExecuTorchRunner(Runner):
    """``Runtime.get().load_program(path)`` once; each method loaded once, lazily."""

    backend = "executorch"

    def __init__(self, path, manifest, stats, num_threads: int | None = None, runnable: bool = True):  # noqa: ARG002
        super().__init__(path, manifest, stats)
        Runtime = require("executorch.runtime", path, "the ExecuTorch runtime", "executorch").Runtime
        try:
            self.program = Runtime.get().load_program(path)
        except Exception as e:  # the pybindings raise RuntimeError/ValueError for bad flatbuffers
            raise RuntimeLoadError(f"{path.name} is not a loadable ExecuTorch program (truncated or "
                                   f"corrupt?): {one_line(e)}") from None
        stats.file_loads += 1
        self.methods: dict[str, Any] = {}

    def entry_names(self) -> set[str]:
        return set(self.program.method_names) - {ET_MANIFEST_METHOD}

    def embedded_manifest(self):
        if ET_MANIFEST_METHOD not in self.program.method_names:
            return None
        out = self.program.load_method(ET_MANIFEST_METHOD).execute([])
        return out[0] if out else None

    def _method(self, name: str):
        m = self.methods.get(name)
        if m is None:
            try:
                m = self.program.load_method(name)
            except Exception as e:
                raise RuntimeLoadError(f"{self.path.name}: cannot load method {name}: "
                                       f"{one_line(e)}") from None
            if m is None:
                raise RuntimeLoadError(f"{self.path.name} has no method {name}")
            self.methods[name] = m
            self._count_entry_load(name)
        return m

    def run_entry(self, name, x):
        import torch

        out = self._method(name).execute([torch.from_numpy(x)])
        return out[0].float().numpy() if hasattr(out[0], "numpy") else np.asarray(out[0])


class LiteRTRunner(Runner):
    """One LiteRT ``Interpreter`` for the file; one signature runner per entry, made once."""

    backend = "tflite"

    def __init__(self, path, manifest, stats, num_threads: int | None = None, runnable: bool = True):  # noqa: ARG002
        super().__init__(path, manifest, stats)
        Interpreter = require("ai_edge_litert.interpreter", path, "the LiteRT runtime", "tflite").Interpreter
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.signatures = dict(self.interpreter.get_signature_list())
        except Exception as e:
            raise RuntimeLoadError(f"{path.name} is not a loadable LiteRT model (truncated or "
                                   f"corrupt?): {one_line(e)}") from None
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
            if md.Name().decode() != MANIFEST_KEY:
                continue
            buf = model.Buffers(md.Buffer())
            if buf.Offset() > 1:                       # stored after the flatbuffer (large models)
                return bytes(data[buf.Offset():buf.Offset() + buf.Size()])
            return buf.DataAsNumpy().tobytes() if buf.DataLength() else None
        return None

    def _runner(self, name: str):
        r = self.runners.get(name)
        if r is None:
            try:
                runner = self.interpreter.get_signature_runner(name)
            except Exception as e:
                raise RuntimeLoadError(f"{self.path.name}: no signature {name}: {one_line(e)}") from None
            inputs = list(runner.get_input_details())
            outputs = list(self.signatures[name].get("outputs", []))
            if len(inputs) != 1:
                raise RuntimeLoadError(f"{self.path.name}: signature {name} takes {len(inputs)} inputs, "
                                       f"expected one image tensor")
            r = (runner, inputs[0], outputs[0] if outputs else "")
            self.runners[name] = r
            self._count_entry_load(name)
        return r

    def run_entry(self, name, x):
        runner, in_name, out_name = self._runner(name)
        out = runner(**{in_name: x})
        y = out[out_name] if out_name in out else next(iter(out.values()))
        return np.asarray(y, dtype=np.float32)


class OnnxRunner(Runner):
    """One ``onnxruntime.InferenceSession`` (CPU, full graph optimisation) over the whole model.

    An rsnet-edge ``.onnx`` routes by input size (nested ``If`` on H, see converters/onnx.py), so
    one session serves every entry point of the manifest: switching resolution is feeding another
    size. With ``weights: shared`` ONNX Runtime folds each BN (Mul+Add) into its conv while it
    creates the session; the session creation time is the load-time fold cost."""

    backend = "onnx"

    def __init__(self, path, manifest, stats, num_threads: int | None = None, runnable: bool = True):  # noqa: ARG002
        super().__init__(path, manifest, stats)
        ort = require("onnxruntime", path, "onnxruntime", "onnx")
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
                                   f"{one_line(e)}") from None
        stats.file_loads += 1
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise RuntimeLoadError(f"{path.name}: expected one input and one output, found "
                                   f"{len(self.inputs)} and {len(self.outputs)}")
        self.seen: set[str] = set()

    def embedded_manifest(self):
        return self.session.get_modelmeta().custom_metadata_map.get(MANIFEST_KEY)

    def entry_names(self) -> set[str]:
        """Routed by input size: every manifest entry (and the default) is served by the graph."""
        if self.manifest is None:
            return set()
        entries = self.manifest.entries
        shape = self.session.get_inputs()[0].shape              # [1, 3, "H", "W"] when routed
        if len(entries) == 1 or not all(isinstance(d, int) for d in shape[2:]):
            return {e.entry for e in entries} | {DEFAULT_ENTRY}
        return set()

    def run_entry(self, name, x):
        if name not in self.seen:
            self.seen.add(name)
            self._count_entry_load(name)
        want = self.session.get_inputs()[0].shape            # ints where the graph fixes a size
        if len(want) != x.ndim or any(isinstance(d, int) and d != n for d, n in zip(want, x.shape)):
            raise RuntimeLoadError(f"{self.path.name} takes input {list(want)}, not {list(x.shape)} "
                                   f"({name}): its manifest does not describe this model (re-convert, or "
                                   f"use the manifest written with it)")
        try:
            y = self.session.run([self.outputs[0]], {self.inputs[0]: x})[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime's own types (InvalidArgument, Fail, ...)
            raise RuntimeLoadError(f"{self.path.name}: {name} failed in ONNX Runtime: {one_line(e)}") from None
        return np.asarray(y, dtype=np.float32)


class CoreMLRunner(Runner):
    """A Core ML multifunction ``.mlpackage`` (one function per resolution). Predicts on macOS only;
    elsewhere it is opened for inspection (``runnable=False``: functions, embedded manifest)."""

    backend = "coreml"

    def __init__(self, path, manifest, stats, num_threads: int | None = None, runnable: bool = True):  # noqa: ARG002
        super().__init__(path, manifest, stats)
        if runnable and platform.system() != "Darwin":
            raise RuntimeLoadError(f"{path.name}: Core ML packages run only on macOS (this is "
                                   f"{platform.system()}); use the .pte or .tflite artifact here")
        ct = require("coremltools", path, "coremltools", "coreml")
        self.ct = ct
        self.models: dict[str, Any] = {}
        try:   # validate the package once; functions are compiled lazily per resolution
            self.spec = ct.utils.load_spec(str(path))
        except Exception as e:
            raise RuntimeLoadError(f"{path.name} is not a readable Core ML package: {one_line(e)}") from None
        stats.file_loads += 1

    def entry_names(self) -> set[str]:
        desc = self.spec.description
        names = {f.name for f in getattr(desc, "functions", [])}
        return names or {e.entry for e in self.manifest.entries}

    def embedded_manifest(self):
        return dict(self.spec.description.metadata.userDefined).get(MANIFEST_KEY)

    def run_entry(self, name, x):
        m = self.models.get(name)
        if m is None:
            try:
                m = self.ct.models.MLModel(str(self.path), function_name=name)
            except Exception as e:
                raise RuntimeLoadError(f"{self.path.name}: cannot load function {name}: "
                                       f"{one_line(e)}") from None
            self.models[name] = m
            self._count_entry_load(name)
        in_name = m.get_spec().description.input[0].name
        out = m.predict({in_name: x})
        return np.asarray(next(iter(out.values())), dtype=np.float32)
