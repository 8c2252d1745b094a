"""Folded program -> RSFOLD compact artifact (``--weights shared`` on ExecuTorch and LiteRT).

The backend lowers the FOLDED modules (one entry per resolution, ``W * s_r`` in every conv), which
is exactly the program the stock runtime should run. This module finds every folded conv weight in
the program's bytes and hands them to :func:`rsnet_edge.rsfold.pack` as holes (``W`` stored once,
``s_r`` per resolution), so the shipped file holds the shared weights once and the device rebuilds
the folded program byte for byte at first load (see rsnet_edge/rsfold.py).

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
from rsnet_edge.rsfold import Hole, pack

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


def find_holes(data: bytes, prep: Prepared) -> tuple[list[Hole], list[str]]:
    """Every folded conv weight of every served resolution, located in ``data``."""
    holes: dict[int, Hole] = {}
    missing: list[str] = []
    layout: dict[str, tuple] = {}
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


def pack_program(data: bytes, prep: Prepared, backend: str) -> tuple[bytes, PackReport]:
    """RSFOLD bytes for a lowered folded program; refuses one in which no weight could be found."""
    inner = backends.get(backend).rsfold_inner
    if inner is None:
        raise ConversionError(f"--weights shared (fold at load) is not available for {backend}")
    holes, missing = find_holes(data, prep)
    if not holes:
        raise ConversionError(f"no folded conv weight found in the {backend} program: its weight "
                              f"layout is not one this converter knows")
    blob = pack(data, holes, inner)
    return blob, PackReport(len(holes), sum(h.size for h in holes), len(data), missing)

