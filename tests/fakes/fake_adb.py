#!/usr/bin/env python3
"""A FAKE ``adb`` for tests (a test double; no phone is involved).

tests/test_adb.py installs it as ``adb`` on PATH in a temp folder (see :func:`install`). It reads a
scenario from the JSON file named by ``$FAKE_ADB_SCENARIO`` and appends every call (its argv) as one
JSON line to ``$FAKE_ADB_LOG``. Scenario keys (all optional)::

    {"devices": [["SERIAL", "device" | "unauthorized" | "offline"], ...],
     "devices_rc": 0, "devices_stderr": "",
     "props": {"ro.product.model": "Pixel 8", ...},
     "battery": "<dumpsys battery text>", "thermal": "<dumpsys thermalservice text>",
     "runner": {"forward_224": {"stdout": "...", "stderr": "...", "rc": 0}, "*": {...}},
     "push_rc": 0}

A runner invocation is recognised by ``--method_name=`` (executor_runner) or
``--signature_to_run_for=`` (benchmark_model) in the shell command; its recorded output is replayed
by entry name (``"*"`` = any entry).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path


def install(bin_dir: str | os.PathLike, python: str = sys.executable) -> Path:
    """Write an executable ``adb`` in ``bin_dir`` that runs this script with ``python``."""
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "adb"
    exe.write_text(f'#!/bin/sh\nexec "{python}" -S "{Path(__file__).resolve()}" "$@"\n')
    exe.chmod(0o755)
    return exe


def main(argv: list[str]) -> int:
    scenario = {}
    if os.environ.get("FAKE_ADB_SCENARIO"):
        scenario = json.loads(Path(os.environ["FAKE_ADB_SCENARIO"]).read_text())
    log = os.environ.get("FAKE_ADB_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps(argv) + "\n")
    args = list(argv)
    serial = None
    if args[:1] == ["-s"]:
        serial, args = args[1], args[2:]
    if not args:
        print("adb: usage: adb [-s SERIAL] COMMAND", file=sys.stderr)
        return 1
    devices = scenario.get("devices", [])
    cmd, rest = args[0], args[1:]
    if cmd == "devices":
        if scenario.get("devices_rc", 0):
            print(scenario.get("devices_stderr", "adb: cannot connect to daemon"), file=sys.stderr)
            return scenario["devices_rc"]
        print("List of devices attached")
        for s, state in devices:
            print(f"{s}\t{state}")
        print()
        return 0
    # every other command needs one ready device
    states = dict(devices)
    if serial is None and len(devices) > 1:
        print("adb: more than one device/emulator", file=sys.stderr)
        return 1
    target = serial or (devices[0][0] if devices else None)
    if target is None or target not in states:
        print(f"adb: device '{serial}' not found" if serial else "adb: no devices/emulators found",
              file=sys.stderr)
        return 1
    if states[target] != "device":
        print(f"adb: device {states[target]}", file=sys.stderr)
        return 1
    if cmd == "push":
        src, dst = rest[0], rest[1]
        if not Path(src).exists():
            print(f"adb: error: cannot stat '{src}': No such file or directory", file=sys.stderr)
            return 1
        rc = scenario.get("push_rc", 0)
        if rc:
            print(f"adb: error: failed to copy '{src}' to '{dst}': remote No space left on device",
                  file=sys.stderr)
            return rc
        print(f"{src}: 1 file pushed, 0 skipped. 12.3 MB/s ({Path(src).stat().st_size} bytes in 0.001s)")
        return 0
    if cmd == "shell":
        line = " ".join(rest)
        m = re.search(r"--(?:method_name|signature_to_run_for)=([A-Za-z0-9_]+)", line)
        if m:
            runner = scenario.get("runner", {})
            rec = runner.get(m.group(1)) or runner.get("*")
            if rec is None:
                print(f"fake adb: no recorded runner output for {m.group(1)}", file=sys.stderr)
                return 1
            sys.stdout.write(rec.get("stdout", ""))
            sys.stderr.write(rec.get("stderr", ""))
            return int(rec.get("rc", 0))
        words = line.split()
        if words[:1] == ["getprop"] and len(words) > 1:
            print(scenario.get("props", {}).get(words[1].strip("'"), ""))
            return 0
        if words[:2] == ["dumpsys", "battery"]:
            sys.stdout.write(scenario.get("battery", ""))
            return 0
        if words[:2] == ["dumpsys", "thermalservice"]:
            sys.stdout.write(scenario.get("thermal", ""))
            return 0
        if words[:1] in (["mkdir"], ["chmod"]):
            return 0
        print(f"fake adb: unknown shell command: {line}", file=sys.stderr)
        return 127
    print(f"fake adb: unknown command {cmd}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
