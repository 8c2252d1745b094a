"""What an artifact holds in memory once loaded, measured in a FRESH process each time (an app's
memory is judged by the process: Android's low-memory killer, iOS jetsam).

    python -m bench.memory ARTIFACT [--resident all|one] [--cache DIR] [--threads N]

prints one JSON object: the process RSS after importing the backend's runtime (the baseline), after
``rsnet_edge.load``, and after one run of every entry point (with ``--resident one`` the entries run
lowest resolution first, so the one left resident is the highest, as a single-resolution export
of the top resolution would hold); ``resident_mb`` is the last minus the baseline. Freed heap is
handed back to the system before each reading (glibc keeps it otherwise). ``bench.run_device`` runs
it for the shared artifact (``all`` and ``one``) and for the folded single-resolution export.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import BenchError, rss_mb, warm_backend

_MB = 2 ** 20


def measure(path: Path, resident: str = "all", cache: str | None = None, threads: int | None = None) -> dict:
    """The readings above, in this process (call it in a fresh one: :func:`in_fresh_process`)."""
    import rsnet_edge.programs  # noqa: F401  (the RSFOLD reader: part of the runtime, not of the model)
    from rsnet_edge.runners import release_memory
    from rsnet_edge.runtime import load

    warm_backend(path)
    release_memory()
    base = rss_mb()
    t = time.perf_counter()
    clf = load(path, verify=False, resident=resident, cache=cache, num_threads=threads)
    load_ms = (time.perf_counter() - t) * 1e3
    release_memory()
    loaded = rss_mb()
    first = {}
    for r in sorted(clf.resolutions):
        t = time.perf_counter()
        clf.run(clf.dummy_input(r), r)
        first[str(r)] = (time.perf_counter() - t) * 1e3
    release_memory()
    after = rss_mb()
    return {"artifact": path.name, "resident": resident, "entries": len(clf.resolutions),
            "rss_base_mb": base, "rss_loaded_mb": loaded, "rss_mb": after,
            "resident_mb": None if base is None or after is None else after - base,
            "load_ms": load_ms, "first_ms": first}


def in_fresh_process(path: Path, resident: str = "all", cache: str | None = None,
                     threads: int | None = None, timeout: float = 600) -> dict:
    """:func:`measure` in a new Python process (nothing loaded before it)."""
    cmd = [sys.executable, "-m", "bench.memory", str(path), "--resident", resident]
    if cache:
        cmd += ["--cache", str(cache)]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"memory of {path.name} ({resident}): {last}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from rsnet_edge import cli

    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact")
    ap.add_argument("--resident", choices=("all", "one"), default="all")
    ap.add_argument("--cache", help="unpack cache folder (default: rsnet-edge's)")
    ap.add_argument("--threads", type=int)
    a = ap.parse_args(argv)

    def work() -> int:
        p = Path(a.artifact)
        if not p.exists():
            raise BenchError(f"{p} does not exist")
        print(json.dumps(measure(p, a.resident, a.cache, a.threads)))
        return 0

    return cli.run(work, known=(RuntimeError,))


if __name__ == "__main__":
    sys.exit(main())
