"""The shape of the code: the package layering, no import cycle (function-local imports included),
every module importable on its own, no source file over ~450 lines, one definition of what several
modules once defined each."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from helpers import ROOT, subprocess_env

PACKAGES = ("rsnet_edge", "training", "converters", "bench")
#: who may import whom (a package never imports one listed after it... except bench, the top)
MAY_IMPORT = {"rsnet_edge": set(), "training": {"rsnet_edge"}, "converters": {"rsnet_edge"},
              "bench": {"rsnet_edge", "training", "converters"}}
MAX_LINES = 460


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).glob("*.py")):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (top level or inside functions)."""
    pkg = name.split(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                             # from .x import y / from . import y
                base = pkg + ("." + base if base else "")
            cands = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for c in cands:
            while c and c not in known:
                c = c.rpartition(".")[0]
            if c and c != name:
                found.add(c)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def test_package_layering():
    for m, deps in graph().items():
        pkg = m.split(".")[0]
        for d in deps:
            dpkg = d.split(".")[0]
            assert dpkg == pkg or dpkg in MAY_IMPORT[pkg], f"{m} imports {d}: {pkg} may not import {dpkg}"


def test_no_import_cycle():
    """No cycle among the project's modules, counting imports inside functions too (a function-local
    import does not make a cycle go away, it only hides it). A package's __init__ is left out: it
    imports its own modules to re-export them."""
    g = {m: {d for d in deps if "." in d} for m, deps in graph().items() if "." in m}
    state: dict[str, int] = defaultdict(int)
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state[d] == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state[d] == 0:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if state[m] == 0:
            visit(m)


IMPORT_EACH = r"""
import importlib, os, sys, traceback
# the third-party libraries once (seconds each); then every project module in a FORKED child, where
# no project module is imported yet: each one is the first of its kind, as in a fresh interpreter
for lib in ("numpy", "torch", "torchvision", "PIL.Image", "tqdm", "executorch.runtime",
            "ai_edge_litert.interpreter", "onnxruntime", "onnx"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
assert not [m for m in sys.modules if m.split(".")[0] in ("rsnet_edge", "training", "converters", "bench")]
bad = []
for m in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(m)
            code = 0
        except BaseException:
            os.write(w, traceback.format_exc().strip().splitlines()[-1].encode()[:500])
            code = 1
        os._exit(code)
    os.close(w)
    msg = os.read(r, 1000).decode(errors="replace")
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if status:
        bad.append(f"{m}: {msg or status}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_every_module_imports_on_its_own():
    """Each project module imported first, before any other project module (third-party libraries
    preloaded, then one forked child per module): an import-order dependence or a cycle that only
    bites in one order fails here."""
    mods = [m for m in modules() if not m.endswith("__main__")]
    r = subprocess.run([sys.executable, "-c", IMPORT_EACH, *mods], cwd=ROOT, env=subprocess_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]


def test_no_source_file_over_450_lines():
    big = []
    for pkg in PACKAGES:
        for f in (ROOT / pkg).glob("*.py"):
            n = len(f.read_text().splitlines())
            if n > MAX_LINES:
                big.append(f"{f.relative_to(ROOT)} ({n})")
    for f in (ROOT / "android_demo").rglob("*.java"):
        if "/test/" in str(f) or "apistubs" in f.parts:
            continue
        n = len(f.read_text().splitlines())
        if n > MAX_LINES:
            big.append(f"{f.relative_to(ROOT)} ({n})")
    assert not big, big


def _module_level_names(path: Path) -> set[str]:
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return out


@pytest.mark.parametrize("name", ["IMAGE_SUFFIXES", "one_line", "atomic_write_bytes", "sha256_file",
                                  "temp_path", "publish", "percentile", "THERMAL_STATES", "MANIFEST_KEY"])
def test_defined_once(name):
    where = [str(p.relative_to(ROOT)) for p in modules().values() if name in _module_level_names(p)]
    assert len(where) == 1, f"{name} is defined in {where}"
