"""The deployment an RS-Net artifact replaces, made in the same bench run: one folded
single-resolution export per resolution of the same checkpoint, by the same converter pipeline
(``--weights folded``; int8 artifacts: int8 single exports calibrated on the same images), cached in
``--baseline-dir`` and reused when it was made from the same checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.measure import BenchError, Loaded
from converters.pipeline import convert, lower_of
from converters.quantize import INT8_CALIB_IMAGES
from rsnet_edge import backends
from rsnet_edge.files import sha256_file
from rsnet_edge.manifest import read_sidecar


def baseline_backend(path: Path) -> str | None:
    """The backend whose folded single-resolution export is ``path``'s baseline (RSFOLD: the
    backend it unpacks to); None when no baseline can be made and run here."""
    try:
        if backends.is_rsfold(path):
            from rsnet_edge.rsfold import RsfoldError, backend_of
            try:
                spec = backend_of(path)
            except RsfoldError:
                return None
        else:
            spec = backends.for_suffix(path.suffix)
    except ValueError:
        return None
    if spec is None or spec.converter is None or not spec.runs_here():
        return None
    return spec.name


def find_checkpoint(artifact: Path, ckpt: str | None) -> Path | None:
    if ckpt:
        p = Path(ckpt)
        if not p.is_file():
            raise BenchError(f"--ckpt {p} does not exist")
        return p
    try:
        name = read_sidecar(artifact).checkpoint.get("file")
    except ValueError:
        return None
    cand = artifact.with_name(name) if name else None
    return cand if cand is not None and cand.is_file() else None


@dataclass(frozen=True)
class Int8Calib:
    """How an int8 artifact's single-resolution baselines are calibrated: the same folder and
    number of images as the artifact itself (its manifest records them)."""
    folder: Path
    images: int


def folded_baseline(ckpt: Path, backend: str, resolution: int, out_dir: Path,
                    int8: Int8Calib | None = None) -> Path:
    """The folded single-resolution export of ``ckpt`` at ``resolution`` (converters' own
    ``--weights folded`` path; with ``int8``, the plain PT2E int8 export calibrated at that
    resolution); reused when ``out_dir`` already holds one made from this ckpt."""
    dtype = "int8" if int8 is not None else "fp32"
    suffix = backends.get(backend).suffix
    out = out_dir / f"{ckpt.stem}.folded_{resolution}{'.int8' if int8 else ''}{suffix}"
    if out.exists():
        try:
            m = read_sidecar(out)
            cal = (m.extra.get("int8") or {}).get("calibration") or {}
            if (m.checkpoint.get("sha256") == sha256_file(ckpt) and m.resolutions == [resolution]
                    and m.weights == "folded" and m.dtype == dtype and m.artifact.get("sha256") == sha256_file(out)
                    and (int8 is None or (cal.get("folder"), cal.get("images")) == (int8.folder.name, int8.images))):
                return out
        except ValueError:
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    convert(backend, lower_of(backend), ckpt, out, resolutions=[resolution], weights="folded", quiet=True,
            dtype=dtype, calib=int8.folder if int8 else None,
            calib_images=int8.images if int8 else INT8_CALIB_IMAGES)
    return out


def int8_calib_of(it: "Loaded", calib: str | None) -> Int8Calib | None:
    """The calibration of an int8 artifact's baselines (None for a float artifact). Raises
    BenchError when its calibration folder is not given (``--calib``) or is not the one used."""
    m = it.clf.manifest
    if m.dtype != "int8":
        return None
    cal = (m.extra.get("int8") or {}).get("calibration") or {}
    if not calib:
        raise BenchError(f"{it.path.name} is int8: pass --calib DIR, the image folder it was calibrated on "
                         f"({cal.get('folder', '?')}), for its int8 single-resolution baselines (or --no-baselines)")
    folder = Path(calib)
    if not folder.is_dir():
        raise BenchError(f"--calib {folder} is not a folder")
    if cal.get("folder") and folder.name != cal["folder"]:
        raise BenchError(f"--calib {folder}: {it.path.name} was calibrated on a folder named {cal['folder']}")
    return Int8Calib(folder, int(cal.get("images") or 0) or INT8_CALIB_IMAGES)


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def build_baselines(jobs: list[tuple], out_dir: Path, workers: int,
                    progress: bool = True) -> list[Path]:
    """:func:`folded_baseline` for every (checkpoint, backend, resolution[, int8 calibration]),
    ``workers`` conversions at a time (separate processes, one thread each); results in the order
    of ``jobs``."""
    from tqdm import tqdm

    if workers <= 1 or len(jobs) <= 1:
        return [folded_baseline(*job[:3], out_dir, *job[3:]) for job in
                tqdm(jobs, desc="folded baselines (convert)", disable=not progress, leave=False)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_one_thread) as ex:
        futures = [ex.submit(folded_baseline, *job[:3], out_dir, *job[3:]) for job in jobs]
        return [f.result() for f in tqdm(futures, desc="folded baselines (convert)", disable=not progress,
                                         leave=False)]

