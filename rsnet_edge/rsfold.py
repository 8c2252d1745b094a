"""RSFOLD: a compact artifact that becomes BN-folded programs on the device, at first load.

Programs holding each resolution's folded conv weights ``W * s_r`` run at the speed of a
single-resolution export but weigh ~S x its size. RSFOLD ships ``W`` (and every constant the
programs share) once plus the per-resolution scale vectors, and rebuilds each resolution's folded
program (an ExecuTorch ``.pte`` or LiteRT ``.tflite``; the top one also holds the default entry)
byte for byte before the STOCK runtime sees it: its copied ranges concatenated, each cut-out range
recomputed as float32 ``W[e] * s[(e // inner) % channels]`` (IEEE-754 single, round to nearest: the
same bits in numpy, PyTorch and Java), its size and sha256 checked. Each program unpacks on its own
(:mod:`rsnet_edge.cache`), so a runtime keeping one resolution unpacks and loads only that one. The
Java core's ``FoldUnpacker.java`` produces the same bytes and refuses the same containers with the
same lines (tests/test_android_core.py). User guide: docs/formats.md.

File layout (all integers little-endian)::

    0   8 bytes   magic b"RSFOLD01"
    8   uint64    H, the header length in bytes
    16  H bytes   header, UTF-8 JSON (below)
    16+H ...      payload; every "src"/"scale" offset below is relative to its start

    {"format": "rsnet-edge-rsfold", "version": 2,
     "inner": "pte" | "tflite",                     # what each unpacked program is
     "outputs": [                                    # one program each
       {"entries": ["forward_224", "forward"],       # the entry points it serves (null: every one)
        "size": N, "sha256": "<hex>",                # the unpacked program
        "ops": [                                     # appended to the program in order
          {"op": "copy", "src": o, "size": n},       # n payload bytes from o
          {"op": "scale_f32", "src": o, "size": n,   # n bytes = n/4 float32 weights W at o,
           "scale": so, "channels": C, "inner": K}]} # C float32 scales at so
     ]}

Version 1 (one program, ``"output": {"size", "sha256"}`` and ``"ops"`` at the top level) is still
read. Refused, with one :class:`RsfoldError` line and nothing written: any other op, a range outside
the payload, a ``scale_f32`` whose size is not a whole number of ``channels x inner`` weights, copies
of one program that overlap, programs that add up to more than :data:`MAX_AMPLIFICATION` times the
payload (a small file may not demand gigabytes), a program whose size or sha256 differs, a sha256
that is not 64 lower-case hex digits, an entry name that is not an identifier (``[A-Za-z_][A-Za-z0-9_]*``:
it names files), an entry point served by two programs, and ``"entries": null`` beside other programs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np

from . import jsonio
from .backends import for_rsfold_inner, rsfold_inners

MAGIC = b"RSFOLD01"
FORMAT = "rsnet-edge-rsfold"
VERSION = 2
READS = (1, 2)
#: the header is a small JSON index; a longer one is not an rsnet-edge container
MAX_HEADER_BYTES = 1 << 26
#: the unpacked programs may add up to at most this many times the payload: a program reads its
#: copied bytes once and W once per resolution it serves; a container asking for more is crafted
MAX_AMPLIFICATION = 64
_SLACK = 1 << 20               # ... plus this much, so that a tiny test container is not refused


class RsfoldError(ValueError):
    """A compact artifact that cannot be unpacked (corrupt, truncated, or not RSFOLD)."""


@dataclass(frozen=True)
class Hole:
    """A range of a folded program that unpacking recomputes: ``size = 4 * weight.size`` bytes
    at ``offset`` equal float32 ``weight[e] * scale[(e // inner) % scale.size]``."""
    offset: int
    weight: np.ndarray          # float32, flat, in the program's storage layout
    scale: np.ndarray           # float32 [channels]
    inner: int

    @property
    def size(self) -> int:
        return 4 * int(self.weight.size)


def fold(weight: np.ndarray, scale: np.ndarray, inner: int) -> np.ndarray:
    """float32 ``weight[e] * scale[(e // inner) % C]`` (flat), the one folding rule. One vectorised
    pass: the weights viewed as ``[outer, C, inner]`` times the scales broadcast over outer/inner."""
    w = np.ascontiguousarray(weight, dtype="<f4").reshape(-1)
    s = np.ascontiguousarray(scale, dtype="<f4").reshape(-1)
    c = s.size
    if c == 0 or inner <= 0 or w.size % (c * int(inner)):
        raise RsfoldError(f"a fold needs whole channels: {w.size} weights, {c} channels x inner {inner}")
    return (w.reshape(-1, c, int(inner)) * s.reshape(1, c, 1)).reshape(-1).astype("<f4", copy=False)


# --------------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class Program:
    """One program to pack: the entry points it serves (None: every entry), its bytes, its holes,
    and ``(offset, size)`` ranges whose bytes other programs have too (stored once in the payload)."""
    entries: tuple[str, ...] | None
    data: bytes
    holes: Sequence[Hole]
    shared: Sequence[tuple[int, int]] = ()


def pack(output: bytes | Sequence[Program], holes: Sequence[Hole] = (), inner: str = "pte") -> bytes:
    """The RSFOLD bytes that unpack to the given programs (or, for ``pack(program, holes, inner)``, to
    one program serving every entry). Identical weight (or scale) arrays are stored once across all
    programs. Raises RsfoldError if a hole does not reproduce its program exactly."""
    programs = [Program(None, output, holes)] if isinstance(output, (bytes, bytearray)) else list(output)
    if inner not in rsfold_inners():
        raise RsfoldError(f"unknown inner format {inner!r} (known: {', '.join(rsfold_inners())})")
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

    outputs = []
    for prog in programs:
        data, ops, pos = prog.data, [], 0
        spans = sorted([(h.offset, h.size, h) for h in prog.holes] + [(o, n, None) for o, n in prog.shared],
                       key=lambda t: t[0])
        for offset, size, h in spans:
            if offset < pos:
                raise RsfoldError(f"holes overlap at byte {offset}")
            end = offset + size
            if end > len(data):
                raise RsfoldError(f"hole at byte {offset} runs past the end of the program")
            if h is not None and fold(h.weight, h.scale, h.inner).tobytes() != data[offset:end]:
                raise RsfoldError(f"the fold for the hole at byte {offset} does not reproduce the program")
            if offset > pos:
                ops.append({"op": "copy", "src": _append(payload, data[pos:offset]), "size": offset - pos})
            if h is None:                                  # bytes other programs have too: stored once
                ops.append({"op": "copy", "src": put(data[offset:end], align=1), "size": size})
            else:
                ops.append({"op": "scale_f32", "src": put(np.ascontiguousarray(h.weight, "<f4").tobytes()),
                            "size": h.size, "scale": put(np.ascontiguousarray(h.scale, "<f4").tobytes()),
                            "channels": int(h.scale.size), "inner": int(h.inner)})
            pos = end
        if pos < len(data):
            ops.append({"op": "copy", "src": _append(payload, data[pos:]), "size": len(data) - pos})
        outputs.append({"entries": list(prog.entries) if prog.entries is not None else None,
                        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "ops": ops})
    header = {"format": FORMAT, "version": VERSION, "inner": inner, "outputs": outputs}
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob = MAGIC + struct.pack("<Q", len(head)) + head + bytes(payload)
    box = Container.from_bytes(blob)                          # never ship what does not round-trip
    for k, prog in enumerate(programs):
        if box.unpack(k) != prog.data:
            raise RsfoldError("internal error: the packed artifact does not unpack to the program")
    return blob


def _append(payload: bytearray, data: bytes) -> int:
    off = len(payload)
    payload.extend(data)
    return off


# ------------------------------------------------------------------------------- reading
#: an entry point's name is also a file name (the CLI's ``<entry>.<inner>``), a sha256 a cache file name
_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _uint(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


@dataclass(frozen=True)
class Output:
    """One program of a container, validated against the payload."""
    index: int
    entries: tuple[str, ...] | None
    size: int
    sha256: str
    ops: tuple[dict, ...]


def parse_header(raw: bytes, n_payload: int, name: str) -> tuple[str, list[Output]]:
    """(inner, outputs) of a header, every bound checked (see the module docstring)."""
    try:
        head = jsonio.loads(raw, f"{name} header", max_bytes=MAX_HEADER_BYTES)
    except jsonio.JsonError:
        raise RsfoldError(f"{name} has a corrupt header") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RsfoldError(f"{name} is not an rsnet-edge RSFOLD artifact")
    version = head.get("version")
    if version not in READS:
        raise RsfoldError(f"{name} has RSFOLD version {version!r}; this library reads version "
                          f"{' and '.join(map(str, READS))}")
    inner = head.get("inner")
    if inner not in rsfold_inners():
        raise RsfoldError(f"{name}: unknown inner format {inner!r}")
    if version == 1:
        out = head.get("output")
        if not isinstance(out, dict):
            raise RsfoldError(f"{name}: header lacks output size/sha256")
        outs = [{"entries": None, "size": out.get("size"), "sha256": out.get("sha256"), "ops": head.get("ops")}]
    else:
        outs = head.get("outputs")
        if not isinstance(outs, list) or not outs or not all(isinstance(o, dict) for o in outs):
            raise RsfoldError(f"{name}: header lacks outputs")
    outputs, total, served = [], 0, {}
    for i, o in enumerate(outs):
        where = f"{name}" if version == 1 else f"{name} output {i}"
        entries = o.get("entries")
        if entries is not None and not (isinstance(entries, list) and entries
                                        and all(isinstance(e, str) and _ENTRY.fullmatch(e) for e in entries)):
            raise RsfoldError(f"{where}: entries must be a list of entry-point names")
        if entries is None and len(outs) > 1:
            raise RsfoldError(f"{where}: entries null (every entry point) in a container of several programs")
        for e in entries or ():
            if e in served:
                raise RsfoldError(f"{where}: entry point {e} is served twice (also by output {served[e]})")
            served[e] = i
        if not (_uint(o.get("size")) and isinstance(o.get("sha256"), str) and _SHA256.fullmatch(o["sha256"])):
            raise RsfoldError(f"{where}: header lacks output size/sha256")
        ops = o.get("ops")
        if not isinstance(ops, list):
            raise RsfoldError(f"{where}: header lacks ops")
        made, copies = 0, []
        for k, op in enumerate(ops):
            kind = op.get("op") if isinstance(op, dict) else None
            if kind not in ("copy", "scale_f32"):
                raise RsfoldError(f"{where}: op {k} is unknown ({kind!r})")
            src, size = op.get("src"), op.get("size")
            if not (_uint(src) and _uint(size)) or src + size > n_payload:
                raise RsfoldError(f"{where} is truncated or corrupt (op {k} reads past the payload)")
            if kind == "copy":
                copies.append((src, src + size))
            else:
                c, inner_k, so = op.get("channels"), op.get("inner"), op.get("scale")
                if not (_uint(c) and c > 0 and _uint(inner_k) and inner_k > 0 and _uint(so)
                        and so + 4 * c <= n_payload and size % (4 * c * inner_k) == 0):
                    raise RsfoldError(f"{where} is truncated or corrupt (op {k} has a bad scale range)")
            made += size
        if made != o["size"]:
            raise RsfoldError(f"{where} is corrupt (ops make {made} bytes, header says {o['size']})")
        copies.sort()
        if any(b[0] < a[1] for a, b in zip(copies, copies[1:])):
            raise RsfoldError(f"{where} is corrupt (copies of one program overlap)")
        total += made
        outputs.append(Output(i, tuple(entries) if entries is not None else None, o["size"],
                              o["sha256"], tuple(ops)))
    if total > MAX_AMPLIFICATION * n_payload + _SLACK:
        raise RsfoldError(f"{name} is corrupt (it would unpack to {total} bytes from a {n_payload}-byte "
                          f"payload, more than {MAX_AMPLIFICATION}x)")
    return inner, outputs


class Container:
    """An RSFOLD container opened for unpacking: the header validated, the payload read range by
    range when a program is unpacked (never read whole, never mapped: mapped file pages would count
    in the process's resident memory). ``unpack(k)`` / ``unpack_to(k, file)`` rebuild program ``k``."""

    def __init__(self, data: bytes | None, name: str = "artifact", file: BinaryIO | None = None):
        self.name = name
        self._data, self._file = data, file
        self.size = len(data) if data is not None else os.fstat(file.fileno()).st_size
        first = self._read(0, 16)
        if len(first) < 16 or first[:8] != MAGIC:
            raise RsfoldError(f"{name} is not an RSFOLD artifact (bad magic)")
        (hlen,) = struct.unpack_from("<Q", first, 8)
        if hlen > MAX_HEADER_BYTES:
            raise RsfoldError(f"{name} has a corrupt header (claims {hlen} bytes)")
        if 16 + hlen > self.size:
            raise RsfoldError(f"{name} is truncated (header runs past the end of the file)")
        self.base = 16 + hlen
        self.inner, self.outputs = parse_header(self._read(16, hlen), self.size - self.base, name)

    def _read(self, offset: int, size: int) -> bytes:
        if self._data is not None:
            return bytes(self._data[offset:offset + size])
        parts, fd = [], self._file.fileno()
        while size > 0:
            b = os.pread(fd, size, offset)
            if not b:
                break
            parts.append(b)
            offset, size = offset + len(b), size - len(b)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "artifact") -> "Container":
        return cls(data, name)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Container":
        p = Path(path)
        try:
            f = open(p, "rb")
        except FileNotFoundError:
            raise RsfoldError(f"{p} does not exist") from None
        except IsADirectoryError:
            raise RsfoldError(f"{p} is a folder, not an RSFOLD artifact") from None
        except OSError as e:
            raise RsfoldError(f"cannot read {p}: {e.strerror or e}") from None
        try:
            return cls(None, p.name, f)
        except BaseException:
            f.close()
            raise

    @property
    def backend(self):
        return for_rsfold_inner(self.inner)

    def output_for(self, entry: str) -> Output:
        """The program serving ``entry`` (a program with ``entries`` null serves every entry)."""
        for o in self.outputs:
            if o.entries is None or entry in o.entries:
                return o
        raise RsfoldError(f"{self.name} has no program for entry point {entry}")

    def entry_names(self) -> set[str] | None:
        """Every entry point the programs name (None: one program serving every entry)."""
        if any(o.entries is None for o in self.outputs):
            return None
        return {e for o in self.outputs for e in o.entries}

    def chunks(self, k: int) -> Iterable[bytes | np.ndarray]:
        """Program ``k`` as consecutive byte chunks, one per op (bounded memory)."""
        base = self.base
        scales: dict[tuple[int, int], np.ndarray] = {}
        for op in self.outputs[k].ops:
            size = op["size"]
            raw = self._read(base + op["src"], size)
            if len(raw) != size:
                raise RsfoldError(f"{self.name} is truncated or corrupt (the file changed while it was read)")
            if op["op"] == "copy":
                yield raw
            else:
                key = (op["scale"], op["channels"])
                if key not in scales:
                    scales[key] = np.frombuffer(self._read(base + op["scale"], 4 * op["channels"]), dtype="<f4")
                yield fold(np.frombuffer(raw, dtype="<f4"), scales[key], op["inner"])

    def unpack_to(self, k: int, f: BinaryIO) -> str:
        """Write program ``k`` to ``f`` in one pass; returns its sha256 (checked against the header:
        a mismatch raises after the bytes went to ``f``, so write to a temp file)."""
        h = hashlib.sha256()
        for chunk in self.chunks(k):
            h.update(chunk)
            f.write(chunk)
        return self._check(k, h.hexdigest())

    def unpack(self, k: int = 0) -> bytes:
        out = bytearray()
        h = hashlib.sha256()
        for chunk in self.chunks(k):
            h.update(chunk)
            out += chunk.tobytes() if isinstance(chunk, np.ndarray) else chunk
        self._check(k, h.hexdigest())
        return bytes(out)

    def _check(self, k: int, digest: str) -> str:
        want = self.outputs[k].sha256
        if digest != want:
            where = self.name if len(self.outputs) == 1 else f"{self.name} program {k}"
            raise RsfoldError(f"{where} is corrupt: it unpacks to sha256 {digest[:12]}..., header says "
                              f"{want[:12]}...")
        return digest

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def unpack_bytes(data: bytes, name: str = "artifact", index: int = 0) -> tuple[bytes, dict]:
    """(program ``index`` of an in-memory container, a header summary ``{"inner", "output"}``)."""
    box = Container.from_bytes(data, name)
    if not 0 <= index < len(box.outputs):
        raise RsfoldError(f"{name} has no program {index}")
    o = box.outputs[index]
    return box.unpack(index), {"inner": box.inner, "entries": o.entries,
                               "output": {"size": o.size, "sha256": o.sha256}}


def peek_inner(path: str | os.PathLike) -> str:
    """The inner format (``pte`` / ``tflite``) an RSFOLD file unpacks to, from its header."""
    box = Container.open(path)
    try:
        return box.inner
    finally:
        box.close()


def backend_of(path: str | os.PathLike):
    """The :class:`rsnet_edge.backends.Backend` whose programs an RSFOLD file unpacks to."""
    return for_rsfold_inner(peek_inner(path))


def main(argv=None) -> int:
    """``python -m rsnet_edge.rsfold ARTIFACT.rsfold OUT``: unpack to files (prints each sha256).
    A container of one program writes the file OUT; of several, the folder OUT with one
    ``<entry>.<inner>`` file per program (``--entry NAME``: only the program serving NAME, to OUT)."""
    import argparse

    from . import cli
    from .files import atomic_output, clean_stale_temps
    from .manifest import sidecar_path

    ap = argparse.ArgumentParser(prog="python -m rsnet_edge.rsfold", description=main.__doc__)
    ap.add_argument("artifact")
    ap.add_argument("out")
    ap.add_argument("--entry", help="unpack only the program serving this entry point (e.g. forward_160)")
    a = ap.parse_args(argv)

    def work() -> int:
        src, out = Path(a.artifact), Path(a.out)
        if not src.exists():
            raise RsfoldError(f"{src} does not exist")
        if not src.is_file():
            raise RsfoldError(f"{src} is not a file")
        box = Container.open(src)
        picked = [box.output_for(a.entry)] if a.entry else box.outputs
        folder = len(picked) > 1
        cli.check_outputs([cli.Output(out, "OUT", "dir" if folder else "file")],
                          inputs=[src, sidecar_path(src)])
        clean_stale_temps(out)
        lines = []
        with atomic_output(out) as tmp:          # a folder of programs is all or nothing too
            if folder:
                tmp.mkdir()
            for o in picked:
                name = f"{(o.entries or ('program',))[0]}.{box.inner}"
                with open(tmp / name if folder else tmp, "wb") as f:
                    lines.append(f"{box.unpack_to(o.index, f)}  {out / name if folder else out}")
        print("\n".join(lines))
        return 0

    return cli.run(work)


if __name__ == "__main__":
    raise SystemExit(main())
