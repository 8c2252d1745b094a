"""Check a converted artifact against its checkpoint, in the backend's own runtime.

    python -m converters.verify rs_mbv2.pte --ckpt rs_mbv2.pt [--images DIR] [--no-baseline]

For every entry point: max |logit difference| vs PyTorch and top-1 agreement (random inputs, or the
validation views of the images in DIR), then the artifact size against a single-resolution (folded)
export of the same backbone by the same backend. The artifact is opened and run by the library's one
runtime (:func:`rsnet_edge.runtime.open_artifact`: the backend's stock runtime, an RSFOLD artifact
unpacked first, the sidecar checked against the embedded manifest); Core ML is inspected (functions,
their input shapes, default function, weight bytes, manifest) and only predicted on macOS. A checkpoint that is not the one the
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

from converters.pipeline import convert
from converters.prepare import ConversionError, sample_input
from rsnet_edge import cli
from rsnet_edge.checkpoint import load_checkpoint, model_from_checkpoint
from rsnet_edge.cli import quiet
from rsnet_edge.files import artifact_size, atomic_write_bytes, sha256_file
from rsnet_edge.manifest import DEFAULT_ENTRY, Manifest, ManifestError, sidecar_path
from rsnet_edge.models import to_single_resolution
from rsnet_edge.preprocess import eval_batch, list_images, load_rgb
from rsnet_edge.runtime import Classifier, open_artifact

TOL = 1e-3
#: int8 artifacts (quantization tolerance, instead of TOL): on the labelled images of --images, at
#: every entry the int8 top-1 agrees with the fp32 checkpoint's on at least INT8_MIN_AGREE of the
#: images and int8 top-1 accuracy is at most INT8_MAX_DROP points below fp32's (the int8 target)
INT8_MIN_AGREE = 0.90
INT8_MAX_DROP = 1.0
_VERBOSE = False          # --verbose: let the runtimes and converters print their own logs


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


def open_checked(artifact: str | Path) -> Classifier:
    """The artifact opened by the library runtime for checking: sha256 against its sidecar, the sidecar
    against the embedded manifest (every field both must agree on), entry points present. Core ML is
    opened for inspection only off macOS."""
    with quiet(_VERBOSE):                 # runtimes' and coremltools' own logs
        return open_artifact(artifact, verify=True, runnable=False)


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
        files = list_images(images)
        if not files:
            raise ConversionError(f"no images under {images}")
        ims = [load_rgb(p) for p in files[:max(n, 8)]]
        inp = manifest.input
        return eval_batch(ims, resolution, inp.mean, inp.std, inp.crop_pct)
    return torch.cat([sample_input(resolution, seed=s) for s in range(n)]).numpy()


# ------------------------------------------------------------------------------- verify
def single_export_size(backend: str, ckpt_path: str | Path, resolution: int, dtype: str = "fp32",
                       calib: str | Path | None = None) -> int:
    """Size of a single-resolution, BN-folded export of the same checkpoint by the same converter
    pipeline (int8: quantized directly, calibrated on ``calib``; only its size is used)."""
    from converters.pipeline import default_out, lower_of

    with tempfile.TemporaryDirectory(prefix="rsnet-single-") as d:
        out = Path(d) / default_out(Path(ckpt_path).name, backend, "folded", dtype).name
        with quiet(_VERBOSE):                 # the backend's conversion log only with --verbose
            convert(backend, lower_of(backend), ckpt_path, out, resolutions=[resolution], weights="folded",
                    dtype=dtype, quiet=True, calib=calib if dtype == "int8" else None, calib_images=32)
        return artifact_size(out)


def labelled_images(images: str | Path, manifest: Manifest) -> tuple[list[Path], np.ndarray | None]:
    """Every image under ``images`` and, when each sits in a folder named after one of the
    manifest's classes (an ImageFolder split), its label index (else None)."""
    files = list_images(images)
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
    clf = open_checked(artifact)
    manifest, embedded, backend = clf.manifest, clf.embedded, clf.backend_name
    check_checkpoint(manifest, ckpt_path)
    ckpt = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(ckpt, interpolate=True)
    report: dict[str, Any] = {"backend": backend, "artifact": str(artifact), "entries": {},
                              "size_bytes": artifact_size(artifact), "embedded_manifest": embedded is not None}
    log(f"{artifact.name}: backend {backend}, weights {manifest.weights}, dtype {manifest.dtype}, "
        f"entries {manifest.resolutions}, default {default_entry_of(manifest)}, embedded manifest "
        f"{'yes' if embedded else 'NO'}")
    pairs = entry_pairs(manifest)
    missing = {e for e, _ in pairs} - clf.entry_names()
    if missing:
        raise ManifestError(f"{artifact.name} lacks entry points {sorted(missing)}")
    if backend == "coreml":
        from converters.coreml import read_package
        with quiet(_VERBOSE):                 # coremltools' import-time warnings
            pkg = read_package(artifact)
        report["coreml"] = {k: v for k, v in pkg.items() if k != "embedded_manifest"}
        for name, shapes in pkg["functions"].items():
            log(f"  function {name:12s} inputs {shapes}")
        log(f"  default function {pkg['default_function']}, weight.bin {pkg['weight_bytes']} bytes")
        check_coreml_structure(pkg, manifest)
        if sys.platform != "darwin":
            log("  prediction skipped: Core ML models run only on macOS (coremltools cannot predict on Linux)")
            report["prediction"] = "skipped (not macOS)"
            pairs = []
    elif clf.program != artifact:
        size = clf.program.stat().st_size
        report["unpacked"] = {"program": str(clf.program), "size_bytes": size}
        log(f"  fold at load: unpacked to {clf.program.name} ({size} bytes, the folded "
            f"{backend} program a stock runtime loads)")
    if pairs and manifest.dtype == "int8":
        if not images:
            raise ConversionError("an int8 artifact is checked on real images: pass --images DIR "
                                  "(e.g. DATA/val)")
        files, labels = labelled_images(images, manifest)
        ims = [load_rgb(p) for p in files]
        log(f"  int8: {len(files)} images{' (labelled)' if labels is not None else ''}; tolerance: "
            f"top-1 agreement >= {INT8_MIN_AGREE:.0%}, top-1 drop <= {INT8_MAX_DROP} point(s)")
        inp = manifest.input
        for entry, r in pairs:
            x = eval_batch(ims, r, inp.mean, inp.std, inp.crop_pct)
            want, got = _reference_and_artifact(clf, model, entry, r, x)
            report["entries"][entry] = _compare_int8(entry, r, want, got, labels, log)
        pairs = []
    for entry, r in pairs:
        x = inputs_for(r, images, manifest, n)
        want, got = _reference_and_artifact(clf, model, entry, r, x)
        report["entries"][entry] = _compare(entry, r, want, got, log)
    if baseline:
        single = single_export_size(backend, ckpt_path, manifest.default_resolution, manifest.dtype, images)
        report["single_bytes"] = single
        report["size_ratio"] = report["size_bytes"] / single
        log(f"  size {report['size_bytes']} bytes = {report['size_ratio']:.3f} x a single-resolution "
            f"folded {manifest.dtype} {backend} export ({single} bytes)")
    report["ok"] = all(e["ok"] for e in report["entries"].values())
    return report


def _reference_and_artifact(clf: Classifier, model, entry: str, r: int, x: np.ndarray):
    """(PyTorch logits of the checkpoint at ``r``, the artifact's logits of ``entry``) for ``x``."""
    ref = to_single_resolution(model, r, interpolate=True).eval()
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    with quiet(_VERBOSE):             # delegate-creation INFO lines on first run
        got = clf.run_entry(entry, x)
    return want, got


def _compare(entry: str, r: int, want: np.ndarray, got: np.ndarray, log) -> dict:
    diff = float(np.abs(want - got).max())
    agree = int((want.argmax(1) == got.argmax(1)).sum())
    ok = diff <= TOL and agree == len(want)
    log(f"  {entry:12s} r={r:4d}  max|dlogit| {diff:.2e}  top-1 agree {agree}/{len(want)}  "
        f"{'ok' if ok else 'FAIL'}")
    return {"resolution": r, "max_abs_diff": diff, "top1_agree": agree, "n": len(want), "ok": ok}


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
