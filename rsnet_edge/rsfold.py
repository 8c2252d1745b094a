"""RSFOLD: a compact artifact that becomes the BN-folded program on the device, at first load.

An RS-Net served at S resolutions needs, per resolution, the conv weights with that resolution's
BatchNorm folded in: ``W_r = W * s_r`` (``s_r`` one scale per output channel). A program holding
all S folded copies runs at the speed of a single-resolution export but is ~S x its size; a program
that keeps ``W`` once and applies ``s_r`` as a separate op is small but slower (no mobile runtime
fuses the extra pass). RSFOLD ships ``W`` once plus the S scale vectors and, before the STOCK
runtime sees it, rebuilds the folded program byte for byte:

* the folded program (an ExecuTorch ``.pte`` or a LiteRT ``.tflite`` with one entry point per
  resolution) is made at conversion as usual;
* every stored folded weight is found in its bytes (by content, in the backend's storage layout)
  and cut out; what remains is copied verbatim;
* unpacking concatenates the copied ranges and recomputes each cut-out range as float32
  ``W[e] * s[(e // inner) % channels]`` (IEEE-754 single precision, round to nearest: the same
  bits in numpy, PyTorch and Java), then checks the result's size and sha256.

The unpacked file is an ordinary ``.pte`` / ``.tflite``; :func:`cached_unpack` writes it once into
a cache folder (atomically, named by its sha256) and reuses it after checking the sha256 again.
The Android app's Java core (``FoldUnpacker.java``) implements the same unpack and is tested to
produce the same bytes.

File layout (all integers little-endian)::

    0   8 bytes   magic b"RSFOLD01"
    8   uint64    H, the header length in bytes
    16  H bytes   header, UTF-8 JSON (below)
    16+H ...      payload; every "src"/"scale" offset below is relative to its start

    {"format": "rsnet-edge-rsfold", "version": 1,
     "inner": "pte" | "tflite",                  # what the unpacked file is
     "output": {"size": N, "sha256": "<hex>"},   # the unpacked file
     "ops": [                                     # appended to the output in order
        {"op": "copy", "src": o, "size": n},      # n payload bytes from o
        {"op": "scale_f32", "src": o, "size": n,  # n bytes = n/4 float32 weights W at o,
         "scale": so, "channels": C, "inner": K}  # C float32 scales at so
     ]}

Any other op, a range outside the payload, or an output whose size or sha256 differs is refused
(:class:`RsfoldError`, one line); nothing is written then.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import jsonio
from .backends import for_rsfold_inner, rsfold_inners
from .files import atomic_write_bytes, sha256_file

MAGIC = b"RSFOLD01"
FORMAT = "rsnet-edge-rsfold"
VERSION = 1
CACHE_ENV = "RSNET_EDGE_CACHE"


class RsfoldError(ValueError):
    """A compact artifact that cannot be unpacked (corrupt, truncated, or not RSFOLD)."""


@dataclass(frozen=True)
class Hole:
    """A range of the folded program that unpacking recomputes: ``size = 4 * weight.size`` bytes
    at ``offset`` equal float32 ``weight[e] * scale[(e // inner) % scale.size]``."""
    offset: int
    weight: np.ndarray          # float32, flat, in the program's storage layout
    scale: np.ndarray           # float32 [channels]
    inner: int

    @property
    def size(self) -> int:
        return 4 * int(self.weight.size)


def fold(weight: np.ndarray, scale: np.ndarray, inner: int) -> np.ndarray:
    """float32 ``weight[e] * scale[(e // inner) % C]`` (flat), the one folding rule."""
    w = np.ascontiguousarray(weight, dtype="<f4").reshape(-1)
    s = np.ascontiguousarray(scale, dtype="<f4").reshape(-1)
    c = s.size
    if c == 0 or inner <= 0:
        raise RsfoldError("a fold needs at least one channel and inner >= 1")
    idx = (np.arange(w.size, dtype=np.int64) // int(inner)) % c
    return (w * s[idx]).astype("<f4", copy=False)


# --------------------------------------------------------------------------------- writing
def pack(output: bytes, holes: Sequence[Hole], inner: str) -> bytes:
    """The RSFOLD bytes that unpack to ``output``. Identical weight (or scale) arrays are stored
    once. Raises RsfoldError if a hole does not reproduce ``output`` exactly."""
    if inner not in rsfold_inners():
        raise RsfoldError(f"unknown inner format {inner!r} (known: {', '.join(rsfold_inners())})")
    holes = sorted(holes, key=lambda h: h.offset)
    payload = bytearray()
    stored: dict[bytes, int] = {}           # sha256 of an array's bytes -> payload offset

    def put(data: bytes, align: int = 4) -> int:
        key = hashlib.sha256(data).digest()
        if key in stored:
            return stored[key]
        payload.extend(b"\0" * (-len(payload) % align))
        stored[key] = len(payload)
        payload.extend(data)
        return stored[key]

    ops: list[dict] = []
    pos = 0
    for h in holes:
        if h.offset < pos:
            raise RsfoldError(f"holes overlap at byte {h.offset}")
        end = h.offset + h.size
        if end > len(output):
            raise RsfoldError(f"hole at byte {h.offset} runs past the end of the program")
        if fold(h.weight, h.scale, h.inner).tobytes() != output[h.offset:end]:
            raise RsfoldError(f"the fold for the hole at byte {h.offset} does not reproduce the program")
        if h.offset > pos:
            ops.append({"op": "copy", "src": _append(payload, output[pos:h.offset]), "size": h.offset - pos})
        ops.append({"op": "scale_f32", "src": put(np.ascontiguousarray(h.weight, "<f4").tobytes()),
                    "size": h.size, "scale": put(np.ascontiguousarray(h.scale, "<f4").tobytes()),
                    "channels": int(h.scale.size), "inner": int(h.inner)})
        pos = end
    if pos < len(output):
        ops.append({"op": "copy", "src": _append(payload, output[pos:]), "size": len(output) - pos})
    header = {"format": FORMAT, "version": VERSION, "inner": inner,
              "output": {"size": len(output), "sha256": hashlib.sha256(output).hexdigest()},
              "ops": ops}
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob = MAGIC + struct.pack("<Q", len(head)) + head + bytes(payload)
    if unpack_bytes(blob)[0] != output:                      # never ship what does not round-trip
        raise RsfoldError("internal error: the packed artifact does not unpack to the program")
    return blob


def _append(payload: bytearray, data: bytes) -> int:
    off = len(payload)
    payload.extend(data)
    return off


# ------------------------------------------------------------------------------- reading
def read_header(data: bytes, name: str = "artifact") -> tuple[dict, int]:
    """(header dict, payload offset); validates everything but the output hash."""
    if len(data) < 16 or data[:8] != MAGIC:
        raise RsfoldError(f"{name} is not an RSFOLD artifact (bad magic)")
    (hlen,) = struct.unpack_from("<Q", data, 8)
    if 16 + hlen > len(data):
        raise RsfoldError(f"{name} is truncated (header runs past the end of the file)")
    try:
        head = jsonio.loads(memoryview(data)[16:16 + hlen], f"{name} header", max_bytes=1 << 26)
    except jsonio.JsonError:
        raise RsfoldError(f"{name} has a corrupt header") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RsfoldError(f"{name} is not an rsnet-edge RSFOLD artifact")
    if head.get("version") != VERSION:
        raise RsfoldError(f"{name} has RSFOLD version {head.get('version')!r}; this library reads "
                          f"version {VERSION}")
    if head.get("inner") not in rsfold_inners():
        raise RsfoldError(f"{name}: unknown inner format {head.get('inner')!r}")
    out = head.get("output")
    if not (isinstance(out, dict) and _uint(out.get("size")) and isinstance(out.get("sha256"), str)):
        raise RsfoldError(f"{name}: header lacks output size/sha256")
    ops = head.get("ops")
    if not isinstance(ops, list):
        raise RsfoldError(f"{name}: header lacks ops")
    base = 16 + hlen
    n_payload = len(data) - base
    total = 0
    for k, op in enumerate(ops):
        kind = op.get("op") if isinstance(op, dict) else None
        if kind not in ("copy", "scale_f32"):
            raise RsfoldError(f"{name}: op {k} is unknown ({kind!r})")
        src, size = op.get("src"), op.get("size")
        if not (_uint(src) and _uint(size)) or src + size > n_payload:
            raise RsfoldError(f"{name} is truncated or corrupt (op {k} reads past the payload)")
        if kind == "scale_f32":
            c, inner, so = op.get("channels"), op.get("inner"), op.get("scale")
            if not (_uint(c) and c > 0 and _uint(inner) and inner > 0 and _uint(so)
                    and so + 4 * c <= n_payload and size % 4 == 0):
                raise RsfoldError(f"{name} is truncated or corrupt (op {k} has a bad scale range)")
        total += size
    if total != out["size"]:
        raise RsfoldError(f"{name} is corrupt (ops make {total} bytes, header says {out['size']})")
    return head, base


def peek_inner(path: str | os.PathLike) -> str:
    """The inner format (``pte`` / ``tflite``) an RSFOLD file unpacks to, from its header only."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                raise RsfoldError(f"{p.name} is not an RSFOLD artifact (bad magic)")
            (hlen,) = struct.unpack_from("<Q", head, 8)
            text = f.read(min(hlen, 1 << 26))
    except OSError as e:
        raise RsfoldError(f"cannot read {p}: {e.strerror or e}") from None
    try:
        inner = jsonio.loads(text, f"{p.name} header", max_bytes=1 << 26).get("inner")
    except (jsonio.JsonError, AttributeError):
        raise RsfoldError(f"{p.name} has a corrupt header") from None
    if inner not in rsfold_inners():
        raise RsfoldError(f"{p.name}: unknown inner format {inner!r}")
    return inner


def backend_of(path: str | os.PathLike):
    """The :class:`rsnet_edge.backends.Backend` whose program an RSFOLD file unpacks to."""
    return for_rsfold_inner(peek_inner(path))


def _uint(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def unpack_bytes(data: bytes, name: str = "artifact") -> tuple[bytes, dict]:
    """(unpacked program bytes, header); checks the output size and sha256."""
    head, base = read_header(data, name)
    out = bytearray(head["output"]["size"])
    pos = 0
    for op in head["ops"]:
        src, size = base + op["src"], op["size"]
        if op["op"] == "copy":
            out[pos:pos + size] = data[src:src + size]
        else:
            w = np.frombuffer(data, dtype="<f4", count=size // 4, offset=src)
            s = np.frombuffer(data, dtype="<f4", count=op["channels"], offset=base + op["scale"])
            out[pos:pos + size] = fold(w, s, op["inner"]).tobytes()
        pos += size
    digest = hashlib.sha256(out).hexdigest()
    if digest != head["output"]["sha256"]:
        raise RsfoldError(f"{name} is corrupt: it unpacks to sha256 {digest[:12]}..., header says "
                          f"{head['output']['sha256'][:12]}...")
    return bytes(out), head


def cache_dir() -> Path:
    """``$RSNET_EDGE_CACHE``, else ``$XDG_CACHE_HOME/rsnet_edge``, else ``~/.cache/rsnet_edge``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rsnet_edge"


@dataclass
class Unpacked:
    path: Path               # the stock-runtime file (in the cache)
    inner: str
    sha256: str
    size: int
    reused: bool             # True: a cached copy with the right sha256 was found
    seconds: float           # time spent unpacking (0 when reused) + checking


def cached_unpack(path: str | os.PathLike, cache: str | os.PathLike | None = None) -> Unpacked:
    """Unpack ``path`` into the cache once (atomically) and return the stock-runtime file; a cached
    copy is reused only when its sha256 is the one the artifact records."""
    import time

    t = time.perf_counter()
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise RsfoldError(f"cannot read {p}: {e.strerror or e}") from None
    head, _ = read_header(data, p.name)
    want = head["output"]["sha256"]
    folder = Path(cache) if cache is not None else cache_dir()
    target = folder / f"{want}.{head['inner']}"
    if target.is_file() and target.stat().st_size == head["output"]["size"] and sha256_file(target) == want:
        return Unpacked(target, head["inner"], want, head["output"]["size"], True, time.perf_counter() - t)
    program, _ = unpack_bytes(data, p.name)                 # raises before anything is written
    atomic_write_bytes(target, program)                      # temp + fsync + rename, folder created
    return Unpacked(target, head["inner"], want, len(program), False, time.perf_counter() - t)


def main(argv=None) -> int:
    """``python -m rsnet_edge.rsfold ARTIFACT.rsfold OUT``: unpack to a file (prints its sha256)."""
    import argparse

    from .cli import Output, UsageError, check_outputs
    from .manifest import sidecar_path

    ap = argparse.ArgumentParser(prog="python -m rsnet_edge.rsfold", description=main.__doc__)
    ap.add_argument("artifact")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    src, out = Path(a.artifact), Path(a.out)
    if not src.exists():
        raise UsageError(f"{src} does not exist")
    if not src.is_file():
        raise UsageError(f"{src} is not a file")
    # OUT may be neither the artifact nor its sidecar manifest (nor a link to either), checked
    # before anything is read; the program is written atomically (temp + rename)
    check_outputs([Output(out, "OUT")], inputs=[src, sidecar_path(src)])
    try:
        data = src.read_bytes()
    except OSError as e:
        raise RsfoldError(f"cannot read {src}: {e.strerror or e}") from None
    program, head = unpack_bytes(data, src.name)
    atomic_write_bytes(out, program)
    print(f"{head['output']['sha256']}  {out}")
    return 0


if __name__ == "__main__":
    from .cli import run as _run
    raise SystemExit(_run(main))
