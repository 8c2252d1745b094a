"""Every registered architecture through the converters: parameters, shipped size against a folded
single-resolution export, and parity (not a test: a table for the docs).

    python -m bench.arch_table [--arch NAME ...] [--backend executorch] [--resolutions 64 56 48 40 32] \
        [--num-classes 10] [--out-dir runs/arch_table] [--json table.json]

For each architecture: a random RS-Net checkpoint whose BN sets really differ per resolution (random
affine parameters and statistics, seeded) -> the backend's default artifact (``--weights shared``:
``.pte.rsfold`` / ``.tflite.rsfold`` / an ``.onnx`` ONNX Runtime folds at load) -> ``converters.verify``
(every entry against the checkpoint in the backend's runtime, and the size against a folded
single-resolution export of the same checkpoint by the same converter). One Markdown row each:
parameters (single model, RS-Net), BN layers that fold / stay a per-resolution affine, shipped
bytes, single-export bytes, their ratio, max |logit difference| over the entries. A failing
architecture gets a row saying why; the others go on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from converters.pipeline import convert, default_out, lower_of
from converters.verify import verify
from rsnet_edge import archs, backends, cli
from rsnet_edge.checkpoint import save_checkpoint, versions
from rsnet_edge.files import atomic_write_bytes
from rsnet_edge.models import create_model, param_counts, switchable_bns

HEADER = ("| arch | family | params | RS-Net params | folded BN / affine BN | shipped bytes | single bytes "
          "| shipped / single | max abs logit diff |\n|---|---|---|---|---|---|---|---|---|")


@torch.no_grad()
def random_checkpoint(arch: str, resolutions, num_classes: int, path: Path, seed: int = 0,
                      width: float | None = None) -> Path:
    """A random RS-Net checkpoint of ``arch`` whose BN sets differ per resolution (``width``: the
    width multiplier, for architectures that take one; default the builder's)."""
    torch.manual_seed(seed)
    args = archs.arch_args(arch, num_classes, width_mult=width if archs.get(arch).width_arg else None)
    model = create_model(arch, resolutions, **args)
    g = torch.Generator().manual_seed(seed + 1)
    for sbn in switchable_bns(model):
        for bn in sbn.bns:
            c = bn.num_features
            bn.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
            bn.bias.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(c, generator=g))
    ckpt = {"arch": arch, "arch_args": args, "resolutions": list(resolutions),
            "class_names": [f"c{i}" for i in range(num_classes)], **archs.checkpoint_preprocess(arch),
            "state_dict": model.state_dict(), "alpha": torch.zeros(len(resolutions)), "metrics": {},
            "madds": {}, "params": param_counts(model), "versions": versions()}
    save_checkpoint(ckpt, path)
    return path


def row(arch: str, backend: str, resolutions, num_classes: int, out_dir: Path) -> dict:
    """Checkpoint -> default artifact -> verify, for one architecture (facts as a dict)."""
    spec = archs.get(arch)
    stem = arch.replace(":", "_")
    ckpt = random_checkpoint(arch, resolutions, num_classes, out_dir / f"{stem}.pt")
    out = out_dir / default_out(ckpt.name, backend, "shared").name
    t = time.time()
    manifest = convert(backend, lower_of(backend), ckpt, out, weights="shared", quiet=True)
    rep = verify(out, ckpt, baseline=True, log=lambda _: None)
    counts = param_counts(create_model(arch, resolutions, **archs.arch_args(arch, num_classes)))
    diffs = [e["max_abs_diff"] for e in rep["entries"].values()]
    return {"arch": arch, "family": spec.family, "params": counts["single"], "rsnet_params": counts["total"],
            "folded_bns": manifest.extra.get("convs"), "affine_bns": manifest.extra.get("affine_bns", 0),
            "size_bytes": rep["size_bytes"], "single_bytes": rep["single_bytes"], "ratio": rep["size_ratio"],
            "max_abs_diff": max(diffs) if diffs else None, "ok": rep["ok"], "seconds": round(time.time() - t, 1)}


def markdown(r: dict) -> str:
    if "error" in r:
        return f"| {r['arch']} | {r['family']} | - | - | - | - | - | - | {r['error']} |"
    diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}" + ("" if r["ok"] else " FAIL")
    return (f"| {r['arch']} | {r['family']} | {r['params'] / 1e6:.2f}M | {r['rsnet_params'] / 1e6:.2f}M "
            f"| {r['folded_bns']} / {r['affine_bns']} | {r['size_bytes']:,} | {r['single_bytes']:,} "
            f"| {r['ratio']:.3f} | {diff} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.arch_table", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", nargs="+", metavar="NAME", help="default: every registered name")
    ap.add_argument("--backend", default="executorch", choices=[b.name for b in backends.converted()])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 56, 48, 40, 32])
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--out-dir", default="runs/arch_table", help="checkpoints and artifacts (kept)")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)

    def work() -> int:
        names = a.arch or [n for n in archs.names() if archs.get(n).available()]
        for n in names:
            archs.check(n)                       # unknown / not installable here: refused up front
        out_dir = Path(a.out_dir)
        cli.check_outputs([cli.Output(a.json, "--json"), cli.Output(out_dir, "--out-dir", kind="dir")])
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"{a.backend}, resolutions {a.resolutions}, {a.num_classes} classes, random BN sets\n")
        print(HEADER, flush=True)
        rows, failed = [], 0
        for n in names:
            try:
                r = row(n, a.backend, a.resolutions, a.num_classes, out_dir)
            except Exception as e:  # noqa: BLE001 - one architecture's failure is its row
                r = {"arch": n, "family": archs.get(n).family, "error": cli.one_line(e)[:200], "ok": False}
            failed += not r["ok"]
            rows.append(r)
            print(markdown(r), flush=True)
        if a.json:
            atomic_write_bytes(a.json, json.dumps(rows, indent=1).encode())
        return 1 if failed else 0

    return cli.run(work)


if __name__ == "__main__":
    sys.exit(main())
