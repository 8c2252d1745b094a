"""The cache key of the test artifacts (tests/fakes/artifacts.py) covers every file that shapes them,
so a cached artifact is never stale after a change to the code that made it (issue 22 item 6)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from fakes import artifacts as A

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("rsnet_edge", "converters", "training", "bench")


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def import_closure(start: Path) -> set[str]:
    """Repository files reachable from ``start`` through imports of the project's packages (module
    level or inside functions), found by parsing: independent of how the key lists its files."""
    seen, todo = set(), [start]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                if n.split(".")[0] not in PROJECT:
                    continue
                parts = n.split(".")                 # a module and the packages above it
                for k in range(1, len(parts) + 1):
                    m = _module_file(".".join(parts[:k]))
                    if m is not None:
                        todo.append(m)
    return {p.relative_to(ROOT).as_posix() for p in seen}


def test_key_covers_everything_the_artifact_builder_imports():
    closure = import_closure(ROOT / "tests" / "fakes" / "artifacts.py")
    # the files issue 22 found missing from the old hand-written list are reached this way
    assert {"rsnet_edge/rsfold.py", "rsnet_edge/preprocess.py", "training/synthetic.py"} <= closure
    assert len(closure) > 10
    missing = closure - set(A.sources())
    assert not missing, f"tests/fakes/artifacts.py cache key leaves out {sorted(missing)}"


def test_key_changes_with_the_sources_and_nothing_else(tmp_path):
    root = tmp_path / "repo"
    for pkg in ("rsnet_edge", "converters"):
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("training/synthetic.py", "tests/fakes/artifacts.py", "README.md"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, root / f)
    key = A.cache_key(root)
    assert key == A.cache_key(root)

    def changed(edit) -> bool:
        edit()
        return A.cache_key(root) != key

    (root / "README.md").write_text("edited")
    assert A.cache_key(root) == key                              # not a source: same key
    backup = {}
    for f in ("rsnet_edge/rsfold.py", "rsnet_edge/preprocess.py", "training/synthetic.py",
              "tests/fakes/artifacts.py"):
        backup[f] = (root / f).read_bytes()
        assert changed(lambda: (root / f).write_bytes(backup[f] + b"\n# edit\n")), f
        (root / f).write_bytes(backup[f])
        assert A.cache_key(root) == key, f
    # a converter module split off under a new name counts without anyone listing it
    assert changed(lambda: (root / "converters" / "split_off_helper.py").write_text("X = 1\n"))
