"""The backend registry (rsnet_edge/backends.py) is the one table of per-backend facts: every entry
is consistent with the code it names, nothing else keeps a per-backend table, and a backend added
to it alone (plus its runtime class) is picked up by the manifest schema, the loader, naming and
the CLIs' suffix rules."""

from __future__ import annotations

import ast
import importlib
import json

import numpy as np
import pytest

from helpers import ROOT
from rsnet_edge import backends
from rsnet_edge.backends import BACKENDS, Backend, RSFOLD_SUFFIX
from rsnet_edge.manifest import Manifest, ManifestError, validate


def test_every_entry_names_real_code():
    from rsnet_edge.runners import Runner
    suffixes = [s for b in BACKENDS.values() for s in b.suffixes]
    assert len(suffixes) == len(set(suffixes)), suffixes
    inners = backends.rsfold_inners()
    assert len(inners) == len(set(inners))
    for b in BACKENDS.values():
        cls = b.runtime_class()
        assert issubclass(cls, Runner) and cls.backend == b.name, b.name
        assert backends.for_suffix(b.suffix) is b
        if b.rsfold_inner:
            assert backends.for_rsfold_inner(b.rsfold_inner) is b
        if b.converter is not None and importlib.util.find_spec(b.runtime_import or "json") is not None:
            lower = b.converter_lower()
            assert callable(lower) and lower.__module__ == b.converter.partition(":")[0]
        if b.int8 is not None:
            assert "int8" in b.dtypes


def test_manifest_schema_takes_exactly_the_registered_backends():
    good = json.loads((ROOT / "tests" / "data" / "manifest_fixture.json").read_text())
    for name in BACKENDS:
        validate(dict(good, backend=name))
    with pytest.raises(ManifestError, match="unknown backend"):
        validate(dict(good, backend="tensorrt"))


def test_shipped_suffix_rule():
    et, onnx = BACKENDS["executorch"], BACKENDS["onnx"]
    assert et.shipped_suffix("shared") == ".pte" + RSFOLD_SUFFIX
    assert et.shipped_suffix("shared", "int8") == ".pte"          # int8 shares in a plain file
    assert et.shipped_suffix("folded") == et.shipped_suffix("affine") == ".pte"
    assert onnx.shipped_suffix("shared") == ".onnx"               # ONNX Runtime folds it itself
    assert backends.program_suffix("a/x.TFLITE.rsfold") == ".tflite"


#: a backend's file suffixes and where its manifest is embedded (checkpoints' ``.pt`` is a plain
#: file name, not a backend fact; bench/adb.py drives the phone runner binaries the registry names)
PER_BACKEND_LITERALS = {s for b in BACKENDS.values() if b.converter for s in b.suffixes} | {
    "manifest_json", "rsnet_edge.manifest"}


def test_no_other_module_keeps_a_backend_table():
    """A per-backend fact (a suffix, a runner binary, where the manifest is embedded) written as a
    string anywhere but the registry is a second table that a fifth backend would miss. Docstrings
    and messages that merely mention a suffix inside a longer text are fine."""
    offenders = []
    for pkg in ("rsnet_edge", "converters", "bench", "training"):
        for f in (ROOT / pkg).glob("*.py"):
            if f.name == "backends.py":
                continue
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and node.value.lower() in PER_BACKEND_LITERALS:
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


class EchoRunner:
    """The runtime of a made-up fifth backend: its "program" is a JSON file of logits per entry."""
    backend = "echo"
    fixed_batch = None

    def __init__(self, path, manifest, stats, num_threads=None, runnable=True):
        self.path, self.manifest, self.stats = path, manifest, stats
        self.table = json.loads(path.read_text())
        stats.file_loads += 1

    def entry_names(self):
        return set(self.table)

    def supports(self, r):
        return r in self.manifest.resolutions

    def embedded_manifest(self):
        return None

    def run_entry(self, name, x):
        return np.tile(np.asarray(self.table[name], dtype=np.float32), (x.shape[0], 1))

    def run(self, r, x):
        return self.run_entry(f"forward_{r}", x)


def test_a_fifth_backend_needs_only_its_spec_and_runtime(tmp_path, monkeypatch):
    echo = Backend("echo", (".echo",), "an echo table", f"{__name__}:EchoRunner", None, None)
    monkeypatch.setitem(BACKENDS, "echo", echo)
    good = json.loads((ROOT / "tests" / "data" / "manifest_fixture.json").read_text())
    m = Manifest.from_dict(dict(good, backend="echo", artifact={}))
    art = tmp_path / "m.echo"
    n = len(m.class_names)
    art.write_text(json.dumps({e.entry: list(np.eye(n)[i % n]) for i, e in enumerate(m.entries)}))
    (tmp_path / "m.echo.manifest.json").write_text(m.to_json())
    import rsnet_edge
    clf = rsnet_edge.load(art)
    assert clf.backend_name == "echo" and clf.resolutions == m.resolutions
    r = m.resolutions[-1]
    top = clf.predict([np.zeros((8, 8, 3), np.uint8)], resolution=r, topk=1)[0][0][0]
    assert top == m.class_names[(len(m.entries) - 1) % n]
    assert echo.shipped_suffix("shared") == ".echo"           # no RSFOLD form declared
