"""Classify images with any rsnet-edge artifact.

    python -m rsnet_edge.predict ARTIFACT IMAGE... [--resolution R] [--topk K]
                                 [--battery PCT] [--charging] [--thermal STATE] [--json]

ARTIFACT is a checkpoint (.pt), ExecuTorch program (.pte), LiteRT model (.tflite), ONNX model
(.onnx) or Core ML package (.mlpackage, macOS). The resolution is ``--resolution`` if given,
otherwise the one the artifact's manifest policy picks for ``--battery/--charging/--thermal``
(:mod:`rsnet_edge.policy`), otherwise the manifest's default. Errors: ``error: ...`` on stderr,
exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from .policy import THERMAL_STATES, PolicyError, policy_for, select_resolution


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own convention)
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m rsnet_edge.predict", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact", help=".pt / .pte / .tflite / .onnx / .mlpackage")
    ap.add_argument("images", nargs="+", help="image files")
    ap.add_argument("--resolution", type=int, help="entry point to run (default: policy or manifest)")
    ap.add_argument("--battery", type=float, metavar="PCT", help="battery level 0..100 for the policy")
    ap.add_argument("--charging", action="store_true", help="device is charging (policy)")
    ap.add_argument("--thermal", choices=THERMAL_STATES, help="thermal status (policy)")
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--no-verify", action="store_true", help="skip the artifact sha256 check")
    return ap


def choose_resolution(manifest, resolution=None, battery=None, charging=False,
                      thermal=None) -> tuple[int, str]:
    """(resolution, why) -- explicit, else the manifest's policy, else its default."""
    if resolution is not None:
        return int(resolution), "--resolution"
    if battery is not None or charging or thermal is not None:
        policy = policy_for(manifest.policy, manifest.resolutions)
        b = 100.0 if battery is None else float(battery)
        r = select_resolution(policy, b, bool(charging), thermal or "none")
        return r, (f"policy (battery {b:g}%{', charging' if charging else ''}, "
                   f"thermal {thermal or 'none'})")
    return int(manifest.default_resolution), "manifest default"


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        from .runtime import load

        if a.topk < 1:
            raise ValueError("--topk must be at least 1")
        if a.battery is not None and not 0 <= a.battery <= 100:
            raise ValueError(f"--battery must be in 0..100, got {a.battery:g}")
        clf = load(a.artifact, verify=not a.no_verify)
        r, why = choose_resolution(clf.manifest, a.resolution, a.battery, a.charging, a.thermal)
        clf.set_resolution(r)
        results = clf.predict(a.images, topk=a.topk)
    except (ValueError, OSError, PolicyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"artifact": a.artifact, "backend": clf.backend_name, "resolution": r,
                          "why": why, "predictions": {img: [[n, p] for n, p in res]
                                                      for img, res in zip(a.images, results)}}, indent=2))
        return 0
    print(f"{clf.path.name} [{clf.backend_name}] resolution {r} ({why})")
    for img, res in zip(a.images, results):
        print(f"{img}:")
        for name, p in res:
            print(f"  {p:7.2%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
