"""RS-Net checkpoint -> one ONNX model (.onnx) for ONNX Runtime, routed by the input size.

    python -m converters.onnx --ckpt rs_mbv2.pt [--out rs_mbv2.onnx] [--resolutions 224 160]
        [--weights shared|folded]

ONNX has no named entry points, so the model takes ``x`` [1, 3, H, W] with H, W dynamic and
routes on H through nested ``If`` nodes, lowest resolution first: ``H == 96`` runs the 96 branch,
else ``H == 128`` ..., and the last branch (the highest resolution) serves every other size. Each
``If`` costs a little per run, so the fastest entries, where it would weigh most, pass the fewest.
The runtime (``rsnet_edge.load``) only feeds the manifest's resolutions.

``--weights shared`` (default): every conv weight ``W`` is stored ONCE as an initializer of the
main graph, read by every branch, and each branch normalises with its own BN set written as
``Conv(x, W) * s_r + t_r`` (per-channel ``Mul`` + ``Add`` with [C, 1, 1] constants). ONNX Runtime
(full build, ONNX format, any graph optimisation level from ``ORT_ENABLE_BASIC`` up) folds each
Mul+Add into its conv when the session is created (ConvMulFusion / ConvAddFusion), writing a new
initializer ``W * s_r`` per branch: the shipped file is about one model's size and the session
runs folded convolutions. Not for the ``.ort`` format or a minimal build: those do not optimise at
load. ``--weights folded``: each branch has its own folded weights (~S x the size).

Each branch starts from ``torch.onnx.export`` (dynamo exporter, optimised) of the FOLDED module of
its resolution; its conv weights are recognised by their exact bytes (``W * s_r`` as
converters.prepare folds them) and, for ``shared``, replaced by ``W`` + Mul + Add. The manifest is
embedded as ``metadata_props["rsnet_edge.manifest"]``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from converters.pipeline import run_cli
from converters.prepare import ConversionError, Prepared, bn_scale_shift, sample_input
from rsnet_edge.backends import MANIFEST_KEY

INPUT_NAME, OUTPUT_NAME = "x", "logits"
OPSET = 20
SHARE_MIN_BYTES = 1024        # identical constants at least this large live once, in the main graph


def _export(module, resolution: int):
    import torch

    prog = torch.onnx.export(module, (sample_input(resolution),), dynamo=True, optimize=True,
                             verbose=False, opset_version=OPSET)
    return prog.model_proto


def _branch(prep: Prepared, r: int, model, shared: dict, local_prefix: str):
    """(nodes, local initializers, output name) of resolution r's branch; ``shared`` collects the
    main-graph initializers (content hash -> TensorProto)."""
    from onnx import helper, numpy_helper

    folded_to_conv: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    if prep.weights == "shared":
        for p in prep.conv_bn(r):
            w = p.conv.weight.detach()
            s, t = bn_scale_shift(p.bn)
            folded = (w * s.reshape(-1, 1, 1, 1)).numpy().astype("<f4")
            bias = (t + (p.conv.bias.detach() * s if p.conv.bias is not None else 0)).numpy()
            folded_to_conv[folded.tobytes()] = (w.numpy().astype("<f4"), s.numpy().astype("<f4"),
                                                bias.astype("<f4"), folded)
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    rename: dict[str, str] = {g.input[0].name: INPUT_NAME}
    counter = [0]

    def local(name: str) -> str:
        if name not in rename:
            rename[name] = f"{local_prefix}{counter[0]}"
            counter[0] += 1
        return rename[name]

    def const(arr: np.ndarray, force_local: bool = False) -> str:
        data = np.ascontiguousarray(arr)
        if not force_local and data.nbytes >= SHARE_MIN_BYTES:
            key = hashlib.sha256(data.dtype.str.encode() + str(data.shape).encode() + data.tobytes()).hexdigest()
            if key not in shared:
                shared[key] = numpy_helper.from_array(data, f"w{len(shared)}")
            return shared[key].name
        name = f"{local_prefix}{counter[0]}"
        counter[0] += 1
        local_inits.append(numpy_helper.from_array(data, name))
        return name

    local_inits: list = []
    nodes = []
    replaced = 0
    for n in g.node:
        ins = list(n.input)
        if n.op_type == "Conv" and len(ins) >= 2 and ins[1] in inits:
            hit = folded_to_conv.get(np.ascontiguousarray(inits[ins[1]], "<f4").tobytes())
            if hit is not None:
                w, s, bias, _ = hit
                c = w.shape[0]
                x_in = local(ins[0]) if ins[0] not in inits else const(inits[ins[0]])
                y_conv, y_mul = f"{local_prefix}{counter[0]}", f"{local_prefix}{counter[0] + 1}"
                counter[0] += 2
                conv = helper.make_node("Conv", [x_in, const(w)], [y_conv])
                conv.attribute.extend(n.attribute)
                nodes += [conv,
                          helper.make_node("Mul", [y_conv, const(s.reshape(c, 1, 1), True)], [y_mul]),
                          helper.make_node("Add", [y_mul, const(bias.reshape(c, 1, 1), True)],
                                           [local(n.output[0])])]
                replaced += 1
                continue
        new_ins = [("" if i == "" else const(inits[i]) if i in inits else local(i)) for i in ins]
        node = helper.make_node(n.op_type, new_ins, [local(o) for o in n.output], domain=n.domain or None)
        node.attribute.extend(n.attribute)
        nodes.append(node)
    if prep.weights == "shared" and replaced != len(folded_to_conv):
        raise ConversionError(f"ONNX export of resolution {r}: recognised {replaced} of "
                              f"{len(folded_to_conv)} folded convolutions")
    return nodes, local_inits, local(g.output[0].name)


def build_model(prep: Prepared, manifest_json: str):
    """The ONNX ModelProto of a prepared checkpoint (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if prep.encoding != "folded":
        raise ConversionError("the ONNX converter takes --weights shared or folded (ONNX Runtime folds "
                              "the shared form itself; the affine encoding would only be slower)")
    exported = {r: _export(prep.modules[r], r) for r in prep.resolutions}
    shared: dict = {}
    branches = []
    for r in sorted(prep.resolutions):                       # lowest first: fewest Ifs on the fastest
        nodes, local_inits, out = _branch(prep, r, exported[r], shared, f"r{r}_")
        branches.append((r, nodes, local_inits, out))
    num_classes = len(prep.ckpt["class_names"])
    first = exported[prep.resolutions[0]]
    if len(branches) == 1:                           # one resolution: a plain, static-shape graph
        _, nodes, local_inits, out = branches[0]
        nodes.append(helper.make_node("Identity", [out], [OUTPUT_NAME]))
        r = prep.resolutions[0]
        x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, r, r])
        graph = helper.make_graph(nodes, "rsnet", [x], [helper.make_tensor_value_info(
            OUTPUT_NAME, TensorProto.FLOAT, [1, num_classes])], initializer=list(shared.values()) + local_inits)
    else:
        def subgraph(k: int):
            r, nodes, local_inits, out = branches[k]
            out_info = [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)]
            if k == len(branches) - 1:
                return helper.make_graph(nodes, f"res{r}", [], out_info, initializer=local_inits)
            cond, flag, res_out = f"eq{r}", f"is{r}", f"out{r}"
            sel = [helper.make_node("Equal", ["h", f"c{r}"], [flag]),
                   helper.make_node("Squeeze", [flag], [cond]),
                   helper.make_node("If", [cond], [res_out], then_branch=helper.make_graph(
                       nodes, f"res{r}", [], out_info, initializer=local_inits), else_branch=subgraph(k + 1))]
            return helper.make_graph(sel, f"above{r}", [], [helper.make_tensor_value_info(
                res_out, TensorProto.FLOAT, None)], initializer=[numpy_helper.from_array(
                    np.array([r], dtype=np.int64), f"c{r}")])

        top = subgraph(0)
        nodes = [helper.make_node("Shape", [INPUT_NAME], ["h"], start=2, end=3)] + list(top.node)
        nodes.append(helper.make_node("Identity", [top.output[0].name], [OUTPUT_NAME]))
        x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, "H", "W"])
        graph = helper.make_graph(nodes, "rsnet", [x], [helper.make_tensor_value_info(
            OUTPUT_NAME, TensorProto.FLOAT, [1, num_classes])],
            initializer=list(shared.values()) + list(top.initializer))
    model = helper.make_model(graph, opset_imports=list(first.opset_import), producer_name="rsnet-edge")
    model.ir_version = first.ir_version
    helper.set_model_props(model, {MANIFEST_KEY: manifest_json})
    onnx.checker.check_model(model)
    return model


def lower(prep: Prepared, manifest_json: str, tmp: Path, dtype: str) -> dict:
    if dtype != "fp32":
        raise ConversionError("the ONNX converter writes fp32 only")
    import onnx

    model = build_model(prep, manifest_json)
    onnx.save(model, str(tmp))
    return {"input_name": INPUT_NAME, "output_name": OUTPUT_NAME, "manifest_metadata": MANIFEST_KEY,
            "routing": "input_size" if len(prep.resolutions) > 1 else "single",
            "fold_at_load": "onnxruntime" if prep.weights == "shared" else None}


def read_metadata(path) -> str | None:
    """The embedded manifest JSON of an .onnx file (None if absent)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return next((p.value for p in m.metadata_props if p.key == MANIFEST_KEY), None)


def main(argv=None) -> int:
    return run_cli("onnx", lower, argv)


if __name__ == "__main__":
    sys.exit(main())
