"""Writing files so that a user's work is never half-written (library core, stdlib only).

Every output rsnet-edge writes goes through here: the bytes are written to a hidden temp file in the
same folder (``.<stem>.tmp-<pid>-<token><suffix>``: unique per process AND per call, created with
``O_CREAT | O_EXCL`` and never through a symbolic link), flushed and fsync'ed, then renamed over the
final name in one step; on any failure (a full disk, Ctrl-C) the temp file is removed and the old
output stays as it was. Outputs that are folders (a Core ML ``.mlpackage``) are built under a temp
name and swapped in (:func:`publish`). Temp files of a killed writer (SIGKILL, power loss) carry its
pid, and :func:`clean_stale_temps` removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

_TEMP_PID = re.compile(r"\.(?:tmp|old)-(\d+)")


def temp_path(out: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``out`` (same folder, so the final rename is atomic; same suffix:
    Core ML and LiteRT look at it). Unique per process and per call (threads of one process never
    share one)."""
    out = Path(out)
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{out.suffix}")


def create_exclusive(path: str | os.PathLike, mode: int = 0o644, readable: bool = False):
    """Open a NEW file for writing (and reading, with ``readable``): refused if anything (a file, a
    planted link) already has the name; symbolic links are never followed."""
    flags = ((os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    return os.fdopen(os.open(path, flags, mode), "w+b" if readable else "wb")


def remove_path(p: str | os.PathLike) -> None:
    p = Path(p)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def fsync_path(p: str | os.PathLike) -> None:
    with open(p, "rb") as f:
        os.fsync(f.fileno())


def publish(tmp: str | os.PathLike, out: str | os.PathLike) -> None:
    """Move a finished temp file or folder to its final name (replacing an old one)."""
    tmp, out = Path(tmp), Path(out)
    if tmp.is_dir():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)
            raise
        remove_path(old)
    else:
        fsync_path(tmp)
        os.replace(tmp, out)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp + fsync + rename; missing folders are created).
    A failure (a full disk, a file size limit) leaves the old ``path`` as it was and raises an
    OSError that names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with create_exclusive(tmp) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None or str(e.filename) == str(tmp):      # name the output, not the temp
            raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
        raise
    finally:
        remove_path(tmp)


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_output(out) as tmp: <write tmp>`` -> ``out`` replaced in one step when the block
    succeeds (file or folder); the temp is removed whatever happens."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out)
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(f"nothing was written for {out}")
        publish(tmp, out)
    finally:
        remove_path(tmp)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # exists, owned by someone else
        return True
    return True


def stale_temp_pid(name: str) -> int | None:
    """The writer pid in a temp file's name (``...tmp-<pid>...``), or None if it is not one."""
    m = _TEMP_PID.search(name)
    return int(m.group(1)) if m else None


def clean_stale_temps(out: str | os.PathLike) -> list[Path]:
    """Remove hidden temp files/folders of ``out`` (``.<name>.tmp-<pid>...``, ``.<stem>.tmp-<pid>...``
    and the ``.raw`` / ``.old-<pid>`` companions) whose writing process is gone (killed by SIGKILL);
    a live concurrent writer's temp files are left alone. Returns what was removed."""
    p = Path(out)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        return []
    removed = []
    prefixes = {f".{p.name}.tmp-", f".{p.stem}.tmp-", f".{p.name}.old-"}
    for q in parent.iterdir():
        if not any(q.name.startswith(x) for x in prefixes):
            continue
        pid = stale_temp_pid(q.name)
        if pid is None or pid_alive(pid):
            continue
        remove_path(q)
        removed.append(q)
    return removed


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, or of every file under a directory (Core ML .mlpackage), in path order."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        if p.is_dir():
            h.update(str(q.relative_to(p)).encode())
        with open(q, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def artifact_size(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file under a folder (.mlpackage)."""
    p = Path(path)
    if p.is_dir():
        return sum(q.stat().st_size for q in p.rglob("*") if q.is_file())
    return p.stat().st_size
