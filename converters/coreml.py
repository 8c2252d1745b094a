"""RS-Net checkpoint -> one Core ML multifunction ML Program (.mlpackage, iOS 18 / macOS 15+).

One function per resolution (``forward_224`` ...); the package's *default function* is the highest
resolution's (no separate ``forward`` function: a duplicate would store its whole program
description again; the manifest records it as ``extra["default_entry"]``, e.g. ``forward_224``).
Input ``x`` (1, 3, r, r) float32 NCHW, output ``logits``. ``coremltools.utils.save_multifunction``
de-duplicates equal constants across functions, so the shared conv/FC weights are stored once (BN
encoding: docs/formats.md). The manifest is embedded as
``user_defined_metadata["rsnet_edge.manifest"]``.

Before saving, each function's MIL program is compacted (:func:`compact_function`): the long
generated var/op names (``p_features_0_1_conv_weight``, ``conv2d_pad_type_0`` ...) become short ones
and identical small immediate constants (strides, pads, groups, clip bounds: ~5 per conv) are
merged into one. That takes the program description from ~144 KB to ~51 KB per function for
MobileNetV2; the result is checked to be the same graph (:func:`graph_signature`) before saving.

Conversion runs on Linux; prediction needs macOS (``converters.verify`` says so and skips it).

    python -m converters.coreml --ckpt rs_mbv2.pt --out rs_mbv2.mlpackage [--resolutions 224 160]
        [--weights shared|affine|folded] [--dtype fp32|fp16]
"""

from __future__ import annotations

import logging
import string
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from converters.pipeline import run_cli
from converters.prepare import ConversionError, Prepared, bn_scale_shift, sample_input
from rsnet_edge import backends
from rsnet_edge.backends import MANIFEST_KEY
from rsnet_edge.manifest import entry_name

INPUT_NAME, OUTPUT_NAME = "x", "logits"


def _quiet_coremltools():
    import os
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("coremltools").setLevel(logging.ERROR)


def fold_map(prep: Prepared, resolution: int) -> dict:
    """Folded conv weight bytes (``W * s_r``, as converters.prepare folds them) -> (W, s_r)."""
    import numpy as np

    out = {}
    for p in prep.conv_bn(resolution):
        w = p.conv.weight.detach()
        s, _ = bn_scale_shift(p.bn)
        out[(w * s.reshape(-1, 1, 1, 1)).numpy().astype("<f4").tobytes()] = (
            w.numpy().astype(np.float32), s.numpy().astype(np.float32).reshape(-1, 1, 1, 1))
    return out


def constexpr_fold(prog, folds: dict) -> int:
    """Replace every conv weight const equal to a folded ``W * s_r`` by
    ``constexpr_blockwise_shift_scale(data=W, scale=s_r)`` (iOS 18 opset): the function stores the
    shared ``W`` (de-duplicated across functions by save_multifunction) and ``s_r``; Core ML
    materialises ``W * s_r`` itself (at load or run time, its choice). Returns the count."""
    import numpy as np
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.scope import ScopeInfo, ScopeSource

    block = prog.functions["main"]
    n = 0
    scopes = (ScopeInfo(source=ScopeSource.EXIR_STACK_TRACE, data=[None]),
              ScopeInfo(source=ScopeSource.EXIR_DEBUG_HANDLE, data=[None]))
    with block:
        for op in list(block.operations):
            w = op.inputs.get("weight") if op.op_type == "conv" else None
            if w is None or w.op is None or w.op.op_type != "const" or w.val is None:
                continue
            hit = folds.get(np.ascontiguousarray(w.val, "<f4").tobytes())
            if hit is None:
                continue
            with mb.scope(*scopes):
                new = mb.constexpr_blockwise_shift_scale(data=hit[0], scale=hit[1], before_op=op)
            block.replace_uses_of_var_after_op(anchor_op=new.op, old_var=w, new_var=new)
            n += 1
        block.remove_ops([o for o in list(block.operations) if o.op_type == "const"
                          and not o.outputs[0].child_ops and o.outputs[0] not in block.outputs])
    return n


def convert_one(module, resolution: int, dtype: str, path: Path, folds: dict | None = None) -> int:
    """One resolution -> a one-function .mlpackage; with ``folds`` the folded conv weights become
    constexpr scalings of the shared weights. Returns the number of convs so rewritten."""
    import coremltools as ct
    import torch

    ep = torch.export.export(module, (sample_input(resolution),)).run_decompositions({})
    precision = ct.precision.FLOAT16 if dtype == "fp16" else ct.precision.FLOAT32
    common = dict(minimum_deployment_target=ct.target.iOS18, compute_precision=precision)
    io = dict(inputs=[ct.TensorType(name=INPUT_NAME, shape=(1, 3, resolution, resolution))],
              outputs=[ct.TensorType(name=OUTPUT_NAME)])
    n = 0
    if folds is None:
        ml = ct.convert(ep, convert_to="mlprogram", skip_model_load=True, **io, **common)
    else:
        prog = ct.convert(ep, convert_to="milinternal", **io, **common)
        n = constexpr_fold(prog, folds)
        ml = ct.convert(prog, convert_to="mlprogram", skip_model_load=True, **common)
    ml.save(str(path))
    return n


def lower(prep: Prepared, manifest_json: str, tmp: Path, dtype: str) -> dict:
    if dtype not in ("fp32", "fp16"):
        raise ConversionError(f"unsupported dtype {dtype}")
    import coremltools as ct

    _quiet_coremltools()
    default = entry_name(prep.default_resolution)
    with tempfile.TemporaryDirectory(prefix="rsnet-coreml-", dir=tmp.parent) as work:
        work = Path(work)
        desc = ct.utils.MultiFunctionDescriptor()
        n_constexpr = 0
        for r in prep.resolutions:
            name = entry_name(r)
            p = work / f"{name}{backends.get('coreml').suffix}"
            n_constexpr += convert_one(prep.modules[r], r, dtype, p,
                                       fold_map(prep, r) if prep.weights == "shared" else None)
            desc.add_function(str(p), "main", name)
        desc.default_function_name = default
        multi = work / "multi.mlpackage"
        ct.utils.save_multifunction(desc, str(multi))
        spec = ct.utils.load_spec(str(multi))
        merged = 0
        for fname, func in spec.mlProgram.functions.items():
            before = graph_signature(func)
            merged += compact_function(func)
            if graph_signature(func) != before:
                raise ConversionError(f"compacting Core ML function {fname} changed its graph")
        spec.description.metadata.userDefined[MANIFEST_KEY] = manifest_json
        spec.description.metadata.shortDescription = "RS-Net: one function per input resolution (rsnet-edge)"
        weights = next(multi.rglob("weights"))
        ct.models.MLModel(spec, weights_dir=str(weights), skip_model_load=True).save(str(tmp))
    return {"input_name": INPUT_NAME, "output_name": OUTPUT_NAME, "manifest_metadata": MANIFEST_KEY,
            "minimum_deployment_target": "iOS18", "default_entry": default, "merged_consts": merged,
            "constexpr_folds": n_constexpr,
            "fold_at_load": "coreml constexpr_blockwise_shift_scale" if n_constexpr else None}


# --------------------------------------------------------------------------- MIL compaction
_FIRST = string.ascii_letters
_REST = string.ascii_letters + string.digits + "_"


def _short_names(taken: set[str]) -> Iterator[str]:
    """a, b, ..., Z, aa, ba, ... (valid identifiers, never one of ``taken``)."""
    i = 0
    while True:
        n, s = i // len(_FIRST), _FIRST[i % len(_FIRST)]
        while n:
            n -= 1
            s += _REST[n % len(_REST)]
            n //= len(_REST)
        i += 1
        if s not in taken:
            yield s


def _immediate_const(op) -> bool:
    return (op.type == "const" and len(op.outputs) == 1 and "val" in op.attributes
            and op.attributes["val"].WhichOneof("value") == "immediateValue")


def compact_function(func) -> int:
    """Compact one MIL function (proto, in place): every var/op name except the function's inputs
    and outputs becomes a short one, and identical immediate ``const`` ops (same type and value)
    are merged into the first. Blob-file constants (weights) are left alone. Returns the number of
    consts merged."""
    keep = {i.name for i in func.inputs}
    for block in func.block_specializations.values():
        keep.update(block.outputs)
    names = _short_names(keep)
    return sum(_compact_block(b, {}, names, keep) for b in func.block_specializations.values())


def _compact_block(block, rename: dict[str, str], names: Iterator[str], keep: set[str]) -> int:
    for i in block.inputs:
        if i.name not in keep:
            rename[i.name] = next(names)
            i.name = rename[i.name]
    merged, seen, kept = 0, {}, []
    for op in block.operations:
        for arg in op.inputs.values():
            for b in arg.arguments:
                if b.WhichOneof("binding") == "name" and b.name in rename:
                    b.name = rename[b.name]
        for sub in op.blocks:
            merged += _compact_block(sub, rename, names, keep)
        key = None
        if _immediate_const(op) and op.outputs[0].name not in keep:
            key = (op.outputs[0].type.SerializeToString(deterministic=True),
                   op.attributes["val"].SerializeToString(deterministic=True))
            if key in seen:
                rename[op.outputs[0].name] = seen[key]
                merged += 1
                continue
        for o in op.outputs:
            if o.name not in keep:
                rename[o.name] = next(names)
                o.name = rename[o.name]
        if key is not None:
            seen[key] = op.outputs[0].name
        if "name" in op.attributes and op.outputs:
            strings = op.attributes["name"].immediateValue.tensor.strings.values
            if len(strings) == 1:
                strings[0] = op.outputs[0].name
        kept.append(op)
    if len(kept) != len(block.operations):
        ops = [type(op)() for op in kept]
        for dst, src in zip(ops, kept):
            dst.CopyFrom(src)
        del block.operations[:]
        block.operations.extend(ops)
    block.outputs[:] = [rename.get(n, n) for n in block.outputs]
    return merged


def graph_signature(func) -> list[Any]:
    """A name-free description of a MIL function (proto): every non-const op with its type, its
    non-name attributes, output types and each input resolved to a constant's type+value, a
    function input, or (op index, output index). Equal signatures = the same computation."""
    sig: list[Any] = []
    for opset, block in sorted(func.block_specializations.items()):
        sig.append(opset)
        sig.extend(_block_signature(block, {i.name: ("input", i.name) for i in func.inputs}))
    return sig


def _block_signature(block, where: dict[str, Any]) -> list[Any]:
    where = dict(where)
    for k, i in enumerate(block.inputs):
        where[i.name] = ("block_input", k, i.type.SerializeToString(deterministic=True))
    out: list[Any] = []
    for op in block.operations:
        if op.type == "const" and len(op.outputs) == 1:
            where[op.outputs[0].name] = ("const", op.outputs[0].type.SerializeToString(deterministic=True),
                                         op.attributes["val"].SerializeToString(deterministic=True))
            continue
        ins = sorted((k, tuple(where[b.name] if b.WhichOneof("binding") == "name"
                               else ("value", b.value.SerializeToString(deterministic=True))
                               for b in arg.arguments))
                     for k, arg in op.inputs.items())
        attrs = sorted((k, v.SerializeToString(deterministic=True))
                       for k, v in op.attributes.items() if k != "name")
        n = len(out)
        out.append((op.type, ins, attrs, [o.type.SerializeToString(deterministic=True) for o in op.outputs],
                    [_block_signature(b, where) for b in op.blocks]))
        for j, o in enumerate(op.outputs):
            where[o.name] = ("op", n, j)
    out.append(("outputs", [where.get(n, ("input", n)) for n in block.outputs]))
    return out


def read_package(path) -> dict:
    """Structure of a saved .mlpackage without loading it (works on Linux): functions, their input
    shapes, default function, weight file size, embedded manifest JSON."""
    import coremltools as ct

    _quiet_coremltools()
    spec = ct.utils.load_spec(str(path))
    d = spec.description
    funcs = {}
    for f in d.functions:
        funcs[f.name] = {i.name: list(i.type.multiArrayType.shape) for i in f.input}
    weights = sorted(Path(path).rglob("weight.bin"))
    return {"functions": funcs, "default_function": d.defaultFunctionName,
            "weight_bytes": sum(w.stat().st_size for w in weights),
            "embedded_manifest": dict(d.metadata.userDefined).get(MANIFEST_KEY)}


def main(argv=None) -> int:
    return run_cli("coreml", lower, argv)


if __name__ == "__main__":
    sys.exit(main())
