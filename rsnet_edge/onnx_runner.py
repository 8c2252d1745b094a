"""ONNX Runtime runner: one static-shape session per resolution, made from the artifact's branches.

An rsnet-edge ``.onnx`` serves every resolution from one file: the input ``x`` is ``[1, 3, H, W]``
and nested ``If`` nodes route on ``H`` to one branch graph per resolution (``res<r>``; converters/onnx.py
writes them), every branch reading the shared conv weights ``W`` of the main graph and applying its
own BN as ``Conv(x, W) * s_r + t_r``. One session over that whole graph keeps every branch's folded
weights in memory and runs a dynamic-shape graph; so this runner cuts the routed model into one
single-resolution model per entry (the branch, the initializers it reads, a static input
``[1, 3, r, r]``) and creates ONE session per resolution, when first needed. ONNX Runtime then folds
each BN into its conv while it creates that session (ConvMulFusion/ConvAddFusion), exactly as for a
static single-resolution export, and runs it at that speed. ``keep_only`` drops the other sessions
(``resident="one"``); switching re-reads the file (the parsed model is not kept: it holds the weights).

A plain ``.onnx`` (no routing, one resolution) is served by one session as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import MANIFEST_KEY
from .cli import one_line
from .manifest import DEFAULT_ENTRY, entry_name
from .runners import Runner, RuntimeLoadError, release_memory, require

BRANCH_PREFIX = "res"          # converters/onnx.py names resolution r's branch graph "res<r>"


def _branch(graph, name: str):
    """The subgraph called ``name`` anywhere under ``graph`` (If then/else branches), or None."""
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                if attr.g.name == name:
                    return attr.g
                found = _branch(attr.g, name)
                if found is not None:
                    return found
    return None


def single_resolution_model(model, resolution: int):
    """The routed ``model`` cut down to resolution ``r``: its branch's nodes, the main-graph
    initializers they read and the branch's own, a static ``[1, 3, r, r]`` input. None when the
    model has no branch for ``r`` (not a routed rsnet-edge model)."""
    from onnx import TensorProto, helper

    g = model.graph
    branch = _branch(g, f"{BRANCH_PREFIX}{int(resolution)}")
    if branch is None:
        return None
    x, out = g.input[0], g.output[0]
    used = {i for n in branch.node for i in n.input}
    shared = [t for t in g.initializer if t.name in used]
    nodes = list(branch.node) + [helper.make_node("Identity", [branch.output[0].name], [out.name])]
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    graph = helper.make_graph(
        nodes, f"{g.name}_{resolution}",
        [helper.make_tensor_value_info(x.name, TensorProto.FLOAT, [1, 3, resolution, resolution])],
        [helper.make_tensor_value_info(out.name, TensorProto.FLOAT, dims or None)],
        initializer=shared + list(branch.initializer))
    single = helper.make_model(graph, opset_imports=list(model.opset_import), producer_name=model.producer_name)
    single.ir_version = model.ir_version
    return single


class OnnxRunner(Runner):
    backend = "onnx"

    def __init__(self, path, manifest, stats, num_threads: int | None = None, runnable: bool = True,  # noqa: ARG002
                 name: str | None = None):
        super().__init__(path, manifest, stats, name)
        self.ort = require("onnxruntime", self.name, "onnxruntime", "onnx")
        self.num_threads = num_threads
        self.sessions: dict[int, Any] = {}           # resolution -> session
        self._model = self._parse()                   # kept until the first session is made from it
        g = self._model.graph
        if len(g.input) != 1 or len(g.output) != 1:
            raise RuntimeLoadError(f"{self.name}: expected one input and one output, found "
                                   f"{len(g.input)} and {len(g.output)}")
        self.input_name, self.output_name = g.input[0].name, g.output[0].name
        dims = g.input[0].type.tensor_type.shape.dim
        self.input_shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]
        self.routed = any(not isinstance(d, int) for d in self.input_shape[2:])
        self.meta = {p.key: p.value for p in self._model.metadata_props}
        stats.file_loads += 1

    def _parse(self):
        require("onnx", self.name, "the onnx package", "onnx")
        import onnx

        try:
            return onnx.load(str(self.path))
        except Exception as e:
            raise RuntimeLoadError(f"{self.name} is not a loadable ONNX model (truncated or corrupt?): "
                                   f"{one_line(e)}") from None

    def _session(self, model: bytes):
        ort = self.ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no busy-waiting worker threads between runs: they would steal the cores from whatever
        # runs next (the app's own work, another model, the bench's other artifacts)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.num_threads:
            opts.intra_op_num_threads = int(self.num_threads)
        try:
            return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise RuntimeLoadError(f"{self.name} is not a loadable ONNX model (truncated or corrupt?): "
                                   f"{one_line(e)}") from None

    def embedded_manifest(self):
        return self.meta.get(MANIFEST_KEY)

    def entry_names(self) -> set[str]:
        """Routed by input size: every manifest entry (and the default) is served by the graph."""
        if self.manifest is None:
            return set()
        entries = self.manifest.entries
        if len(entries) == 1 or self.routed:
            return {e.entry for e in entries} | {DEFAULT_ENTRY}
        return set()

    def _entry_session(self, name: str):
        r = self._resolution_of(name)
        if r is None:
            raise RuntimeLoadError(f"{self.name} has no entry point {name}")
        s = self.sessions.get(r)
        if s is None:
            model = self._model if self._model is not None else self._parse()
            self._model = None
            if self.routed:
                single = single_resolution_model(model, r)
                if single is None:
                    raise RuntimeLoadError(f"{self.name} routes by input size but has no branch for {r}")
                model = single
            s = self.sessions[r] = self._session(model.SerializeToString())
            del model
            self._count_entry_load(entry_name(r))
        return s

    def keep_only(self, entry: str) -> None:
        r = self._resolution_of(entry)
        if set(self.sessions) - {r}:
            for k in [k for k in self.sessions if k != r]:
                del self.sessions[k]
            release_memory()

    def close(self) -> None:
        self.sessions.clear()
        self._model = None
        release_memory()

    def run_entry(self, name, x):
        s = self._entry_session(name)
        want = s.get_inputs()[0].shape                  # ints where the graph fixes a size
        if len(want) != x.ndim or any(isinstance(d, int) and d != n for d, n in zip(want, x.shape)):
            raise RuntimeLoadError(f"{self.name} takes input {list(want)}, not {list(x.shape)} ({name}): "
                                   f"its manifest does not describe this model (re-convert, or use the "
                                   f"manifest written with it)")
        try:
            out = s.run([self.output_name], {self.input_name: x})[0]
        except Exception as e:                        # onnxruntime's own exception types
            raise RuntimeLoadError(f"{self.name}: ONNX Runtime refused an input of shape {list(x.shape)} "
                                   f"(it takes {self.input_shape}): {one_line(e)}") from None
        return np.asarray(out, dtype=np.float32)


__all__ = ["OnnxRunner", "single_resolution_model"]
