"""Ctrl-C while a ``python -m`` command is still importing its dependencies (torch and the
backends take seconds to import): ``interrupted`` on stderr and exit 130, as :func:`rsnet_edge.cli.run`
does once the command runs, instead of a traceback from inside an import. Stdlib only; installed by
the first lines of each package's ``__init__`` and handed back by :func:`rsnet_edge.cli.run`."""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_importing(signum, frame):  # noqa: ARG001
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(130)            # nothing has been written yet: no clean-up to run


def guard_imports() -> None:
    """Only for ``python -m package.module`` (``sys.argv[0]`` is ``-m`` while it is being found and
    its packages imported) and only when nobody has set a SIGINT handler of their own."""
    if sys.argv and sys.argv[0] == "-m" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted_while_importing)


def release_imports() -> None:
    """Back to Python's KeyboardInterrupt, which the command's ``run`` turns into exit 130 after its
    clean-up (``finally`` blocks remove temp files)."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_importing:
        signal.signal(signal.SIGINT, signal.default_int_handler)
