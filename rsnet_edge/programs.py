"""The runner of a compact RSFOLD artifact: its programs unpacked into the cache when first needed,
each opened by the backend's stock-runtime runner, and released again under ``resident="one"``.

A current container holds one program per resolution (the top one also serves the default entry),
so the first load unpacks and opens only the entry it runs; ``resident="all"`` keeps every program
it opened (switching costs nothing after the first use of each entry), ``resident="one"`` keeps the
one in use and releases the previous program and its packed weights on a switch (a switch then
costs about one single-resolution load: the program is already in the cache after its first use).
A version-1 container (one program serving every entry) is unpacked once and served by one runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import cache as unpack_cache
from .backends import Backend
from .cli import one_line
from .manifest import DEFAULT_ENTRY, Manifest
from .rsfold import Container, Output, RsfoldError
from .runners import Runner, RuntimeLoadError, check_magic


class ProgramSet(Runner):
    """``run_entry`` through the program that serves the entry; see the module docstring."""

    def __init__(self, artifact: Path, container: Container, spec: Backend, manifest: Manifest | None,
                 stats, cache: str | None = None, num_threads: int | None = None):
        super().__init__(artifact, manifest, stats, artifact.name)
        self.backend = spec.name
        self.spec, self.box, self.num_threads = spec, container, num_threads
        self.folder = unpack_cache.ensure_dir(cache)
        self.open: dict[int, tuple[Runner, unpack_cache.CachedFile]] = {}   # output index -> runner
        #: programs verified in this process, kept open (a descriptor, no memory) after their runner is
        #: released: loading one again needs no second hash of its bytes
        self.verified: dict[int, unpack_cache.CachedFile] = {}
        self.fixed_batch = spec.runtime_class().fixed_batch

    # ---------------------------------------------------------------------------- programs
    def _output(self, entry: str) -> Output:
        if entry == DEFAULT_ENTRY and self.manifest is not None and self.box.entry_names() is not None \
                and DEFAULT_ENTRY not in self.box.entry_names():
            entry = f"forward_{self.manifest.default_resolution}"
        try:
            return self.box.output_for(entry)
        except RsfoldError as e:
            raise RuntimeLoadError(one_line(e)) from None

    def unpacked(self, out: Output) -> unpack_cache.CachedFile:
        """Program ``out`` in the cache (unpacked now unless a verified copy is there), held open."""
        def write(f):
            return self.box.unpack_to(out.index, f)
        try:
            got = unpack_cache.fetch(self.folder, out.sha256, out.size, f".{self.box.inner}", write, self.name)
        except RsfoldError as e:
            raise RuntimeLoadError(one_line(e)) from None
        except OSError as e:
            raise RuntimeLoadError(one_line(e)) from None
        st = self.stats
        st.unpack_s = (st.unpack_s or 0.0) + got.seconds
        st.unpack_reused = got.reused if st.unpack_reused is None else (st.unpack_reused and got.reused)
        st.program = st.program or str(got.path)
        return got

    def runner(self, entry: str) -> Runner:
        out = self._output(entry)
        if out.index not in self.open:
            got = self.verified.pop(out.index, None) or self.unpacked(out)
            try:
                with open(got.loader_path, "rb") as f:
                    check_magic(f.read(8), self.spec, self.name)
                r = self.spec.runtime_class()(Path(got.loader_path), self.manifest, self.stats,
                                              num_threads=self.num_threads, name=self.name)
            except RuntimeLoadError:
                unpack_cache.discard(got)            # never leave a program the runtime refuses
                raise
            self.open[out.index] = (r, got)
        return self.open[out.index][0]

    def programs(self) -> dict[int, Any]:
        """Open programs: output index -> the cache file it runs from."""
        return {k: got for k, (_, got) in self.open.items()}

    # ------------------------------------------------------------------------------ runner
    def entry_names(self) -> set[str]:
        names = self.box.entry_names()
        if names is None:                            # one program serving every entry
            return self.runner(DEFAULT_ENTRY).entry_names()
        return names

    def supports(self, resolution: int) -> bool:
        return resolution in self.manifest.resolutions

    def embedded_manifest(self):
        return self.runner(DEFAULT_ENTRY).embedded_manifest()

    def run_entry(self, name, x):
        return self.runner(name).run_entry(name, x)

    def keep_only(self, entry: str) -> None:
        keep = self._output(entry).index
        for k in [k for k in self.open if k != keep]:
            self._release(k)
        if keep in self.open:
            self.open[keep][0].keep_only(entry)

    def _release(self, k: int) -> None:
        r, got = self.open.pop(k)
        r.close()
        self.verified[k] = got

    def close(self) -> None:
        for k in list(self.open):
            self._release(k)
        for got in self.verified.values():
            got.close()
        self.verified.clear()
        self.box.close()
