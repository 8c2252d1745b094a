"""RS-Net checkpoint -> one LiteRT model (.tflite) with one signature per resolution.

Signatures ``forward_224`` ... (input ``args_0`` NCHW float32, output ``output_0`` logits), plus
``forward``: an alias SignatureDef pointing at the default (highest) resolution's subgraph, so the
default entry costs no bytes. litert-torch caches constants by fingerprint across signatures, so
shared conv/FC weights are stored once (see converters/prepare.py for the BN encoding).

After conversion the flatbuffer is rewritten once to
* embed the manifest as model metadata ``rsnet_edge.manifest`` (a buffer holding the JSON),
* add the ``forward`` alias signature,
* replace the long per-tensor debug names (module paths, ~80 KB per signature) by short ones;
  the signature input/output names are kept.

    python -m converters.tflite --ckpt rs_mbv2.pt --out rs_mbv2.tflite [--resolutions 224 160]
        [--weights shared|folded]
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np

from converters.prepare import MANIFEST_KEY, ConversionError, Prepared, run_cli, sample_input
from rsnet_edge.manifest import DEFAULT_ENTRY, entry_name

SUFFIX = ".tflite"
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


def postprocess(model_bytes: bytes, manifest_json: str, default_entry_of: str,
                short_names: bool = True) -> bytes:
    """Add the manifest metadata and the ``forward`` alias; shorten tensor names."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(model_bytes))
    sigs = {s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey: s
            for s in (model.signatureDefs or [])}
    if default_entry_of not in sigs:
        raise ConversionError(f"converted model lacks signature {default_entry_of} (has {sorted(sigs)})")
    if short_names:
        for g, sg in enumerate(model.subgraphs):
            keep = set(int(i) for i in list(sg.inputs) + list(sg.outputs))
            for i, t in enumerate(sg.tensors):
                if i not in keep:
                    t.name = f"t{i}"
    src = sigs[default_entry_of]
    alias = fb.SignatureDefT()
    alias.signatureKey = DEFAULT_ENTRY
    alias.subgraphIndex = src.subgraphIndex
    alias.inputs, alias.outputs = src.inputs, src.outputs
    model.signatureDefs = [s for k, s in sigs.items() if k != DEFAULT_ENTRY] + [alias]
    buf = fb.BufferT()
    buf.data = np.frombuffer(manifest_json.encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buf)
    meta = fb.MetadataT()
    meta.name = MANIFEST_KEY
    meta.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if (m.name.decode() if isinstance(m.name, bytes)
                                                             else m.name) != MANIFEST_KEY] + [meta]
    with _aligned_buffer_packing():
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
    if dtype != "fp32":
        raise ConversionError("the LiteRT converter writes fp32 only")
    import litert_torch

    conv = None
    for r in prep.resolutions:
        name, mod = entry_name(r), prep.modules[r]
        conv = (litert_torch.signature if conv is None else conv.signature)(name, mod, (sample_input(r),))
    edge = conv.convert()
    raw = tmp.with_name(tmp.name + ".raw")
    try:
        edge.export(str(raw))
        data = postprocess(raw.read_bytes(), manifest_json, entry_name(prep.default_resolution))
    finally:
        if raw.exists():
            raw.unlink()
    with open(tmp, "wb") as f:
        f.write(data)
    return {"manifest_metadata": MANIFEST_KEY, "input_name": "args_0", "output_name": "output_0"}


def main(argv=None) -> int:
    return run_cli("tflite", SUFFIX, lower, argv)


if __name__ == "__main__":
    sys.exit(main())
