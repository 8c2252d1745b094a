"""RS-Net checkpoint -> one LiteRT model (.tflite) with one signature per resolution.

Signatures ``forward_224`` ... (input ``args_0`` NCHW float32, output ``output_0`` logits), plus
``forward``: an alias SignatureDef pointing at the default (highest) resolution's subgraph, so the
default entry costs no bytes. litert-torch caches constants by fingerprint across signatures, so
shared conv/FC weights are stored once (BN encodings: docs/formats.md).

After conversion the flatbuffer is rewritten once to
* embed the manifest as model metadata ``rsnet_edge.manifest`` (a buffer holding the JSON),
* add the ``forward`` alias signature,
* replace the long per-tensor debug names (module paths, ~80 KB per signature) by short ones;
  the signature input/output names are kept.

    python -m converters.tflite --ckpt rs_mbv2.pt --out rs_mbv2.tflite [--resolutions 224 160]
        [--weights shared|affine|folded] [--dtype int8 --calib DATA/train [--calib-images N]]

``--dtype int8``: PT2E with litert-torch's own quantizer
(``litert_torch.quantize.pt2e_quantizer.PT2EQuantizer``), calibrated per resolution on real images,
one canonical int8 weight tensor per conv shared by every entry (converters/quantize.py); lowered
with ``convert(quant_config=QuantConfig(pt2e_quantizer=...))``. The LiteRT converter stores
byte-identical constant buffers once across signatures, so the canonical int8 weights are stored
once in a plain ``.tflite`` (no RSFOLD). Its converter makes the signature I/O int8 (the first
quantize / last dequantize become the I/O type); :func:`float_io` puts float32 I/O back with a
QUANTIZE op after each input and a DEQUANTIZE op before each output, so every signature keeps the
manifest's contract (``args_0`` NCHW float32 in, float32 logits out). What stays per signature:
int32 biases and every tensor's quantization parameters (per-channel float32 scales + int64 zero
points, ~24 bytes per output channel per conv); identical scale / zero-point vectors (the all-zero
zero points above all) are written once (:func:`_shared_quantization_vectors`).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np

from converters.pipeline import run_cli
from converters.prepare import ConversionError, Prepared, sample_input
from rsnet_edge.backends import MANIFEST_KEY, get
from rsnet_edge.manifest import DEFAULT_ENTRY, entry_name

DTYPES = get("tflite").dtypes
ALIGN = 16   # the TFLite schema's force_align for Buffer.data


@contextlib.contextmanager
def _aligned_buffer_packing():
    """The generated BufferT.Pack writes data with 1-byte alignment; the schema asks for 16."""
    from ai_edge_litert import schema_py_generated as fb

    original = fb.BufferT.Pack

    def pack(self, builder):
        data = None
        if self.data is not None:
            payload = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), ALIGN)
            builder.head -= len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        fb.BufferAddOffset(builder, self.offset)
        fb.BufferAddSize(builder, self.size)
        return fb.BufferEnd(builder)

    fb.BufferT.Pack = pack
    try:
        yield
    finally:
        fb.BufferT.Pack = original


class _VectorCache:
    """A builder proxy whose ``CreateNumpyVector`` returns the offset of an identical vector
    written before (same dtype, same bytes) instead of writing it again."""

    def __init__(self, builder, cache: dict):
        self._builder, self._cache = builder, cache

    def __getattr__(self, name):
        return getattr(self._builder, name)

    def CreateNumpyVector(self, x):
        key = (x.dtype.str, x.tobytes())
        off = self._cache.get(key)
        if off is None:
            off = self._cache[key] = self._builder.CreateNumpyVector(x)
        return off


@contextlib.contextmanager
def _shared_quantization_vectors():
    """int8 models: every tensor of every signature carries its own QuantizationParameters with
    per-channel ``scale`` (float32) and ``zero_point`` (int64, all 0 for symmetric weights and
    their int32 biases) vectors, ~24 bytes per output channel per conv per signature. Identical
    vectors are written once and referenced from every table that holds them (a flatbuffer may
    point several tables at one vector; readers only read it)."""
    from ai_edge_litert import schema_py_generated as fb

    original = fb.QuantizationParametersT.Pack
    caches: dict[int, dict] = {}

    def pack(self, builder):
        return original(self, _VectorCache(builder, caches.setdefault(id(builder), {})))

    fb.QuantizationParametersT.Pack = pack
    try:
        yield
    finally:
        fb.QuantizationParametersT.Pack = original


def _opcode_index(model, builtin: int, version: int) -> int:
    """Index of ``builtin`` in the model's operator codes (added if absent)."""
    from ai_edge_litert import schema_py_generated as fb

    for i, oc in enumerate(model.operatorCodes or []):
        if max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)) == builtin:
            return i
    oc = fb.OperatorCodeT()
    oc.builtinCode = builtin
    oc.deprecatedBuiltinCode = min(builtin, fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    oc.version = version
    model.operatorCodes = list(model.operatorCodes or []) + [oc]
    return len(model.operatorCodes) - 1


def float_io(model) -> int:
    """Turn every int8 subgraph input / output into float32: a QUANTIZE op (float32 -> the int8
    tensor, its scale and zero point unchanged) runs first, a DEQUANTIZE op (int8 -> float32)
    last; signatures point at the float tensors. Returns how many tensors were changed."""
    from ai_edge_litert import schema_py_generated as fb

    TT, OP = fb.TensorType, fb.BuiltinOperator
    changed = 0
    for g, sg in enumerate(model.subgraphs):
        remap: dict[int, int] = {}

        def twin(i: int) -> int:
            t = sg.tensors[i]
            f = fb.TensorT()
            f.shape, f.shapeSignature, f.hasRank = t.shape, t.shapeSignature, t.hasRank
            f.type, f.buffer, f.name = TT.FLOAT32, 0, t.name
            name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            t.name = f"{name}_int8"
            sg.tensors.append(f)
            remap[i] = len(sg.tensors) - 1
            return remap[i]

        def op(code: int, src: int, dst: int):
            o = fb.OperatorT()
            o.opcodeIndex = _opcode_index(model, code, 2)     # version 2: int8 (op_version.cc)
            o.inputs, o.outputs = [src], [dst]
            return o

        pre = [op(OP.QUANTIZE, twin(int(i)), int(i)) for i in sg.inputs if sg.tensors[int(i)].type == TT.INT8]
        post = [op(OP.DEQUANTIZE, int(i), twin(int(i))) for i in sg.outputs if sg.tensors[int(i)].type == TT.INT8]
        if not remap:
            continue
        sg.inputs = [remap.get(int(i), int(i)) for i in sg.inputs]
        sg.outputs = [remap.get(int(i), int(i)) for i in sg.outputs]
        sg.operators = pre + list(sg.operators or []) + post
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == g:
                for tm in list(sig.inputs or []) + list(sig.outputs or []):
                    tm.tensorIndex = remap.get(int(tm.tensorIndex), int(tm.tensorIndex))
        changed += len(remap)
    return changed


def int8_weight_storage(model_bytes: bytes) -> dict[str, int]:
    """Constant int8 tensors of a .tflite (weights): references over all subgraphs, distinct
    buffers, bytes stored and bytes the references would take if each had its own buffer."""
    from ai_edge_litert import schema_py_generated as fb

    m = fb.Model.GetRootAs(model_bytes, 0)
    refs, referenced, sizes = 0, 0, {}
    for g in range(m.SubgraphsLength()):
        sg = m.Subgraphs(g)
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            if t.Type() != fb.TensorType.INT8 or t.Buffer() == 0:
                continue
            b = m.Buffers(t.Buffer())
            size = b.Size() if b.Offset() > 1 else b.DataLength()
            if size:                                   # a constant (activations have no data)
                refs, referenced = refs + 1, referenced + size
                sizes[t.Buffer()] = size
    return {"int8_weight_tensors": refs, "int8_weight_buffers": len(sizes),
            "int8_weight_bytes": sum(sizes.values()), "int8_weight_bytes_if_not_shared": referenced}


def postprocess(model_bytes: bytes, manifest_json: str, default_entry_of: str | None,
                short_names: bool = True, float_inputs: bool = False) -> bytes:
    """Add the manifest metadata and the ``forward`` alias of ``default_entry_of`` (None: this
    program holds no default entry); shorten tensor names; with ``float_inputs`` turn int8
    signature I/O into float32 (:func:`float_io`)."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(model_bytes))
    if float_inputs:
        float_io(model)
    sigs = {s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey: s
            for s in (model.signatureDefs or [])}
    if default_entry_of is not None and default_entry_of not in sigs:
        raise ConversionError(f"converted model lacks signature {default_entry_of} (has {sorted(sigs)})")
    if short_names:
        for g, sg in enumerate(model.subgraphs):
            keep = set(int(i) for i in list(sg.inputs) + list(sg.outputs))
            for i, t in enumerate(sg.tensors):
                if i not in keep:
                    t.name = f"t{i}"
    model.signatureDefs = [s for k, s in sigs.items() if k != DEFAULT_ENTRY]
    if default_entry_of is not None:
        src = sigs[default_entry_of]
        alias = fb.SignatureDefT()
        alias.signatureKey = DEFAULT_ENTRY
        alias.subgraphIndex = src.subgraphIndex
        alias.inputs, alias.outputs = src.inputs, src.outputs
        model.signatureDefs.append(alias)
    buf = fb.BufferT()
    buf.data = np.frombuffer(manifest_json.encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buf)
    meta = fb.MetadataT()
    meta.name = MANIFEST_KEY
    meta.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if (m.name.decode() if isinstance(m.name, bytes)
                                                             else m.name) != MANIFEST_KEY] + [meta]
    with _aligned_buffer_packing(), _shared_quantization_vectors():
        return bytes(fbu.convert_object_to_bytearray(model))


def read_metadata(path_or_bytes, name: str = MANIFEST_KEY) -> bytes | None:
    """The bytes of one named metadata buffer of a .tflite file (None if absent)."""
    from ai_edge_litert import schema_py_generated as fb

    data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else Path(path_or_bytes).read_bytes()
    m = fb.Model.GetRootAs(data, 0)
    for i in range(m.MetadataLength()):
        md = m.Metadata(i)
        if md.Name().decode() == name:
            b = m.Buffers(md.Buffer())
            if b.Offset() > 1:
                return bytes(data[b.Offset():b.Offset() + b.Size()])
            return b.DataAsNumpy().tobytes() if b.DataLength() else b""
    return None


def lower(prep: Prepared, manifest_json: str, tmp: Path, dtype: str) -> dict:
    if dtype not in DTYPES:
        raise ConversionError("the LiteRT converter writes fp32 or int8")
    import litert_torch

    modules, kwargs = prep.modules, {}
    if dtype == "int8":                 # calibrated + converted by converters.quantize (prepare.convert)
        from litert_torch.quantize.quant_config import QuantConfig

        from converters.quantize import make_quantizer
        if not prep.quantized:
            raise ConversionError("--dtype int8: the modules were not quantized (no calibration)")
        modules = {r: prep.quantized[r].module for r in prep.resolutions}
        kwargs["quant_config"] = QuantConfig(pt2e_quantizer=make_quantizer("tflite"))
    conv = None
    for r in prep.resolutions:
        name, mod = entry_name(r), modules[r]
        conv = (litert_torch.signature if conv is None else conv.signature)(name, mod, (sample_input(r),))
    edge = conv.convert(**kwargs)
    raw = tmp.with_name(tmp.name + ".raw")
    try:
        edge.export(str(raw))
        data = postprocess(raw.read_bytes(), manifest_json,
                           entry_name(prep.default_resolution) if prep.serves_default else None,
                           float_inputs=dtype == "int8")
    finally:
        if raw.exists():
            raw.unlink()
    with open(tmp, "wb") as f:
        f.write(data)
    facts = {"manifest_metadata": MANIFEST_KEY, "input_name": "args_0", "output_name": "output_0"}
    if dtype == "int8":
        facts["int8_storage"] = {"io": "float32 (QUANTIZE after the input, DEQUANTIZE before the output)",
                                 **int8_weight_storage(data)}
    return facts


def main(argv=None) -> int:
    return run_cli("tflite", lower, argv)


if __name__ == "__main__":
    sys.exit(main())
