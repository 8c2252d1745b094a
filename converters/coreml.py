"""RS-Net checkpoint -> one Core ML multifunction ML Program (.mlpackage, iOS 18 / macOS 15+).

One function per resolution (``forward_224`` ...) plus ``forward`` (= the default, highest
resolution; also the package's default function). Input ``x`` (1, 3, r, r) float32 NCHW, output
``logits``. ``coremltools.utils.save_multifunction`` de-duplicates equal constants across functions,
so the shared conv/FC weights are stored once (BN encoding: converters/prepare.py). The manifest is
embedded as ``user_defined_metadata["rsnet_edge.manifest"]``.

Conversion runs on Linux; prediction needs macOS (``converters.verify`` says so and skips it).

    python -m converters.coreml --ckpt rs_mbv2.pt --out rs_mbv2.mlpackage [--resolutions 224 160]
        [--weights shared|folded] [--dtype fp32|fp16]
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path

from converters.prepare import MANIFEST_KEY, ConversionError, Prepared, run_cli, sample_input
from rsnet_edge.manifest import DEFAULT_ENTRY

SUFFIX = ".mlpackage"
INPUT_NAME, OUTPUT_NAME = "x", "logits"


def _quiet_coremltools():
    import os
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("coremltools").setLevel(logging.ERROR)


def convert_one(module, resolution: int, dtype: str, path: Path) -> None:
    import coremltools as ct
    import torch

    ep = torch.export.export(module, (sample_input(resolution),)).run_decompositions({})
    precision = ct.precision.FLOAT16 if dtype == "fp16" else ct.precision.FLOAT32
    ml = ct.convert(ep, inputs=[ct.TensorType(name=INPUT_NAME, shape=(1, 3, resolution, resolution))],
                    outputs=[ct.TensorType(name=OUTPUT_NAME)], convert_to="mlprogram",
                    minimum_deployment_target=ct.target.iOS18, compute_precision=precision,
                    skip_model_load=True)
    ml.save(str(path))


def lower(prep: Prepared, manifest_json: str, tmp: Path, dtype: str) -> dict:
    if dtype not in ("fp32", "fp16"):
        raise ConversionError(f"unsupported dtype {dtype}")
    import coremltools as ct

    _quiet_coremltools()
    with tempfile.TemporaryDirectory(prefix="rsnet-coreml-", dir=tmp.parent) as work:
        work = Path(work)
        desc = ct.utils.MultiFunctionDescriptor()
        for name, (r, mod) in prep.entries().items():
            if name == DEFAULT_ENTRY:
                continue
            p = work / f"{name}.mlpackage"
            convert_one(mod, r, dtype, p)
            desc.add_function(str(p), "main", name)
        desc.add_function(str(work / f"forward_{prep.default_resolution}.mlpackage"), "main", DEFAULT_ENTRY)
        desc.default_function_name = DEFAULT_ENTRY
        multi = work / "multi.mlpackage"
        ct.utils.save_multifunction(desc, str(multi))
        model = ct.models.MLModel(str(multi), skip_model_load=True)
        model.user_defined_metadata[MANIFEST_KEY] = manifest_json
        model.short_description = "RS-Net: one function per input resolution (rsnet-edge)"
        model.save(str(tmp))
    return {"input_name": INPUT_NAME, "output_name": OUTPUT_NAME, "manifest_metadata": MANIFEST_KEY,
            "minimum_deployment_target": "iOS18"}


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
            "manifest_json": dict(d.metadata.userDefined).get(MANIFEST_KEY)}


def main(argv=None) -> int:
    return run_cli("coreml", SUFFIX, lower, argv, dtypes=("fp32", "fp16"))


if __name__ == "__main__":
    sys.exit(main())
