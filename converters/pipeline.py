"""The conversion pipeline every converter CLI shares: checkpoint -> artifact + sidecar manifest.

    python -m converters.<backend> --ckpt rs.pt [--out PATH] [--resolutions ...] [--weights ...]

``convert()`` checks the arguments, loads the checkpoint, builds the per-resolution modules
(:mod:`converters.prepare`), quantizes them for ``--dtype int8`` (:mod:`converters.quantize`), lets
the backend's ``lower`` write the program into a temp file, packs it into the RSFOLD compact form for
``--weights shared`` where the backend registry says it has one (:mod:`converters.compact`), and
publishes the artifact and its ``<artifact>.manifest.json`` atomically. An unexpected failure inside a
backend's lowering is reported as ``error: <backend> conversion failed: <first line>``, exit status
2, no artifact left behind; ``--debug`` re-raises it with the full traceback. What each form ships
and the manifest: docs/formats.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

from converters.compact import pack_programs
from converters.prepare import ENCODINGS, WEIGHTS, BackendError, ConversionError, Prepared, prepare
from converters.quantize import (INT8_CALIB_IMAGES, calibration_files, check_int8_args, load_calibration,
                                 quantize_prepared)
from rsnet_edge import backends, cli
from rsnet_edge.backends import RSFOLD_SUFFIX
from rsnet_edge.checkpoint import load_checkpoint, manifest_for
from rsnet_edge.files import artifact_size, atomic_output, clean_stale_temps, remove_path, sha256_file
from rsnet_edge.manifest import Manifest, sidecar_path, write_sidecar
from rsnet_edge.models import normalize_resolutions

# A backend lowers: (prepared, manifest JSON to embed, temp output path, dtype) -> extra facts.
Lower = Callable[[Prepared, str, Path, str], dict]


def build_parser(backend: str) -> argparse.ArgumentParser:
    spec = backends.get(backend)
    ap = argparse.ArgumentParser(prog=f"python -m converters.{backend}",
                                 description=f"RS-Net checkpoint -> one {spec.suffix} with one entry point "
                                             f"per resolution (forward_<r>) and a default entry (the highest "
                                             f"resolution).")
    ap.add_argument("--ckpt", required=True, help="RS-Net checkpoint (.pt)")
    ap.add_argument("--out", help=f"output artifact (default: beside the checkpoint, its name with "
                                  f"{spec.shipped_suffix('shared')} for --weights shared, {spec.suffix} "
                                  f"otherwise)")
    ap.add_argument("--resolutions", type=lambda s: [int(x) for x in s.replace(",", " ").split()],
                    nargs="+", help="served resolutions (default: the trained ones); untrained ones "
                                    "get interpolated BN")
    ap.add_argument("--weights", choices=sorted(WEIGHTS), default="shared",
                    help="shared (default): conv weights stored once, BN folded when the model is "
                         "loaded (small and fast); affine: weights stored once, BN as an extra "
                         "per-channel op (small, slower; a stock-runtime file); folded: BN folded per "
                         "entry (fast, ~S x size)")
    ap.add_argument("--encoding", choices=[e for e in ENCODINGS if e != "folded"],
                    help="advanced: BN encoding for --weights affine (default affine)")
    ap.add_argument("--fold-budget", type=float, default=0.0,
                    help="advanced (affine): fold BN per entry into the convs that save the most "
                         "run time, up to this fraction of the weight bytes (default 0)")
    ap.add_argument("--dtype", choices=list(spec.dtypes), default="fp32")
    if "int8" in spec.dtypes:
        ap.add_argument("--calib", metavar="DIR",
                        help="--dtype int8: folder of real training images to calibrate every "
                             "resolution on (e.g. DATA/train; searched recursively)")
        ap.add_argument("--calib-images", type=int, default=INT8_CALIB_IMAGES, metavar="N",
                        help=f"--dtype int8: images used for calibration (default {INT8_CALIB_IMAGES}, "
                             f"spread over the folder)")
    ap.add_argument("--verbose", action="store_true", help="show the backend's own conversion logs")
    ap.add_argument("--debug", action="store_true",
                    help="re-raise a failure with its full traceback instead of one error line")
    return ap


def default_out(ckpt_path: str | os.PathLike, backend: str, weights: str, dtype: str = "fp32") -> Path:
    """``runs/rs_mbv2.pt`` -> ``runs/rs_mbv2.pte.rsfold`` (shared) / ``runs/rs_mbv2.pte`` (affine,
    folded) / ``runs/rs_mbv2.int8.pte`` (int8: never the name of a float export)..."""
    p = Path(ckpt_path)
    return p.with_name(p.stem + (".int8" if dtype == "int8" else "")
                       + backends.get(backend).shipped_suffix(weights, dtype))


def run_cli(backend: str, lower: Lower, argv: Sequence[str] | None = None) -> int:
    args = build_parser(backend).parse_args(argv)
    res = [r for group in (args.resolutions or []) for r in group] or None
    if args.out is None:
        args.out = str(default_out(args.ckpt, backend, args.weights, args.dtype))
    calib = getattr(args, "calib", None)

    def work() -> int:
        out = Path(args.out)           # checked before any work (rsnet_edge.cli's output rule)
        if res:
            try:
                normalize_resolutions(res)
            except ValueError as e:
                raise cli.UsageError(f"--resolutions: {e}") from None
        cli.check_outputs([cli.Output(out, "--out"), cli.Output(sidecar_path(out), "--out's manifest")],
                          inputs=[args.ckpt])
        for p in (out, sidecar_path(out)):
            clean_stale_temps(p)
        convert(backend, lower, args.ckpt, args.out, resolutions=res, weights=args.weights,
                encoding=args.encoding, fold_budget=args.fold_budget, dtype=args.dtype,
                verbose=args.verbose, calib=calib,
                calib_images=getattr(args, "calib_images", INT8_CALIB_IMAGES))
        return 0

    return cli.run(work, debug=args.debug, known=(ConversionError,))


def _check_out_name(out: Path, backend: str, weights: str, dtype: str, ckpt_path) -> None:
    spec = backends.get(backend)
    want = spec.shipped_suffix(weights, dtype)
    if want.endswith(RSFOLD_SUFFIX) != out.name.endswith(RSFOLD_SUFFIX) or out.name == want:
        hint = (f"for a plain {spec.suffix} pass --weights affine or folded"
                if want.endswith(RSFOLD_SUFFIX) else "only --weights shared writes .rsfold files"
                if dtype != "int8" else "int8 artifacts share their weights in a plain file")
        raise ConversionError(f"--out {out.name}: --weights {weights} writes a {want} file for {backend}, "
                              f"e.g. {Path(ckpt_path).stem}{want} ({hint})")


def convert(backend: str, lower: Lower, ckpt_path: str | os.PathLike, out: str | os.PathLike,
            resolutions: Sequence[int] | None = None, weights: str = "shared",
            encoding: str | None = None, fold_budget: float = 0.0, dtype: str = "fp32",
            quiet: bool = False, verbose: bool = False, calib: str | os.PathLike | None = None,
            calib_images: int = INT8_CALIB_IMAGES) -> Manifest:
    """Checkpoint file -> artifact + sidecar manifest, atomically. Returns the sidecar manifest.
    ``dtype="int8"`` needs ``calib`` (a folder of training images; converters.quantize)."""
    out = Path(out)
    spec = backends.get(backend)
    if dtype == "int8":
        check_int8_args(backend, weights, calib)
    elif calib is not None:
        raise ConversionError("--calib is for --dtype int8")
    _check_out_name(out, backend, weights, dtype, ckpt_path)
    if dtype == "int8":
        calibration_files(calib, calib_images)             # a missing / empty folder: refused first
    ckpt = load_checkpoint(ckpt_path)
    prep = prepare(ckpt, resolutions, weights, encoding, fold_budget)
    cal = None
    if dtype == "int8":                 # decoded to the views of these resolutions only; before any write
        cal = load_calibration(calib, calib_images, prep.resolutions, ckpt.get("crop_pct", 0.875))
    if cal is not None:
        try:
            prep.quantized, prep.info["int8"] = quantize_prepared(prep, cal, canonical=weights == "shared",
                                                                  verbose=verbose, progress=not quiet,
                                                                  backend=backend)
        except ConversionError:
            raise
        except Exception as e:
            raise BackendError(backend, e) from e
    manifest = manifest_for(ckpt, backend, resolutions=prep.resolutions, weights=weights, dtype=dtype,
                            checkpoint_path=ckpt_path, extra=prep.manifest_extra(backend))
    manifest.artifact = {"file": out.name}          # embedded copy: no sha256 (cannot hold its own)
    fold_at_load = spec.shipped_suffix(weights, dtype).endswith(RSFOLD_SUFFIX)

    def lowered(p: Prepared, path: Path) -> dict:
        try:
            with cli.quiet(verbose):          # backend logs / progress bars only with --verbose
                facts = lower(p, manifest.to_json(), path, dtype) or {}
        except ConversionError:
            raise
        except Exception as e:
            raise BackendError(backend, e) from e
        if not path.exists():
            raise ConversionError(f"{backend} lowering wrote nothing")
        return facts

    with atomic_output(out) as tmp:
        if not fold_at_load:
            manifest.extra.update(lowered(prep, tmp))
        else:                           # fold at load: one folded program per resolution, W once
            programs = []
            for r in prep.resolutions:
                sub = prep.subset(r)
                part = tmp.with_name(f"{tmp.name}.{r}{spec.suffix}")
                try:
                    manifest.extra.update(lowered(sub, part))
                    programs.append((part.read_bytes(), sub))
                finally:
                    remove_path(part)
            blob, rep = pack_programs(programs, backend)
            manifest.extra.update({"fold_at_load": "rsfold", "rsfold_holes": rep.holes,
                                   "rsfold_unfound": rep.missing[:8]})
            with open(tmp, "wb") as f:
                f.write(blob)
        manifest.artifact = {"file": out.name, "sha256": sha256_file(tmp), "size_bytes": artifact_size(tmp)}
        if fold_at_load:
            manifest.artifact["unpacked"] = [
                {"entries": list(sub.entries()), "format": spec.rsfold_inner,
                 "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
                for data, sub in programs]
    write_sidecar(manifest, out)
    if not quiet:
        print(f"wrote {out} ({manifest.artifact['size_bytes'] / 1e6:.2f} MB, entries "
              f"{', '.join(e.entry for e in manifest.entries)}, default {manifest.extra['default_entry']}, "
              f"weights={weights}, dtype={dtype}, "
              f"encoding={prep.encoding}) and {sidecar_path(out).name}")
    return manifest


def lower_of(backend: str) -> Lower:
    """The lowering function of a backend's converter module (from the registry)."""
    return backends.get(backend).converter_lower()
