"""``bench.run_device --adb``: run each entry point of an artifact on an Android phone.

The user builds the runner for the phone (ExecuTorch ``executor_runner`` for ``.pte``, LiteRT
``benchmark_model`` for ``.tflite``; the kind follows the artifact suffix). This module pushes the
artifact and the runner to ``/data/local/tmp/rsnet_edge``, runs every entry point with the runner's
own timing options, parses the timings and records, beside every row, the device model
(``ro.product.model``), SoC (``ro.soc.model``, else ``ro.board.platform``), battery level and
temperature (``dumpsys battery``) and thermal status (``dumpsys thermalservice``).

Runner flags used (from the runners' sources):

* executor_runner: ``--model_path=P --method_name=forward_224 --num_executions=W+N``; timings from
  its log lines ``Iteration i of n: x ms`` (first W dropped; the first is the first-inference time)
  or, from older runners, ``Model executed successfully n time(s) in x ms`` (mean only), and
  ``Model loaded in x ms``. The delegate (XNNPACK, QNN, ...) is fixed in the .pte at conversion;
  build the matching runner (e.g. the QNN one) and pass ``--backend`` to record it.
* benchmark_model: ``--graph=P --signature_to_run_for=forward_224 --num_runs=N --warmup_runs=W``
  plus the delegate flag of ``--backend`` (xnnpack ``--use_xnnpack=true``, gpu ``--use_gpu=true``,
  nnapi ``--use_nnapi=true``, npu ``--use_npu=true``, hexagon ``--use_hexagon=true``; anything
  else, e.g. a QNN external delegate, goes through ``--runner-arg``). Timings from
  ``Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference (avg): ..``
  and the last ``count=.. median=.. p95=..`` line; it reports no p90, so ``p90_ms`` holds its p95
  (an upper bound, safe for the policy's latency budget).

Every adb call is an argument list (no host shell); the remote command line is built from
``shlex.quote``-d tokens. Errors are one line: no adb on PATH, no device, unauthorized/offline
device, several devices without ``--serial``, missing runner, runner failure (its stderr shown).
Tested only against a fake ``adb`` (tests/fakes/fake_adb.py), not on real hardware.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.measure import BenchError, percentile
from bench.report import write_outputs
from rsnet_edge import backends
from rsnet_edge.policy import THERMAL_STATES as THERMAL_NAMES  # Android's constants, coolest first
from rsnet_edge.profile import PROFILE_FORMAT, PROFILE_VERSION

LITERT_BACKEND_FLAGS = {"xnnpack": "--use_xnnpack=true", "gpu": "--use_gpu=true",
                        "nnapi": "--use_nnapi=true", "npu": "--use_npu=true",
                        "hexagon": "--use_hexagon=true", "cpu": None}


class AdbError(BenchError):
    """An adb/device/runner problem, one line."""


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


class Adb:
    """Thin wrapper: ``adb [-s SERIAL] ARGS...`` with an argument list and a timeout."""

    def __init__(self, exe: str, serial: str | None = None, timeout: float = 600):
        self.exe, self.serial, self.timeout = exe, serial, timeout

    @classmethod
    def find(cls, timeout: float = 600) -> "Adb":
        exe = shutil.which("adb")
        if exe is None:
            raise AdbError("adb not found on PATH (install Android SDK platform-tools and put adb on PATH)")
        return cls(exe, None, timeout)

    def call(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.exe] + (["-s", self.serial] if self.serial else []) + [str(a) for a in args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise AdbError(f"adb {' '.join(args[:2])} timed out after {self.timeout:g} s") from None
        except OSError as e:
            raise AdbError(f"cannot run adb ({self.exe}): {e.strerror or e}") from None
        if check and p.returncode != 0:
            raise AdbError(f"adb {' '.join(str(a) for a in args[:2])} failed (exit {p.returncode}): "
                           f"{_last_line(p.stderr) or _last_line(p.stdout)}")
        return p

    def shell(self, tokens: list[str], check: bool = True) -> subprocess.CompletedProcess:
        """``adb shell`` with every token quoted for the device shell."""
        return self.call(["shell", " ".join(shlex.quote(str(t)) for t in tokens)], check=check)

    # -------------------------------------------------------------------- devices
    def devices(self) -> list[tuple[str, str]]:
        p = self.call(["devices"], check=False)
        if p.returncode != 0:
            raise AdbError(f"adb devices failed (exit {p.returncode}): {_last_line(p.stderr)}")
        out = []
        for line in p.stdout.splitlines():
            line = line.strip()
            if not line or line.startswith("List of devices") or line.startswith("*"):
                continue
            parts = line.split()
            if len(parts) >= 2:
                out.append((parts[0], parts[1]))
        return out

    def select(self, serial: str | None) -> str:
        devs = self.devices()
        states = dict(devs)
        if serial is not None:
            if serial not in states:
                raise AdbError(f"device {serial} is not connected (adb devices lists "
                               f"{', '.join(states) or 'none'})")
            chosen = serial
        else:
            if not devs:
                raise AdbError("no Android device connected (adb devices lists none; plug the phone in "
                               "and enable USB debugging)")
            if len(devs) > 1:
                raise AdbError(f"several devices connected ({', '.join(s for s, _ in devs)}): choose one "
                               f"with --serial")
            chosen = devs[0][0]
        st = states[chosen]
        if st == "unauthorized":
            raise AdbError(f"device {chosen} is unauthorized: unlock it and accept the 'Allow USB "
                           f"debugging' prompt, then retry")
        if st != "device":
            raise AdbError(f"device {chosen} is {st}, not ready (reconnect it, or adb kill-server)")
        self.serial = chosen
        return chosen


# ------------------------------------------------------------------------------ device facts
def getprop(adb: Adb, key: str) -> str:
    return adb.shell(["getprop", key], check=False).stdout.strip()


def parse_battery(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"battery_pct": None, "battery_temp_c": None, "charging": None}
    powered = []
    for line in text.splitlines():
        k, _, v = line.strip().partition(":")
        k, v = k.strip().lower(), v.strip()
        if k == "level" and v.lstrip("-").isdigit():
            out["battery_pct"] = int(v)
        elif k == "temperature" and v.lstrip("-").isdigit():
            out["battery_temp_c"] = int(v) / 10.0              # tenths of a degree Celsius
        elif k in ("ac powered", "usb powered", "wireless powered", "dock powered"):
            powered.append(v.lower() == "true")
    if powered:
        out["charging"] = any(powered)
    return out


def parse_thermal(text: str) -> str | None:
    m = re.search(r"Thermal Status:\s*(\d+)", text)
    if not m:
        return None
    k = int(m.group(1))
    return THERMAL_NAMES[k] if 0 <= k < len(THERMAL_NAMES) else str(k)


def device_state(adb: Adb) -> dict[str, Any]:
    st = parse_battery(adb.shell(["dumpsys", "battery"], check=False).stdout)
    st["thermal"] = parse_thermal(adb.shell(["dumpsys", "thermalservice"], check=False).stdout)
    return st


def device_info(adb: Adb) -> dict[str, Any]:
    soc = getprop(adb, "ro.soc.model") or getprop(adb, "ro.board.platform")
    return {"where": f"adb:{adb.serial}", "serial": adb.serial,
            "device_model": getprop(adb, "ro.product.model"),
            "manufacturer": getprop(adb, "ro.product.manufacturer"),
            "soc": soc, "soc_manufacturer": getprop(adb, "ro.soc.manufacturer"),
            "android": getprop(adb, "ro.build.version.release"),
            "abi": getprop(adb, "ro.product.cpu.abi")}


# ------------------------------------------------------------------------------------ parsing
_ET_ITER = re.compile(r"Iteration\s+(\d+)\s+of\s+(\d+):\s*([0-9.eE+-]+)\s*ms")
_ET_TOTAL = re.compile(r"Model executed successfully\s+(\d+)\s+time\(s\)\s+in\s+([0-9.eE+-]+)\s*ms")
_ET_LOAD = re.compile(r"Model loaded in\s+([0-9.eE+-]+)\s*ms")
_TFL_TIMINGS = re.compile(r"Inference timings in us:\s*Init:\s*([0-9.eE+-]+),\s*First inference:\s*"
                          r"([0-9.eE+-]+),\s*Warmup \(avg\):\s*([0-9.eE+-]+),\s*Inference \(avg\):\s*"
                          r"([0-9.eE+-]+)")
_TFL_COUNT = re.compile(r"^(?:\S+:\s*)?count=\d+.*$", re.M)
_KV = re.compile(r"(\w+)=([0-9.eE+-]+)")
_TFL_MEM = re.compile(r"(?:Peak memory footprint|Memory footprint delta from the start of the tool)"
                      r"\s*\(MB\):\s*init=([0-9.]+)\s+overall=([0-9.]+)")


def parse_executor_runner(text: str, warmup: int) -> dict[str, Any]:
    iters = [(int(i), float(ms)) for i, _, ms in _ET_ITER.findall(text)]
    load = _ET_LOAD.search(text)
    out: dict[str, Any] = {"load_ms": float(load.group(1)) if load else None, "first_ms": None,
                           "p50_ms": None, "p90_ms": None, "mean_ms": None, "runs": 0, "peak_rss_mb": None}
    if iters:
        iters.sort()
        ms = [v for _, v in iters]
        out["first_ms"] = ms[0]
        timed = ms[warmup:] if len(ms) > warmup else ms
        out.update(p50_ms=statistics.median(timed), p90_ms=percentile(timed, 90),
                   mean_ms=statistics.fmean(timed), min_ms=min(timed), runs=len(timed))
        return out
    tot = _ET_TOTAL.search(text)
    if tot:
        n, total = int(tot.group(1)), float(tot.group(2))
        mean = total / max(n, 1)
        out.update(p50_ms=mean, p90_ms=mean, mean_ms=mean, runs=n, note="mean only (old runner)")
        return out
    raise AdbError("no timings in executor_runner output (is --runner ExecuTorch's executor_runner?)")


def parse_benchmark_model(text: str) -> dict[str, Any]:
    m = _TFL_TIMINGS.search(text)
    if not m:
        raise AdbError("no 'Inference timings in us' line in benchmark_model output (is --runner "
                       "LiteRT's benchmark_model?)")
    init, first, _warm, avg = (float(g) / 1000.0 for g in m.groups())
    out: dict[str, Any] = {"load_ms": init, "first_ms": first, "mean_ms": avg, "p50_ms": avg,
                           "p90_ms": avg, "runs": None, "peak_rss_mb": None}
    counts = _TFL_COUNT.findall(text)
    if counts:                                      # the last statistics line is the timed run
        kv = {k: float(v) for k, v in _KV.findall(counts[-1])}
        out["runs"] = int(kv.get("count", 0)) or None
        if "median" in kv:
            out["p50_ms"] = kv["median"] / 1000.0
        if "min" in kv:
            out["min_ms"] = kv["min"] / 1000.0
        if "p95" in kv:
            out["p95_ms"] = kv["p95"] / 1000.0
            out["p90_ms"] = out["p95_ms"]                   # no p90 reported: p95 as an upper bound
            out["note"] = "p90_ms = runner's p95"
    mem = _TFL_MEM.search(text)
    if mem:
        out["peak_rss_mb"] = float(mem.group(2))
    return out


# -------------------------------------------------------------------------------------- run
def _manifest(path: Path):
    from rsnet_edge.manifest import check_artifact, read_sidecar
    try:
        m = read_sidecar(path)
        check_artifact(m, path)          # never push (and "benchmark") a truncated or other file
        return m
    except ValueError as e:
        raise AdbError(f"{path.name}: {e}") from None


#: a device folder: absolute, plain characters only (it also reaches LD_LIBRARY_PATH)
_REMOTE_DIR = re.compile(r"^/[A-Za-z0-9._/-]+$")


def check_remote_dir(remote: str) -> str:
    r = str(remote).rstrip("/")
    if not _REMOTE_DIR.match(r) or any(part == ".." for part in r.split("/")):
        raise AdbError(f"--remote-dir {remote!r} must be an absolute device path of letters, digits, "
                       f"'.', '_', '-' and '/' (e.g. /data/local/tmp/rsnet_edge)")
    return r


def runner_command(kind: str, runner: str, model: str, entry: str, runs: int, warmup: int,
                   backend: str, extra: list[str]) -> list[str]:
    if kind == "executor_runner":
        return [runner, f"--model_path={model}", f"--method_name={entry}",
                f"--num_executions={warmup + runs}", *extra]
    flag = LITERT_BACKEND_FLAGS.get(backend.lower())
    cmd = [runner, f"--graph={model}", f"--signature_to_run_for={entry}", f"--num_runs={runs}",
           f"--warmup_runs={warmup}"]
    if flag:
        cmd.append(flag)
    return cmd + list(extra)


def _phone_runner(p: Path) -> str | None:
    """The runner binary kind for an artifact (``x.pte`` and the compact ``x.pte.rsfold`` alike)."""
    spec = backends.for_suffix(backends.program_suffix(p))
    return spec.adb_runner if spec is not None else None


def _programs(p: Path, entries: list[str]) -> dict[str, tuple[Path, str]]:
    """entry -> (the local file the runner loads, its name on the phone): the artifact itself, or
    the RSFOLD program serving that entry (the same bytes the app's FoldUnpacker writes on the
    phone), from the host's unpack cache."""
    if not backends.is_rsfold(p):
        return {e: (p, p.name) for e in entries}
    from rsnet_edge.cache import unpack_artifact
    from rsnet_edge.rsfold import Container, RsfoldError
    try:
        box = Container.open(p)
        outs = {e: box.output_for(e) for e in entries}
        box.close()
        files = unpack_artifact(p, entries=entries)
    except (RsfoldError, OSError) as e:
        raise AdbError(str(e)) from None
    by_sha = {f.sha256: f.path for f in files}
    base = p.name[:-len(backends.RSFOLD_SUFFIX)]
    stem, suffix = Path(base).stem, Path(base).suffix
    return {e: (by_sha[o.sha256], base if o.entries is None else f"{stem}.{o.entries[0]}{suffix}")
            for e, o in outs.items()}


def run_adb(a: argparse.Namespace) -> int:
    if not a.runner:
        raise AdbError("--adb needs --runner PATH (executor_runner for .pte, benchmark_model for .tflite)")
    runner = Path(a.runner)
    if not runner.is_file():
        raise AdbError(f"runner {runner} does not exist (build executor_runner / benchmark_model for the "
                       f"phone first)")
    artifacts = [Path(p) for p in a.artifacts]
    kinds = set()
    for p in artifacts:
        if not p.is_file():
            raise AdbError(f"{p} does not exist")
        k = _phone_runner(p)
        if k is None:
            runs = "; ".join(f"{b.suffix} / {b.suffix}{backends.RSFOLD_SUFFIX} ({b.adb_runner})"
                             for b in backends.BACKENDS.values() if b.adb_runner)
            raise AdbError(f"{p.name}: --adb runs {runs} artifacts")
        kinds.add(k)
    if len(kinds) > 1:
        raise AdbError("one --runner serves one artifact kind: bench .pte and .tflite in separate runs")
    kind = kinds.pop()
    extras = [Path(x) for x in a.push]
    for x in extras:
        if not x.is_file():
            raise AdbError(f"--push {x} does not exist")
    remote = check_remote_dir(a.remote_dir)
    from rsnet_edge.cli import Output, check_outputs
    check_outputs([Output(a.out_dir, "--out-dir", "dir")], inputs=[*artifacts, runner, *extras])
    manifests = {p: _manifest(p) for p in artifacts}     # sha256-checked before anything is pushed
    adb = Adb.find(a.timeout)
    serial = adb.select(a.serial)
    info = device_info(adb)
    info.update(runner=kind, runner_path=str(runner), backend=a.backend)
    adb.shell(["mkdir", "-p", remote])
    remote_runner = f"{remote}/{runner.name}"
    adb.call(["push", str(runner), remote_runner])
    adb.shell(["chmod", "755", remote_runner])
    for x in extras:
        adb.call(["push", str(x), f"{remote}/{x.name}"])
    rows, entries_json = [], []
    from tqdm import tqdm

    jobs = []
    for p in artifacts:
        m = manifests[p]
        pushed = {}
        for e, (local, name) in _programs(p, [e.entry for e in m.entries]).items():   # .rsfold: made here
            if name not in pushed:
                adb.call(["push", str(local), f"{remote}/{name}"])
                pushed[name] = f"{remote}/{name}"
            jobs.append((p, m, pushed[name], m.entry_for(int(e.rsplit("_", 1)[1]))))
    per_artifact: dict[Path, dict[str, Any]] = {}
    for p, m, remote_model, e in tqdm(jobs, desc=f"adb {serial}", disable=a.no_progress, leave=False):
        state = device_state(adb)
        cmd = runner_command(kind, remote_runner, remote_model, e.entry, a.runs, a.warmup, a.backend,
                             list(a.runner_arg))
        env = [f"LD_LIBRARY_PATH={remote}", f"ADSP_LIBRARY_PATH={remote}"]
        proc = adb.call(["shell", " ".join(["cd", shlex.quote(remote), "&&"]
                                           + [shlex.quote(t) for t in env + cmd])], check=False)
        if proc.returncode != 0:
            raise AdbError(f"runner failed on {p.name}:{e.entry} (exit {proc.returncode}): "
                           f"{_last_line(proc.stderr) or _last_line(proc.stdout) or 'no output'}")
        text = proc.stdout + "\n" + proc.stderr
        t = (parse_executor_runner(text, a.warmup) if kind == "executor_runner"
             else parse_benchmark_model(text))
        row = {"where": info["where"], "artifact": p.name, "backend": m.backend,
               "kind": "folded" if m.weights == "folded" else "shared", "weights": m.weights,
               "resolution": e.resolution, "entry": e.entry, "trained": e.trained,
               "size_bytes": p.stat().st_size, "load_ms": t.get("load_ms"), "first_ms": t.get("first_ms"),
               "p50_ms": t.get("p50_ms"), "p90_ms": t.get("p90_ms"), "mean_ms": t.get("mean_ms"),
               "min_ms": t.get("min_ms"), "runs": t.get("runs"), "switch_ms": "", "reload_switch_ms": "",
               "rss_delta_mb": "", "peak_rss_mb": t.get("peak_rss_mb"),
               "top1": "" if e.top1 is None else e.top1, "top1_source": "manifest", "madds": e.madds or "",
               "device_model": info["device_model"], "soc": info["soc"], **state}
        rows.append(row)
        art = per_artifact.setdefault(p, {
            "artifact": p.name, "path": str(p), "backend": m.backend, "kind": row["kind"],
            "weights": m.weights, "resolutions": m.resolutions, "size_bytes": p.stat().st_size,
            "load_ms": t.get("load_ms"), "top1_source": "manifest", "delegate": a.backend, "profile": {}})
        art["profile"][str(e.resolution)] = {
            k: t.get(k) for k in ("p50_ms", "p90_ms", "p95_ms", "mean_ms", "min_ms", "first_ms", "load_ms",
                                  "runs", "peak_rss_mb", "note") if t.get(k) is not None}
        art["profile"][str(e.resolution)].update(top1=e.top1, **state)
    entries_json = list(per_artifact.values())
    ratios, lines = [], []
    for art in entries_json:
        rs = art["resolutions"]
        prof = art["profile"]
        if len(rs) >= 2 and prof[str(rs[0])].get("p50_ms") and prof[str(rs[-1])].get("p50_ms"):
            q = prof[str(rs[-1])]["p50_ms"] / prof[str(rs[0])]["p50_ms"]
            ratios.append({"artifact": art["artifact"],
                           "low_vs_high": {"low": rs[-1], "high": rs[0], "ratio": q}})
            lines.append(f"[{art['backend']} on {info['device_model'] or serial}] latency({rs[-1]})/"
                         f"latency({rs[0]}): {q:.3f}")
    for fb in (x for x in entries_json if x["kind"] == "folded"):
        r = fb["resolutions"][0]
        for s in entries_json:
            if s["kind"] == "shared" and str(r) in s["profile"] and s["profile"][str(r)].get("p50_ms"):
                q = s["profile"][str(r)]["p50_ms"] / fb["profile"][str(r)]["p50_ms"]
                lines.append(f"[{s['backend']} on {info['device_model'] or serial}] shared artifact vs "
                             f"the single-resolution (I-Net) export @{r}: {q:.2f}x latency")
    profile = {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "device": info,
               "settings": {"runs": a.runs, "warmup": a.warmup, "runner_args": list(a.runner_arg)},
               "artifacts": entries_json, "ratios": ratios,
               "notes": ["switch inside one artifact is not measured on the phone: the runners run "
                         "one entry point per process"]}
    paths = write_outputs(Path(a.out_dir), rows, profile)
    print(f"{info['device_model']} ({info['soc']}), serial {serial}, runner {runner.name}, "
          f"backend {a.backend}")
    for r in rows:
        print(f"  {r['artifact']} {r['entry']}: load {r['load_ms']} ms, first {r['first_ms']} ms, "
              f"p50 {r['p50_ms']:.3f} ms, p90 {r['p90_ms']:.3f} ms | battery {r['battery_pct']}% "
              f"{r['battery_temp_c']} C, thermal {r['thermal']}")
    for line in lines:
        print(line)
    from rsnet_edge.profile import recommendation
    for art in entries_json:
        if art["kind"] == "shared":
            print(recommendation(art))
    print("note: switch inside one artifact needs an in-process runner (the Android demo app); not "
          "measured here")
    print("wrote " + ", ".join(str(v) for v in paths.values()))
    return 0
