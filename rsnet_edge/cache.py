"""The unpack cache: where RSFOLD programs (and ONNX Runtime's per-resolution graphs) become files a
stock runtime can open, once, safely.

* **Where**: ``$RSNET_EDGE_CACHE`` (``~`` expanded), else ``$XDG_CACHE_HOME/rsnet_edge``, else
  ``~/.cache/rsnet_edge``. The folder is created private (0700); an existing one that is a link,
  is owned by another user, or is writable by others is refused with one line (anyone who can write
  there could swap a program under the runtime).
* **What**: one file per program, named by its sha256 (``<sha256>.pte``), so every artifact, version
  and process shares it and nothing is unpacked twice.
* **How it is written**: to a unique temp name in the cache folder (``O_CREAT | O_EXCL``, links never
  followed; threads and processes never share one), then renamed in one step. Temp files whose
  writer is dead (SIGKILL during an unpack) are removed by the next writer. No fsync: a file torn
  by a crash fails its sha256 on the next use and is rebuilt.
* **How it is used**: every use opens the file (never through a link), checks that it is a regular
  file of the right size, hashes THAT open file, and hands the runtime ``/proc/self/fd/<n>`` (where
  the system has it) -- the program the native loader maps is the one that was hashed, whatever
  happens to the name meanwhile. A file that fails is rebuilt; a program the native loader refuses
  is removed (:func:`discard`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, BinaryIO

from .files import create_exclusive, pid_alive, remove_path, stale_temp_pid, temp_path

CACHE_ENV = "RSNET_EDGE_CACHE"


class CacheError(OSError):
    """The cache folder cannot be used (one line naming it)."""


def cache_dir() -> Path:
    """``$RSNET_EDGE_CACHE``, else ``$XDG_CACHE_HOME/rsnet_edge``, else ``~/.cache/rsnet_edge`` (``~``
    expanded in both variables)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.path.expanduser(os.environ[CACHE_ENV]))
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(os.path.expanduser(base)) / "rsnet_edge"


def ensure_dir(folder: str | os.PathLike | None) -> Path:
    """The cache folder, created private if missing; refused (CacheError, one line) when it is not a
    folder, is a link, belongs to someone else or can be written by others."""
    d = Path(os.path.expanduser(str(folder))) if folder is not None else cache_dir()
    hint = f"set {CACHE_ENV} to a private folder of yours"
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(d)
    except OSError as e:
        raise CacheError(f"unpack cache {d}: {e.strerror or e} ({hint})") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"unpack cache {d} is not a folder (a link or a file); {hint}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheError(f"unpack cache {d} belongs to another user (uid {st.st_uid}); {hint}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"unpack cache {d} can be written by other users (mode {stat.S_IMODE(st.st_mode):o}); "
                         f"{hint}")
    return d


@dataclass
class CachedFile:
    """A verified file of the cache, held open: the native loader opens :attr:`loader_path`."""
    path: Path
    sha256: str
    size: int
    reused: bool                     # True: it was already in the cache
    seconds: float                   # time spent unpacking (when not reused) and hashing
    _file: BinaryIO | None = field(default=None, repr=False)

    @property
    def loader_path(self) -> str:
        """A path to the very file that was hashed: ``/proc/self/fd/<n>`` (Linux, Android) or
        ``/dev/fd/<n>`` (macOS) while it is open, else the cache path."""
        if self._file is not None:
            for base in ("/proc/self/fd", "/dev/fd"):
                p = f"{base}/{self._file.fileno()}"
                if os.path.exists(p):
                    return p
        return str(self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _open_verified(path: Path, sha256: str, size: int) -> BinaryIO | None:
    """The file at ``path`` opened read-only without following links, if it is a regular file of
    ``size`` bytes whose content hashes to ``sha256``; else None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    f = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            f.close()
            return None
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        if h.hexdigest() != sha256:
            f.close()
            return None
        f.seek(0)
        return f
    except OSError:
        f.close()
        return None


def clean_stale(folder: Path) -> list[Path]:
    """Remove temp files of dead writers from the cache folder."""
    removed = []
    try:
        names = [q for q in folder.iterdir() if q.name.startswith(".") and ".tmp-" in q.name]
    except OSError:
        return removed
    for q in names:
        pid = stale_temp_pid(q.name)
        if pid is not None and not pid_alive(pid):
            remove_path(q)
            removed.append(q)
    return removed


def fetch(folder: Path, sha256: str, size: int, suffix: str, write: Callable[[BinaryIO], str],
          what: str) -> CachedFile:
    """The cache file ``<sha256><suffix>``, held open: reused when it verifies, else written by
    ``write(f)`` (which hashes what it writes and raises on a mismatch, so nothing is renamed into
    place) through a descriptor that stays open for the loader. ``what`` names the user's artifact
    in errors."""
    t = time.perf_counter()
    target = folder / f"{sha256}{suffix}"
    f = _open_verified(target, sha256, size)
    if f is not None:
        return CachedFile(target, sha256, size, True, time.perf_counter() - t, f)
    clean_stale(folder)
    tmp = temp_path(target)
    out = None
    try:
        out = create_exclusive(tmp, 0o600, readable=True)
        write(out)                        # hashes what it writes and raises on a mismatch
        out.flush()
        os.replace(tmp, target)
    except OSError as e:
        if out is not None:
            out.close()
        raise CacheError(f"{what}: cannot write its unpacked program to the cache {folder} "
                         f"({e.strerror or e}); set {CACHE_ENV} to a writable folder") from None
    except BaseException:
        if out is not None:
            out.close()
        raise
    finally:
        remove_path(tmp)
    # the descriptor we wrote through IS the file that was hashed while it was written: the native
    # loader opens it through /proc/self/fd (no second read of the bytes, nothing to swap in between)
    return CachedFile(target, sha256, size, False, time.perf_counter() - t, out)


def discard(cached: CachedFile) -> None:
    """Remove a cache file the native loader refused (and close it)."""
    cached.close()
    remove_path(cached.path)


def unpack_artifact(artifact: str | os.PathLike, folder: str | os.PathLike | None = None,
                    entries: list[str] | None = None) -> list[CachedFile]:
    """Every program of an RSFOLD artifact (or those serving ``entries``) in the cache, verified,
    in the container's order. Raises RsfoldError / CacheError with one line; nothing is left in
    the cache for a container that is refused."""
    from .rsfold import Container

    box = Container.open(artifact)
    try:
        d = ensure_dir(folder)
        outs = box.outputs if entries is None else list({box.output_for(e).index: box.output_for(e)
                                                         for e in entries}.values())
        got = []
        for o in outs:
            got.append(fetch(d, o.sha256, o.size, f".{box.inner}", lambda f, k=o.index: box.unpack_to(k, f),
                             Path(artifact).name))
        return got
    finally:
        box.close()
