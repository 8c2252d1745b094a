"""RS-Net checkpoint -> one ExecuTorch program (.pte), XNNPACK-delegated.

One method per served resolution (``forward_224`` ...), ``forward`` (= the default, highest
resolution) and a constant method ``manifest_json`` returning the manifest as a JSON string.
XNNPACK keeps every constant in one program-wide named data store keyed by the hash of its bytes, so
the shared conv/FC weights of all methods are stored once (docs/formats.md).

    python -m converters.executorch --ckpt rs_mbv2.pt --out rs_mbv2.pte [--resolutions 224 160]
        [--weights shared|affine|folded] [--dtype int8 --calib DATA/train [--calib-images N]]

``--dtype int8``: PT2E with XNNPACK's quantizer, calibrated per resolution on real images, one
canonical int8 weight tensor per conv shared by every entry (see converters/quantize.py); the
artifact is a plain ``.pte`` (its int8 weights are stored once by the named-data store).
"""

from __future__ import annotations

import sys
from pathlib import Path

from converters.pipeline import run_cli
from converters.prepare import ConversionError, Prepared, sample_input
from rsnet_edge.backends import ET_MANIFEST_METHOD, get

DTYPES = get("executorch").dtypes


def lower(prep: Prepared, manifest_json: str, tmp: Path, dtype: str) -> dict:
    if dtype not in DTYPES:
        raise ConversionError("the ExecuTorch converter writes fp32 or int8 (XNNPACK fp16 is not wired up)")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if dtype == "int8":                 # calibrated + converted by converters.quantize (prepare.convert)
        from converters.quantize import exported_programs
        if not prep.quantized:
            raise ConversionError("--dtype int8: the modules were not quantized (no calibration)")
        programs = exported_programs(prep, prep.quantized)
    else:
        programs = {name: torch.export.export(mod, (sample_input(r),))
                    for name, (r, mod) in prep.entries().items()}
    edge = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()],
                                       constant_methods={ET_MANIFEST_METHOD: manifest_json})
    program = edge.to_executorch()
    with open(tmp, "wb") as f:
        program.write_to_file(f)
    return {"delegate": "xnnpack", "manifest_method": ET_MANIFEST_METHOD}


def main(argv=None) -> int:
    return run_cli("executorch", lower, argv)


if __name__ == "__main__":
    sys.exit(main())
