"""Folded programs -> RSFOLD compact artifact (``--weights shared`` on ExecuTorch and LiteRT).

The backend lowers the FOLDED modules, one program per resolution (``W * s_r`` in every conv), which
are exactly the programs the stock runtime should run. This module finds every folded conv weight in
each program's bytes and hands them to :func:`rsnet_edge.rsfold.pack` as holes (``W`` stored once for
all programs, ``s_r`` per resolution), so the shipped file holds the shared weights once and the
device rebuilds each folded program byte for byte when it first needs it (see rsnet_edge/rsfold.py).

Finding a weight: backends store conv weights in their own layout (XNNPACK and LiteRT: OHWI for
dense convs, 1HWO for depthwise ones), so each folded weight is looked up under every permutation
of its 4 axes; the layout found for a conv at one resolution is tried first at the others. The
fold of the found layout is then checked to reproduce those bytes exactly (``pack`` refuses
otherwise), so a coincidental match is impossible to ship.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from converters.prepare import ConversionError, Prepared, bn_scale_shift
from rsnet_edge import backends
from rsnet_edge.rsfold import Hole, Program, pack

PERMS = list(itertools.permutations(range(4)))


@dataclass
class PackReport:
    holes: int
    hole_bytes: int
    program_bytes: int
    missing: list[str]


def _layout_hole(data: bytes, w: np.ndarray, s: np.ndarray, folded: np.ndarray, perm) -> Hole | None:
    cand = np.ascontiguousarray(folded.transpose(perm))
    off = data.find(cand.tobytes())
    if off < 0:
        return None
    j = perm.index(0)                       # where the output-channel axis went
    inner = int(np.prod(cand.shape[j + 1:])) if j < 3 else 1
    return Hole(off, np.ascontiguousarray(w.transpose(perm)).reshape(-1), s, inner)


def find_holes(data: bytes, prep: Prepared, layout: dict | None = None) -> tuple[list[Hole], list[str]]:
    """Every folded conv weight of every resolution of ``prep``, located in ``data``. ``layout``
    remembers the storage layout found for each conv (tried first next time)."""
    holes: dict[int, Hole] = {}
    missing: list[str] = []
    layout = {} if layout is None else layout
    for r in prep.resolutions:
        for p in prep.conv_bn(r):
            w = p.conv.weight.detach()
            s, _ = bn_scale_shift(p.bn)
            folded = (w * s.reshape(-1, 1, 1, 1)).numpy().astype("<f4")   # as converters.prepare.encode
            w_np, s_np = w.numpy().astype("<f4"), s.numpy().astype("<f4")
            order = ([layout[p.name]] if p.name in layout else []) + PERMS
            hole = None
            for perm in order:
                hole = _layout_hole(data, w_np, s_np, folded, perm)
                if hole is not None:
                    layout[p.name] = perm
                    break
            if hole is None:
                missing.append(f"{p.name}@{r}")
            else:
                holes.setdefault(hole.offset, hole)   # equal folded weights are stored once anyway
    return list(holes.values()), missing


SHARED_MIN_BYTES = 1024      # smaller constants are copied with their program


def _find_tensor(data: bytes, arr: np.ndarray) -> tuple[int, int] | None:
    """(offset, size) of ``arr``'s bytes in ``data`` under some permutation of its axes (the backend's
    storage layout), or None."""
    perms = list(itertools.permutations(range(arr.ndim))) if arr.ndim <= 4 else [tuple(range(arr.ndim))]
    for perm in perms:
        b = np.ascontiguousarray(arr.transpose(perm)).tobytes()
        off = data.find(b)
        if off >= 0:
            return off, len(b)
    return None


def find_shared(data: bytes, prep: Prepared, holes: list[Hole]) -> list[tuple[int, int]]:
    """Byte ranges of ``data`` holding constants every resolution's program has the same (weights no
    BN is folded into, e.g. the classifier; int8: the canonical int8 conv weights), so that RSFOLD
    stores them once for all programs. Ranges overlapping a hole are left out."""
    tensors = []
    for r in prep.resolutions:
        for _, t in list(prep.modules[r].named_parameters()) + list(prep.modules[r].named_buffers()):
            tensors.append(t.detach().numpy())
        if r in prep.quantized:
            tensors += [q.numpy() for q, _ in prep.quantized[r].weights.values()]
    taken = sorted((h.offset, h.offset + h.size) for h in holes)
    found: dict[int, tuple[int, int]] = {}
    for arr in tensors:
        if arr.nbytes < SHARED_MIN_BYTES:
            continue
        hit = _find_tensor(data, np.ascontiguousarray(arr))
        if hit is None or hit[0] in found:
            continue
        a, b = hit[0], hit[0] + hit[1]
        if any(a < e and s < b for s, e in taken):
            continue                        # a folded weight (a hole) or a range already claimed
        found[a] = hit
        taken.append((a, b))
        taken.sort()
    return sorted(found.values())


def pack_programs(programs: list[tuple[bytes, Prepared]], backend: str) -> tuple[bytes, PackReport]:
    """RSFOLD bytes for lowered folded programs (each with the Prepared subset it was lowered from:
    the entries it serves and the weights to look for); refuses a program in which no weight could
    be found."""
    inner = backends.get(backend).rsfold_inner
    if inner is None:
        raise ConversionError(f"--weights shared (fold at load) is not available for {backend}")
    packed, missing, layout = [], [], {}
    for data, prep in programs:
        holes, miss = find_holes(data, prep, layout)
        if not holes:
            raise ConversionError(f"no folded conv weight found in the {backend} program: its weight "
                                  f"layout is not one this converter knows")
        packed.append(Program(tuple(prep.entries()), data, holes, find_shared(data, prep, holes)))
        missing += miss
    blob = pack(packed, inner=inner)
    return blob, PackReport(sum(len(p.holes) for p in packed), sum(h.size for p in packed for h in p.holes),
                            sum(len(p.data) for p in packed), missing)
