"""Check a converted artifact against its checkpoint, in the backend's own runtime.

    python -m converters.verify rs_mbv2.pte --ckpt rs_mbv2.pt [--images DIR] [--no-baseline]

For every entry point: max |logit difference| vs PyTorch and top-1 agreement (random inputs, or the
validation views of the images in DIR), then the artifact size against a single-resolution (folded)
export of the same backbone by the same backend. ExecuTorch runs in ``executorch.runtime``, LiteRT
in ``ai_edge_litert``'s Interpreter; Core ML is inspected (functions, their input shapes, default
function, weight bytes, manifest) and only predicted on macOS. A checkpoint that is not the one the
artifact was converted from is refused. Exit status: 0 all good, 1 a parity/top-1 failure, 2 refused (one ``error:`` line).

An int8 artifact (manifest dtype ``int8``) is checked on real images only (``--images DIR``, every
image under it): per entry, top-1 agreement of int8 with the fp32 checkpoint and, when the images
sit in class folders (an ImageFolder split such as DATA/val), the top-1 accuracy of both. The
quantization tolerance replaces ``TOL``: agreement >= ``INT8_MIN_AGREE`` and an accuracy drop of at
most ``INT8_MAX_DROP`` points. Its size baseline is a single-resolution int8 export (calibrated on
``--images``; only its size is used).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rsnet_edge.rsfold import SUFFIX as RSFOLD_SUFFIX
from converters.prepare import (ET_MANIFEST_METHOD, MANIFEST_KEY, ConversionError, artifact_size, prepare,
                                sample_input)
from rsnet_edge.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from rsnet_edge.manifest import (DEFAULT_ENTRY, Manifest, ManifestError, check_artifact, sha256_file,
                                 sidecar_path)
from rsnet_edge import cli
from rsnet_edge.cli import one_line, quiet
from rsnet_edge.manifest import atomic_write_bytes
from rsnet_edge.models import to_single_resolution

TOL = 1e-3
#: int8 artifacts (quantization tolerance, instead of TOL): on the labelled images of --images, at
#: every entry the int8 top-1 agrees with the fp32 checkpoint's on at least INT8_MIN_AGREE of the
#: images and int8 top-1 accuracy is at most INT8_MAX_DROP points below fp32's (the int8 target)
INT8_MIN_AGREE = 0.90
INT8_MAX_DROP = 1.0
BACKEND_OF_SUFFIX = {".pte": "executorch", ".tflite": "tflite", ".mlpackage": "coreml", ".onnx": "onnx"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_VERBOSE = False          # --verbose: let the runtimes and converters print their own logs


def backend_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == RSFOLD_SUFFIX:                      # compact: the backend of what it unpacks to
        from rsnet_edge.rsfold import RsfoldError, peek_inner
        from rsnet_edge.runtime import RSFOLD_INNER
        try:
            return RSFOLD_INNER[peek_inner(path)]
        except RsfoldError as e:
            raise ManifestError(str(e)) from None
    if suffix not in BACKEND_OF_SUFFIX:
        raise ManifestError(f"cannot tell the backend of {Path(path).name} "
                            f"(expected one of {', '.join(BACKEND_OF_SUFFIX)})")
    return BACKEND_OF_SUFFIX[suffix]


def default_entry_of(manifest: Manifest) -> str:
    """The name of the default entry: ``forward``, or (Core ML) the default resolution's own
    ``forward_<r>``, which the package marks as its default function."""
    return str(manifest.extra.get("default_entry") or DEFAULT_ENTRY)


def entry_pairs(manifest: Manifest) -> list[tuple[str, int]]:
    """(entry point, resolution) for every entry point the artifact must have, the default last
    when it is an entry of its own."""
    pairs = [(e.entry, e.resolution) for e in manifest.entries]
    default = default_entry_of(manifest)
    if default not in {e for e, _ in pairs}:
        pairs.append((default, manifest.default_resolution))
    return pairs


def check_coreml_structure(pkg: dict, manifest: Manifest) -> None:
    """The package's functions are exactly the manifest's entry points (plus a separate default
    function only where the manifest names one), each taking ``x`` (1, 3, r, r), and the package's
    default function is the manifest's default entry."""
    from converters.coreml import INPUT_NAME
    want = {e: {INPUT_NAME: [1, 3, r, r]} for e, r in entry_pairs(manifest)}
    if set(pkg["functions"]) != set(want):
        raise ManifestError(f"functions {sorted(pkg['functions'])} != manifest entries {sorted(want)}")
    for name, shapes in want.items():
        if pkg["functions"][name] != shapes:
            raise ManifestError(f"function {name} takes {pkg['functions'][name]}, expected {shapes}")
    default = default_entry_of(manifest)
    if pkg["default_function"] != default:
        raise ManifestError(f"default function {pkg['default_function']!r} != the manifest's default "
                            f"entry {default!r}")


# ------------------------------------------------------------------------------ runtimes
class Runner:
    """Runs entry points of an artifact: ``run(entry, x[N,3,r,r] float32) -> logits[N, K]``."""

    def __init__(self, backend: str, artifact: str | Path, threads: int | None = None):
        self.backend, self.artifact = backend, Path(artifact)
        if backend == "executorch":
            from executorch.runtime import Runtime
            self._program = Runtime.get().load_program(str(self.artifact))
            self.entries = sorted(self._program.method_names)
            self._methods: dict[str, Any] = {}
        elif backend == "tflite":
            from ai_edge_litert.interpreter import Interpreter
            self._interp = Interpreter(model_path=str(self.artifact), num_threads=threads or 2)
            self.entries = sorted(self._interp.get_signature_list())
            self._runners: dict[str, Any] = {}
        elif backend == "onnx":
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            if threads:
                opts.intra_op_num_threads = threads
            self._sess = ort.InferenceSession(str(self.artifact), opts, providers=["CPUExecutionProvider"])
            text = self._sess.get_modelmeta().custom_metadata_map.get(MANIFEST_KEY)
            # routed by input size: every manifest entry (and the default) is served by the graph
            self.entries = ([e.entry for e in Manifest.from_json(text).entries] + [DEFAULT_ENTRY]) if text else []
            self._res = ({e.entry: e.resolution for e in Manifest.from_json(text).entries} if text else {})
        else:
            raise ConversionError(f"no runtime for {backend} on this machine")

    def prepare(self, entry: str) -> Callable[[np.ndarray], np.ndarray]:
        """A callable running one image batch of 1 through ``entry`` (loaded once)."""
        if self.backend == "onnx":
            name = self._sess.get_inputs()[0].name
            return lambda x: self._sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        if self.backend == "executorch":
            if entry not in self._methods:
                self._methods[entry] = self._program.load_method(entry)
            m = self._methods[entry]
            return lambda x: m.execute([torch.from_numpy(np.ascontiguousarray(x))])[0].numpy()
        if entry not in self._runners:
            self._runners[entry] = self._interp.get_signature_runner(entry)
        r = self._runners[entry]
        return lambda x: r(args_0=np.ascontiguousarray(x, dtype=np.float32))["output_0"]

    def run(self, entry: str, x: np.ndarray) -> np.ndarray:
        f = self.prepare(entry)
        return np.concatenate([f(x[i:i + 1]) for i in range(x.shape[0])])

    def manifest_json(self) -> str | None:
        if self.backend == "onnx":
            return self._sess.get_modelmeta().custom_metadata_map.get(MANIFEST_KEY)
        if self.backend == "executorch":
            if ET_MANIFEST_METHOD not in self._program.method_names:
                return None
            return self._program.load_method(ET_MANIFEST_METHOD).execute([])[0]
        from converters.tflite import read_metadata
        raw = read_metadata(self.artifact)
        return raw.decode("utf-8") if raw is not None else None


def embedded_manifest(artifact: str | Path) -> Manifest | None:
    backend = backend_of(artifact)
    if backend == "onnx":
        from converters.onnx import read_metadata as read_onnx_metadata
        text = read_onnx_metadata(artifact)
    elif backend == "coreml":
        from converters.coreml import read_package
        text = read_package(artifact)["manifest_json"]
    elif backend == "tflite":
        from converters.tflite import read_metadata
        raw = read_metadata(artifact)
        text = raw.decode("utf-8") if raw is not None else None
    else:
        text = Runner(backend, artifact).manifest_json()
    return Manifest.from_json(text) if text else None


def program_of(artifact: Path) -> Path:
    """The file a stock runtime loads: the artifact itself, or (RSFOLD) its unpacked program in the
    cache (unpacked once; sha256-checked)."""
    if artifact.suffix.lower() != RSFOLD_SUFFIX:
        return artifact
    from rsnet_edge.rsfold import cached_unpack
    return cached_unpack(artifact).path


def read_manifests(artifact: Path) -> tuple[Manifest, Manifest | None]:
    """(manifest to trust, embedded copy). The sidecar must describe this very artifact."""
    if not artifact.exists():
        raise ManifestError(f"{artifact} does not exist")
    side = None
    if sidecar_path(artifact).exists():      # sha256 first: a truncated file never reaches a loader
        side = Manifest.from_json(sidecar_path(artifact).read_bytes())
        check_artifact(side, artifact)
    from rsnet_edge.runtime import RuntimeLoadError, _check_magic
    try:
        program = program_of(artifact)
        _check_magic(program, backend_of(artifact))
        with quiet(_VERBOSE):
            embedded = embedded_manifest(program)
    except RuntimeLoadError as e:
        raise ManifestError(str(e)) from None
    except ManifestError:
        raise
    except Exception as e:                    # the runtimes' own errors on a corrupt file
        raise ManifestError(f"{artifact.name} cannot be opened (truncated or corrupt?): "
                            f"{one_line(e)}") from None
    if side is None and embedded is None:
        raise ManifestError(f"{artifact.name} has neither an embedded manifest nor a sidecar")
    if side is not None and embedded is not None:
        for key in ("backend", "arch", "arch_args", "weights", "dtype", "entries", "checkpoint",
                    "default_resolution", "class_names"):
            if getattr(side, key) != getattr(embedded, key):
                raise ManifestError(f"the sidecar manifest disagrees with the one embedded in "
                                    f"{artifact.name} on '{key}'")
    return (side or embedded), embedded


def check_checkpoint(manifest: Manifest, ckpt_path: str | Path) -> None:
    want = (manifest.checkpoint or {}).get("sha256")
    if not want:
        return
    got = sha256_file(ckpt_path)
    if got != want:
        raise ManifestError(f"{Path(ckpt_path).name} is not the checkpoint this artifact was converted "
                            f"from ({manifest.checkpoint.get('file')}, sha256 {want[:12]}... != "
                            f"{got[:12]}...)")


# ------------------------------------------------------------------------------- inputs
def inputs_for(resolution: int, images: str | Path | None, manifest: Manifest, n: int = 2) -> np.ndarray:
    if images:
        from rsnet_edge.preprocess import eval_batch, load_rgb
        files = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConversionError(f"no images under {images}")
        ims = [load_rgb(p) for p in files[:max(n, 8)]]
        inp = manifest.input
        return eval_batch(ims, resolution, inp.mean, inp.std, inp.crop_pct)
    return torch.cat([sample_input(resolution, seed=s) for s in range(n)]).numpy()


# ------------------------------------------------------------------------------- verify
def lower_of(backend: str):
    """The lowering function of a backend's converter module."""
    import importlib
    return importlib.import_module(f"converters.{backend}").lower


def single_export_size(backend: str, ckpt: dict, resolution: int, dtype: str = "fp32",
                       calib: str | Path | None = None) -> int:
    """Size of a single-resolution, BN-folded export of the same backbone by the same backend
    (int8: quantized directly, calibrated on ``calib``; only its size is used)."""
    from converters.prepare import SUFFIXES
    lower = lower_of(backend)
    suffix = SUFFIXES[backend]
    prep = prepare(ckpt, [resolution], "folded")
    if dtype == "int8":
        from converters.quantize import load_calibration, quantize_prepared
        prep.quantized, _ = quantize_prepared(prep, load_calibration(calib, 32), canonical=False,
                                              verbose=_VERBOSE, progress=False, backend=backend)
    with tempfile.TemporaryDirectory(prefix="rsnet-single-") as d:
        out = Path(d) / f"single{suffix}"
        with quiet(_VERBOSE):                 # the backend's conversion log only with --verbose
            lower(prep, "{}", out, dtype)
        return artifact_size(out)


def labelled_images(images: str | Path, manifest: Manifest) -> tuple[list[Path], np.ndarray | None]:
    """Every image under ``images`` and, when each sits in a folder named after one of the
    manifest's classes (an ImageFolder split), its label index (else None)."""
    files = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConversionError(f"no images under {images}")
    index = {c: i for i, c in enumerate(manifest.class_names)}
    if all(f.parent.name in index for f in files):
        return files, np.array([index[f.parent.name] for f in files])
    return files, None


def _compare_int8(entry: str, r: int, want: np.ndarray, got: np.ndarray, labels, log) -> dict:
    """int8 vs fp32 on real images: top-1 agreement and (labelled) top-1 accuracy of both."""
    agree = int((want.argmax(1) == got.argmax(1)).sum())
    n = len(want)
    rep = {"resolution": r, "max_abs_diff": float(np.abs(want - got).max()), "top1_agree": agree, "n": n}
    ok = agree >= INT8_MIN_AGREE * n
    text = f"top-1 agree {agree}/{n} ({100 * agree / n:.1f}%)"
    if labels is not None:
        acc32 = 100.0 * float((want.argmax(1) == labels).mean())
        acc8 = 100.0 * float((got.argmax(1) == labels).mean())
        rep.update({"top1_fp32": acc32, "top1_int8": acc8})
        ok = ok and acc32 - acc8 <= INT8_MAX_DROP + 1e-9
        text += f"  top-1 fp32 {acc32:.1f}%  int8 {acc8:.1f}%  ({acc8 - acc32:+.1f})"
    rep["ok"] = ok
    log(f"  {entry:12s} r={r:4d}  {text}  max|dlogit| {rep['max_abs_diff']:.2e}  {'ok' if ok else 'FAIL'}")
    return rep


def verify(artifact: str | Path, ckpt_path: str | Path, images: str | Path | None = None,
           baseline: bool = True, n: int = 2, log: Callable[[str], None] = print) -> dict:
    artifact = Path(artifact)
    backend = backend_of(artifact)
    manifest, embedded = read_manifests(artifact)
    check_checkpoint(manifest, ckpt_path)
    ckpt = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(ckpt, interpolate=True)
    report: dict[str, Any] = {"backend": backend, "artifact": str(artifact), "entries": {},
                              "size_bytes": artifact_size(artifact), "embedded_manifest": embedded is not None}
    log(f"{artifact.name}: backend {backend}, weights {manifest.weights}, dtype {manifest.dtype}, "
        f"entries {manifest.resolutions}, default {default_entry_of(manifest)}, embedded manifest "
        f"{'yes' if embedded else 'NO'}")
    if backend == "coreml":
        from converters.coreml import read_package
        with quiet(_VERBOSE):                 # coremltools' import-time warnings
            pkg = read_package(artifact)
        report["coreml"] = {k: v for k, v in pkg.items() if k != "manifest_json"}
        for name, shapes in pkg["functions"].items():
            log(f"  function {name:12s} inputs {shapes}")
        log(f"  default function {pkg['default_function']}, weight.bin {pkg['weight_bytes']} bytes")
        check_coreml_structure(pkg, manifest)
        if sys.platform != "darwin":
            log("  prediction skipped: Core ML models run only on macOS (coremltools cannot predict on Linux)")
            report["prediction"] = "skipped (not macOS)"
        else:
            report["entries"] = _coreml_parity(artifact, manifest, model, images, n, log)
    else:
        program = program_of(artifact)
        if program != artifact:
            report["unpacked"] = {"program": str(program), "size_bytes": program.stat().st_size}
            log(f"  fold at load: unpacked to {program.name} ({program.stat().st_size} bytes, the folded "
                f"{backend} program a stock runtime loads)")
        with quiet(_VERBOSE):
            runner = Runner(backend, program)
        pairs = entry_pairs(manifest)
        missing = {e for e, _ in pairs} - set(runner.entries)
        if missing:
            raise ManifestError(f"{artifact.name} lacks entry points {sorted(missing)}")
        if manifest.dtype == "int8":
            if not images:
                raise ConversionError("an int8 artifact is checked on real images: pass --images DIR "
                                      "(e.g. DATA/val)")
            from rsnet_edge.preprocess import eval_batch, load_rgb
            files, labels = labelled_images(images, manifest)
            ims = [load_rgb(p) for p in files]
            log(f"  int8: {len(files)} images{' (labelled)' if labels is not None else ''}; tolerance: "
                f"top-1 agreement >= {INT8_MIN_AGREE:.0%}, top-1 drop <= {INT8_MAX_DROP} point(s)")
            for entry, r in pairs:
                inp = manifest.input
                x = eval_batch(ims, r, inp.mean, inp.std, inp.crop_pct)
                ref = to_single_resolution(model, r, interpolate=True).eval()
                with torch.no_grad():
                    want = ref(torch.from_numpy(x)).numpy()
                with quiet(_VERBOSE):
                    got = runner.run(entry, x)
                report["entries"][entry] = _compare_int8(entry, r, want, got, labels, log)
            pairs = []
        for entry, r in pairs:
            x = inputs_for(r, images, manifest, n)
            ref = to_single_resolution(model, r, interpolate=True).eval()
            with torch.no_grad():
                want = ref(torch.from_numpy(x)).numpy()
            with quiet(_VERBOSE):             # delegate-creation INFO lines on first run
                got = runner.run(entry, x)
            report["entries"][entry] = _compare(entry, r, want, got, log)
    if baseline:
        single = single_export_size(backend, ckpt, manifest.default_resolution, manifest.dtype, images)
        report["single_bytes"] = single
        report["size_ratio"] = report["size_bytes"] / single
        log(f"  size {report['size_bytes']} bytes = {report['size_ratio']:.3f} x a single-resolution "
            f"folded {manifest.dtype} {backend} export ({single} bytes)")
    report["ok"] = all(e["ok"] for e in report["entries"].values())
    return report


def _compare(entry: str, r: int, want: np.ndarray, got: np.ndarray, log) -> dict:
    diff = float(np.abs(want - got).max())
    agree = int((want.argmax(1) == got.argmax(1)).sum())
    ok = diff <= TOL and agree == len(want)
    log(f"  {entry:12s} r={r:4d}  max|dlogit| {diff:.2e}  top-1 agree {agree}/{len(want)}  "
        f"{'ok' if ok else 'FAIL'}")
    return {"resolution": r, "max_abs_diff": diff, "top1_agree": agree, "n": len(want), "ok": ok}


def _coreml_parity(artifact, manifest, model, images, n, log) -> dict:  # pragma: no cover (macOS)
    import coremltools as ct
    out = {}
    for entry, r in entry_pairs(manifest) + [(None, manifest.default_resolution)]:
        # function_name=None: the package's default function
        ml = ct.models.MLModel(str(artifact), function_name=entry)
        x = inputs_for(r, images, manifest, n)
        ref = to_single_resolution(model, r, interpolate=True).eval()
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).numpy()
        got = np.concatenate([ml.predict({"x": x[i:i + 1]})["logits"] for i in range(len(x))])
        out[entry or "(default function)"] = _compare(entry or "(default)", r, want, got, log)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m converters.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact")
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--images", help="folder of images to compare on (default: random inputs)")
    ap.add_argument("--n", type=int, default=2, help="random inputs per entry (default 2)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the single-resolution size baseline")
    ap.add_argument("--json", help="also write the report here")
    cli.add_verbose(ap)
    args = ap.parse_args(argv)
    global _VERBOSE
    _VERBOSE = args.verbose

    def work() -> int:
        cli.check_outputs([cli.Output(args.json, "--json")],
                          inputs=[args.artifact, args.ckpt, sidecar_path(args.artifact), args.images])
        rep = verify(args.artifact, args.ckpt, args.images, baseline=not args.no_baseline, n=args.n)
        if args.json:
            atomic_write_bytes(args.json, json.dumps(rep, indent=2).encode())
        print("OK" if rep["ok"] else "FAILED")
        return 0 if rep["ok"] else 1

    return cli.run(work, debug=args.verbose, known=(ConversionError,))


if __name__ == "__main__":
    sys.exit(main())
