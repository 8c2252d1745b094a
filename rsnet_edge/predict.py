"""Classify images with any rsnet-edge artifact.

    python -m rsnet_edge.predict ARTIFACT IMAGE... [--resolution R] [--topk K]
                                 [--battery PCT] [--charging] [--thermal STATE] [--json]
                                 [--latency-budget MS --profile bench.json]

ARTIFACT is a checkpoint (.pt), ExecuTorch program (.pte), LiteRT model (.tflite), ONNX model
(.onnx) or Core ML package (.mlpackage, macOS). The resolution is ``--resolution`` if given,
otherwise the one the artifact's manifest policy picks for ``--battery/--charging/--thermal``
(:mod:`rsnet_edge.policy`), otherwise the manifest's default. IMAGE may be a folder (every image in
it). Images are checked before the model loads. Errors: ``error: ...`` on stderr naming the file or
value, exit status 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import json
import sys

from .cli import run
from .policy import THERMAL_STATES, policy_for, select_resolution


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own convention)
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)




def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m rsnet_edge.predict", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact", help=".pt / .pte / .tflite / .onnx / .mlpackage")
    ap.add_argument("images", nargs="+", help="image files, or folders (every image inside, recursively)")
    ap.add_argument("--resolution", type=int, help="entry point to run (default: policy or manifest)")
    ap.add_argument("--battery", type=float, metavar="PCT", help="battery level 0..100 for the policy")
    ap.add_argument("--charging", action="store_true", help="device is charging (policy)")
    ap.add_argument("--thermal", choices=THERMAL_STATES, help="thermal status (policy)")
    ap.add_argument("--latency-budget", type=float, metavar="MS",
                    help="latency budget for the policy (needs --profile)")
    ap.add_argument("--profile", help="device profile JSON written by bench.run_device")
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--no-verify", action="store_true", help="skip the artifact sha256 check")
    ap.add_argument("--verbose", action="store_true", help="show backend runtime logs")
    return ap


def expand_images(items) -> list[str]:
    """Files as given; a folder -> every image file under it (sorted). Checked before any model
    loads: a missing path or an empty folder is one error line."""
    from pathlib import Path

    from .preprocess import IMAGE_SUFFIXES, list_images

    out = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            found = [str(q) for q in list_images(p)]
            if not found:
                raise ValueError(f"no images in folder {p} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        elif not p.exists():
            raise ValueError(f"image {p} does not exist")
        else:
            out.append(str(p))
    return out


def choose_resolution(manifest, resolution=None, battery=None, charging=False,
                      thermal=None, latency_budget=None, profile=None) -> tuple[int, str]:
    """(resolution, why) -- explicit, else the manifest's policy, else its default."""
    if resolution is not None:
        return int(resolution), "--resolution"
    if battery is not None or charging or thermal is not None or latency_budget is not None:
        policy = policy_for(manifest.policy, manifest.resolutions)
        b = 100.0 if battery is None else float(battery)
        r = select_resolution(policy, b, bool(charging), thermal or "none", latency_budget, profile)
        return r, (f"policy (battery {b:g}%{', charging' if charging else ''}, "
                   f"thermal {thermal or 'none'}"
                   + (f", latency budget {latency_budget:g} ms" if latency_budget is not None else "") + ")")
    return int(manifest.default_resolution), "manifest default"


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    return run(lambda: _main(a), debug=a.verbose)


def _main(a) -> int:
    from .cli import quiet
    from .manifest import check_resolution
    from .runtime import load

    if a.topk < 1:
        raise ValueError("--topk must be at least 1")
    if a.battery is not None and not 0 <= a.battery <= 100:
        raise ValueError(f"--battery must be in 0..100, got {a.battery:g}")
    if a.resolution is not None:
        check_resolution(a.resolution, "--resolution")
    if a.latency_budget is not None and not a.profile:
        raise ValueError("--latency-budget needs --profile (a bench.run_device JSON)")
    images = expand_images(a.images)              # before the model loads
    with quiet(a.verbose):
        clf = load(a.artifact, verify=not a.no_verify)
    profile = None
    if a.profile:
        from .profile import read_profile
        profile = read_profile(a.profile, artifact=clf.path.name, backend=clf.backend_name)
    r, why = choose_resolution(clf.manifest, a.resolution, a.battery, a.charging, a.thermal,
                               a.latency_budget, profile)
    clf.set_resolution(r)
    with quiet(a.verbose):          # the runtime's first method load logs too (ExecuTorch's cpuinfo)
        results = clf.predict(images, topk=a.topk)
    if a.json:
        print(json.dumps({"artifact": a.artifact, "backend": clf.backend_name, "resolution": r,
                          "why": why, "predictions": {img: [[n, p] for n, p in res]
                                                      for img, res in zip(images, results)}}, indent=2))
        return 0
    print(f"{clf.path.name} [{clf.backend_name}] resolution {r} ({why})")
    for img, res in zip(images, results):
        print(f"{img}:")
        for name, p in res:
            print(f"  {p:7.2%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
