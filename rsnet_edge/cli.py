"""The rules every rsnet-edge command line follows (library core, stdlib only).

* **Output paths are checked before any work** (:func:`check_outputs`): an output may not be (or
  resolve to, or be hard-linked with) any input; a file output may not be an existing directory and
  a folder output (``--out-dir``) may not be an existing file; a missing parent folder is created
  when the output is written, so it is refused up front only when it cannot be created (a parent
  path that is a file, or an unwritable folder); an existing output that is a user's work (a
  finished training checkpoint) is refused unless the command's ``--force``/``--resume`` says so.
* **Bad input is one line** (:func:`run`): ``error: <what, naming the file or value>`` on stderr,
  exit status 2, never a traceback; Ctrl-C prints ``interrupted`` and exits 130. Writes are atomic
  (temp file + rename, :mod:`rsnet_edge.files`), temp files are removed on failure, and stale temp
  files that a killed run (SIGKILL) left next to an output are removed by the next run
  (:func:`rsnet_edge.files.clean_stale_temps`).
* **Third-party log noise is quiet** unless ``--verbose`` (:func:`quiet`).

Every ``python -m`` entry point runs its ``main`` through :func:`run`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import backends

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """A bad command-line value or path: printed as one ``error:`` line, exit 2."""


def one_line(e: BaseException | str) -> str:
    """The first non-empty line of an error message, whole (never cut mid-word)."""
    s = str(e).strip()
    if not s:
        return type(e).__name__ if isinstance(e, BaseException) else ""
    return next(ln.strip() for ln in s.splitlines() if ln.strip())


# ----------------------------------------------------------------------------- output paths
@dataclass(frozen=True)
class Output:
    """One path a command will write. ``kind``: ``file`` or ``dir`` (a folder it fills; an
    ``.mlpackage`` is a ``file`` here: it is replaced as a whole). ``keep``: an existing one is a
    user's work that needs ``--force`` (``force_flag``) to be replaced."""
    path: str | os.PathLike
    flag: str = "--out"
    kind: str = "file"
    keep: bool = False
    force_flag: str = "--force"


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(p: Path) -> Path:
    q = p.absolute()
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def check_outputs(outputs: Iterable[Output | tuple], inputs: Iterable[str | os.PathLike | None] = (),
                  force: bool = False) -> None:
    """Refuse (:class:`UsageError`, one line) an output that would destroy an input or fail after
    the work is done. Call it before loading anything heavy. ``outputs`` are :class:`Output` or
    ``(path, flag)`` tuples; ``None`` paths are skipped. Inputs may be files or folders; an output
    inside an input folder is allowed (a dataset folder may hold results), the folder itself not."""
    ins = [Path(i) for i in inputs if i is not None and str(i) != ""]
    outs = [o if isinstance(o, Output) else Output(*o) for o in outputs]
    outs = [o for o in outs if o.path is not None and str(o.path) != ""]
    seen: dict[Path, tuple[str, str]] = {}
    for o in outs:
        p = Path(o.path)
        for i in ins:
            if _same_file(p, i):
                raise UsageError(f"{o.flag} {p} is the input {i}: writing it would destroy the input; "
                                 f"choose another {o.flag}")
        key = p.absolute()
        if key in seen and seen[key][0] != o.flag and "file" in (o.kind, seen[key][1]):
            raise UsageError(f"{o.flag} {p} is also {seen[key][0]}: choose different paths")
        seen[key] = (o.flag, o.kind)
        if o.kind == "dir":
            if p.exists() and not p.is_dir():
                raise UsageError(f"{o.flag} {p} is an existing file, not a folder")
        else:
            spec = backends.for_suffix(p.suffix)
            if p.is_dir() and not (spec is not None and spec.directory):
                raise UsageError(f"{o.flag} {p} is an existing folder; give a file name")
            if o.keep and p.exists() and not force:
                raise UsageError(f"{o.flag} {p} already exists; pass {o.force_flag} to replace it")
        base = _nearest_existing(p if o.kind == "dir" else p.parent)
        if not base.is_dir():
            raise UsageError(f"{o.flag} {p}: {base} is a file, so the folder cannot be created")
        if not os.access(base, os.W_OK | os.X_OK):
            raise UsageError(f"{o.flag} {p}: folder {base} is not writable")


# ---------------------------------------------------------------------------- log noise
@contextlib.contextmanager
def quiet(verbose: bool = False):
    """Silence third-party output during a noisy call (native libraries write to fd 1/2 directly:
    ExecuTorch's cpuinfo lines, LiteRT/TensorFlow conversion logs; coremltools' progress bars and
    warnings). Nothing is hidden with ``verbose=True``. If the call fails, the captured output is
    replayed on stderr so the cause is never lost."""
    if verbose:
        yield
        return
    import logging
    import warnings

    env_keys = {"TQDM_DISABLE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}
    old_env = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)
    loggers = [logging.getLogger(n) for n in ("coremltools", "absl", "tensorflow", "torch._export",
                                              "executorch", "litert_torch", "ai_edge_torch", "jax")]
    old_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sys.stdout.flush()
    sys.stderr.flush()
    cap = tempfile.TemporaryFile()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(cap.fileno(), 1)
    os.dup2(cap.fileno(), 2)
    failed = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except Exception:
        failed = True
        raise
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        if failed:
            cap.seek(0)
            text = cap.read().decode(errors="replace").strip()
            if text:
                sys.stderr.write(text[-4000:] + "\n")
        cap.close()
        for lg, lv in zip(loggers, old_levels):
            lg.setLevel(lv)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def add_verbose(ap) -> None:
    """The one ``--verbose`` flag: show third-party logs (and tracebacks of unexpected errors)."""
    ap.add_argument("--verbose", action="store_true",
                    help="show third-party library logs and full tracebacks")


# -------------------------------------------------------------------------------- main()
def _known_errors() -> tuple[type[BaseException], ...]:
    # ValueError covers CheckpointError, ManifestError, RuntimeLoadError, PolicyError,
    # ResolutionError, ConversionError, BenchError, ImageError and UsageError
    return (ValueError, OSError)


def run(main: Callable[..., int | None], argv: Sequence[str] | None = None,
        debug: bool | None = None, known: tuple[type[BaseException], ...] = ()) -> int:
    """Run a CLI's ``main``: known errors -> ``error: <one line>`` on stderr and exit 2; Ctrl-C ->
    ``interrupted`` and exit 130 (``main``'s ``finally`` blocks have removed its temp files).
    ``--verbose`` (or RSNET_EDGE_DEBUG=1) re-raises with the full traceback instead."""
    from rsnet_edge._startup import release_imports
    release_imports()
    args = sys.argv[1:] if argv is None else list(argv)
    if debug is None:
        debug = "--verbose" in args or "--debug" in args or os.environ.get("RSNET_EDGE_DEBUG") == "1"
    try:
        rc = main(argv) if argv is not None else main()
        return int(rc or 0)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:            # `... | head`: not an error of ours
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return 0
    except _known_errors() + tuple(known) as e:
        if debug:
            raise
        msg = one_line(e)
        if isinstance(e, OSError) and getattr(e, "filename", None) and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_ERROR
