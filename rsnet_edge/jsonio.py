"""Reading JSON that a user hands us, bounded (library core, stdlib only).

Every JSON file or header rsnet-edge reads from outside (sidecar and embedded manifests, device
profiles, demo traces, RSFOLD headers, training's result files) goes through :func:`loads` /
:func:`read`, so that no input can make a reader use memory or time out of proportion to what the
file is for. Refused, as one :class:`JsonError` line naming the file:

* more than ``max_bytes`` bytes (16 MiB by default; a sidecar that is a link to ``/dev/zero`` is read
  only up to that limit), a folder, or anything that is not a regular file;
* nesting deeper than :data:`MAX_DEPTH` levels (Python's parser would raise RecursionError);
* a number with more than :data:`MAX_DIGITS` digits (Python refuses ints over 4300 digits with
  a message that names no file);
* anything that is not valid JSON (UTF-8).

The Android core applies the same rule with the same messages (``Json.checkShape`` in
android_demo/core; both suites read tests/data/bad_manifest_vectors.json).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

#: default size limit of one JSON file (manifests, profiles and traces are kilobytes)
MAX_BYTES = 16 << 20
#: deepest nesting of arrays/objects accepted (a manifest is 4 levels deep)
MAX_DEPTH = 64
#: most digits in one run of a number (a float64 needs 17, an int64 19)
MAX_DIGITS = 100

# a whole string, or an unterminated one to the end of the text (so one pass, linear time)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_DIGITS + 1},}}")
_BRACKET = re.compile(r"[\[\]{}]")


class JsonError(ValueError):
    """JSON that is refused (too large, too deep, a number too long, invalid, unreadable): one line
    naming the file."""


def check_shape(text: str, name: str) -> None:
    """Refuse ``text`` if a number in it has more than :data:`MAX_DIGITS` digits, or if it nests
    deeper than :data:`MAX_DEPTH` levels (checked in that order, strings skipped), before a parser
    sees it."""
    bare = _STRING.sub('""', text)              # brackets and digits inside strings do not count
    if _LONG_NUMBER.search(bare):
        raise JsonError(f"{name} has a number longer than {MAX_DIGITS} digits")
    depth = 0
    for m in _BRACKET.finditer(bare):
        if m.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonError(f"{name} is nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def loads(data: str | bytes | bytearray | memoryview, name: str = "JSON", *,
          max_bytes: int = MAX_BYTES) -> Any:
    """Parse JSON text or UTF-8 bytes from ``name`` (a file name, or what the text is) within the
    limits above. Raises :class:`JsonError` with one line naming ``name``."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise JsonError(f"{name} is over the {max_bytes}-byte limit for a JSON file")
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"{name} is not valid JSON: not UTF-8 text ({e.reason} at byte {e.start})") from None
    check_shape(data, name)
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise JsonError(f"{name} is not valid JSON: {e}") from None
    except (RecursionError, ValueError) as e:      # defensive: the checks above make these unreachable
        raise JsonError(f"{name} is not valid JSON: {type(e).__name__}") from None


def read(path: str | os.PathLike, what: str | None = None, *, max_bytes: int = MAX_BYTES) -> Any:
    """Read and parse a JSON file: at most ``max_bytes + 1`` bytes are read, whatever the file is.
    ``what`` names it in messages (default: the path). Raises :class:`JsonError`."""
    p = Path(path)
    name = what or str(p)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise JsonError(f"{name} does not exist") from None
    except OSError as e:
        raise JsonError(f"cannot read {name}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise JsonError(f"{name} is a folder, not a JSON file")
    if not stat.S_ISREG(st.st_mode):
        raise JsonError(f"{name} is not a regular file (a device or a pipe?)")
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise JsonError(f"cannot read {name}: {e.strerror or e}") from None
    return loads(data, name, max_bytes=max_bytes)
