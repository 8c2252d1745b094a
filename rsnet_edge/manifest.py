"""The manifest: the resolution selector that travels with every artifact.

One schema, defined here and nowhere else. Training writes the fields it knows into the checkpoint
(``rsnet_edge.checkpoint``), converters turn a checkpoint into a :class:`Manifest` (embedded in the
artifact where the format allows, and written beside it as ``<artifact>.manifest.json``), and the
runtime, bench and Android app read it back. Nobody re-derives preprocessing or entry-point names.

The JSON layout (schema_version 1)::

    {
      "format": "rsnet-edge-manifest", "schema_version": 1,
      "backend": "executorch" | "coreml" | "tflite" | "onnx" | "torch",
      "arch": "mobilenet_v2", "arch_args": {"width_mult": 1.0, "num_classes": 10},
      "weights": "shared" | "affine" | "folded", "dtype": "fp32" | "fp16" | "int8",
      "input": {"layout": "NCHW", "dtype": "float32", "color": "RGB", "scale": 255.0,
                "mean": [...], "std": [...], "crop_pct": 0.875, "interpolation": "bilinear"},
      "class_names": [...],
      "default_resolution": 224,
      "entries": [{"resolution": 224, "entry": "forward_224", "madds": 300774272,
                   "top1": 71.2, "top5": 90.1, "trained": true}, ...],   # highest resolution first
      "policy": {...},                       # rsnet_edge.policy.Policy as a dict
      "artifact": {"file": "rs_mbv2.pte", "sha256": "...", "size_bytes": 123},
      "checkpoint": {"file": "rs_mbv2.pt", "sha256": "..."},
      "params": {"total": 3470000, "shared": 3400000, "bn_per_resolution": 34000},
      "extra": {}                            # backend-specific facts (free form)
    }

Preprocessing a user must apply for resolution ``r``: resize the shorter side (bilinear) to
``round(r / crop_pct)``, centre-crop ``r x r``, scale to [0, 1] (divide by ``input.scale``),
subtract ``mean``, divide by ``std``, and lay the tensor out as ``input.layout``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import jsonio
from .backends import names as backend_names
from .files import atomic_write_bytes, sha256_file

FORMAT = "rsnet-edge-manifest"
SCHEMA_VERSION = 1
LAYOUTS = ("NCHW", "NHWC")


class ManifestError(ValueError):
    """A manifest that is missing, malformed, or disagrees with its artifact."""


def entry_name(resolution: int) -> str:
    """The one naming rule for per-resolution entry points (ExecuTorch methods, Core ML functions,
    LiteRT signatures, ONNX graphs): ``forward_224``."""
    return f"forward_{int(resolution)}"


DEFAULT_ENTRY = "forward"


@dataclass
class InputSpec:
    mean: list[float]
    std: list[float]
    crop_pct: float = 0.875
    layout: str = "NCHW"
    dtype: str = "float32"
    color: str = "RGB"
    scale: float = 255.0
    interpolation: str = "bilinear"

    def resize_size(self, resolution: int) -> int:
        """Shorter-side size before the centre crop (paper 4.1: r / 0.875)."""
        return int(round(resolution / self.crop_pct))


@dataclass
class Entry:
    resolution: int
    entry: str
    madds: int | None = None
    top1: float | None = None
    top5: float | None = None
    trained: bool = True


@dataclass
class Manifest:
    backend: str
    arch: str
    arch_args: dict[str, Any]
    input: InputSpec
    class_names: list[str]
    entries: list[Entry]
    default_resolution: int
    weights: str = "shared"
    dtype: str = "fp32"
    policy: dict[str, Any] = field(default_factory=dict)
    artifact: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    # ----------------------------------------------------------------- queries
    @property
    def resolutions(self) -> list[int]:
        return [e.resolution for e in self.entries]

    def entry_for(self, resolution: int) -> Entry:
        for e in self.entries:
            if e.resolution == int(resolution):
                return e
        raise ManifestError(f"resolution {resolution} is not served by this artifact "
                            f"(it has {self.resolutions})")

    # ------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        # stable, readable key order: identity first
        order = ["format", "schema_version", "backend", "arch", "arch_args", "weights", "dtype",
                 "input", "class_names", "default_resolution", "entries", "policy", "artifact",
                 "checkpoint", "params", "extra"]
        return {k: d[k] for k in order}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: Any) -> "Manifest":
        validate(d)
        d = dict(d)
        d["input"] = InputSpec(**d["input"])
        d["entries"] = [Entry(**e) for e in d["entries"]]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_json(cls, text: str | bytes, name: str = "manifest") -> "Manifest":
        """Parse and validate manifest JSON (bounded: :mod:`rsnet_edge.jsonio`); ``name`` names it in
        the one-line :class:`ManifestError`."""
        try:
            d = jsonio.loads(text, name)
        except jsonio.JsonError as e:
            raise ManifestError(str(e)) from None
        return cls.from_dict(d)


# --------------------------------------------------------------------- validation
def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ManifestError(msg)


#: the one rule for what a resolution may be (train, convert, predict, evaluate, load): an integer
#: number of pixels per side in [MIN_RESOLUTION, MAX_RESOLUTION]. Below 16 a stride-32 backbone's last
#: feature map is a single padded cell; above 1024 one image's activations take gigabytes.
MIN_RESOLUTION = 16
MAX_RESOLUTION = 1024

#: values the schema allows
WEIGHTS_MODES = ("shared", "affine", "folded")
DTYPES = ("fp32", "fp16", "int8")


def check_resolution(r: Any, what: str = "resolution") -> int:
    """``r`` as an int, or ValueError (one line) if it is not an integer in
    [MIN_RESOLUTION, MAX_RESOLUTION]."""
    if isinstance(r, bool) or not (isinstance(r, int) or (isinstance(r, float) and r.is_integer())
                                   or (isinstance(r, str) and r.strip().isdigit())):
        try:                                   # numpy integers
            import numbers
            if isinstance(r, numbers.Integral) and not isinstance(r, bool):
                r = int(r)
            else:
                raise TypeError
        except TypeError:
            raise ValueError(f"{what} must be an integer number of pixels, got {r!r}") from None
    r = int(r)
    if not MIN_RESOLUTION <= r <= MAX_RESOLUTION:
        raise ValueError(f"{what} {r} is outside {MIN_RESOLUTION}..{MAX_RESOLUTION} pixels")
    return r


def _fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _no_unknown(d: dict, known: Sequence[str], where: str) -> None:
    for k in d:
        _need(k in known, f"{where} has unknown key {k!r} (known: {', '.join(known)})")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate(d: Any) -> None:
    """Raise ManifestError with one clear line if ``d`` is not a valid manifest dict.

    Unknown keys are refused (naming the key and where) at the top level, in ``input`` and in each
    entry, so a typo never silently falls back to a default; ``arch_args``, ``policy`` (checked by
    :mod:`rsnet_edge.policy`), ``artifact``, ``checkpoint``, ``params`` and ``extra`` are free-form
    objects."""
    _need(isinstance(d, dict), "manifest must be a JSON object")
    _need(d.get("format") == FORMAT, f"not an rsnet-edge manifest (format={d.get('format')!r})")
    v = d.get("schema_version")
    _need(isinstance(v, int) and not isinstance(v, bool), "manifest has no integer schema_version")
    _need(v <= SCHEMA_VERSION, f"manifest schema_version {v} is newer than this library "
                               f"understands ({SCHEMA_VERSION}); upgrade rsnet-edge")
    _no_unknown(d, _fields(Manifest), "manifest")
    for key in ("backend", "arch", "arch_args", "input", "class_names", "entries",
                "default_resolution"):
        _need(key in d, f"manifest is missing '{key}'")
    _need(d["backend"] in backend_names(),
          f"unknown backend {d['backend']!r} (expected one of {backend_names()})")
    _need(isinstance(d["arch"], str) and d["arch"], "manifest arch must be a non-empty string")
    _need(d.get("weights", "shared") in WEIGHTS_MODES,
          f"manifest weights {d.get('weights')!r} is not one of {WEIGHTS_MODES}")
    _need(d.get("dtype", "fp32") in DTYPES, f"manifest dtype {d.get('dtype')!r} is not one of {DTYPES}")
    for key in ("arch_args", "policy", "artifact", "checkpoint", "params", "extra"):
        _need(isinstance(d.get(key, {}), dict), f"manifest '{key}' must be an object")
    inp = d["input"]
    _need(isinstance(inp, dict), "manifest 'input' must be an object")
    _no_unknown(inp, _fields(InputSpec), "manifest input")
    for key in ("mean", "std"):
        _need(isinstance(inp.get(key), list) and len(inp[key]) == 3 and all(_num(x) for x in inp[key]),
              f"manifest input.{key} must be 3 numbers")
    _need(all(x > 0 for x in inp["std"]), "manifest input.std must be positive")
    cp = inp.get("crop_pct", 0.875)
    _need(_num(cp) and 0 < cp <= 1, f"manifest input.crop_pct must be a number in (0, 1], got {cp!r}")
    _need(inp.get("layout", "NCHW") in LAYOUTS, f"manifest input.layout must be one of {LAYOUTS}")
    sc = inp.get("scale", 255.0)
    _need(_num(sc) and sc > 0, f"manifest input.scale must be a positive number, got {sc!r}")
    for key, allowed in (("dtype", ("float32",)), ("color", ("RGB",)), ("interpolation", ("bilinear",))):
        if key in inp:
            _need(inp[key] in allowed, f"manifest input.{key} {inp[key]!r} is not supported "
                                       f"(expected one of {allowed})")
    names = d["class_names"]
    _need(isinstance(names, list) and names and all(isinstance(n, str) for n in names),
          "manifest class_names must be a non-empty list of strings")
    nc = d["arch_args"].get("num_classes")
    if nc is not None:
        _need(nc == len(names), f"manifest class_names has {len(names)} names but the classifier "
                                f"has {nc} outputs (arch_args.num_classes)")
    entries = d["entries"]
    _need(isinstance(entries, list) and entries, "manifest entries must be a non-empty list")
    seen_r, seen_e = set(), set()
    for i, e in enumerate(entries):
        _need(isinstance(e, dict), f"manifest entries[{i}] must be an object")
        _no_unknown(e, _fields(Entry), f"manifest entries[{i}]")
        _need(isinstance(e.get("resolution"), int) and not isinstance(e.get("resolution"), bool),
              f"manifest entries[{i}] needs an integer 'resolution'")
        try:
            check_resolution(e["resolution"], f"manifest entries[{i}] resolution")
        except ValueError as err:
            raise ManifestError(str(err)) from None
        _need(isinstance(e.get("entry"), str) and e["entry"], f"manifest entries[{i}] needs an 'entry' name")
        for key in ("top1", "top5"):
            _need(e.get(key) is None or _num(e[key]), f"manifest entries[{i}].{key} must be a number or null")
        _need(e.get("madds") is None or (isinstance(e["madds"], int) and not isinstance(e["madds"], bool)),
              f"manifest entries[{i}].madds must be an integer or null")
        _need(isinstance(e.get("trained", True), bool), f"manifest entries[{i}].trained must be true/false")
        _need(e["resolution"] not in seen_r, f"resolution {e['resolution']} listed twice")
        _need(e["entry"] not in seen_e, f"entry point {e['entry']} listed twice")
        seen_r.add(e["resolution"])
        seen_e.add(e["entry"])
    rs = [e["resolution"] for e in entries]
    _need(rs == sorted(rs, reverse=True), "manifest entries must be ordered highest resolution first")
    dr = d["default_resolution"]
    _need(isinstance(dr, int) and not isinstance(dr, bool) and dr in seen_r,
          f"default_resolution {d['default_resolution']} is not one of the entries {rs}")
    if d.get("policy"):
        from .policy import PolicyError, policy_for      # stdlib only; the one policy validator
        try:
            policy_for(d["policy"], rs)
        except PolicyError as err:
            raise ManifestError(f"manifest {err}") from None


# ------------------------------------------------------------------------- file I/O
def sidecar_path(artifact: str | os.PathLike) -> Path:
    """Where the JSON copy of an artifact's manifest lives: ``rs_mbv2.pte.manifest.json``."""
    a = Path(artifact)
    return a.with_name(a.name + ".manifest.json")


def write_sidecar(manifest: Manifest, artifact: str | os.PathLike) -> Path:
    out = sidecar_path(artifact)
    atomic_write_bytes(out, manifest.to_json().encode())
    return out


def read_sidecar(artifact: str | os.PathLike) -> Manifest:
    """The sidecar manifest of ``artifact``, read within :mod:`rsnet_edge.jsonio`'s limits (a folder,
    a device, a huge or deeply nested file: one :class:`ManifestError` line naming the file)."""
    p = sidecar_path(artifact)
    if not (p.exists() or p.is_symlink()):
        raise ManifestError(f"no manifest beside {artifact} (expected {p.name})")
    try:
        d = jsonio.read(p)
    except jsonio.JsonError as e:
        raise ManifestError(str(e)) from None
    try:
        return Manifest.from_dict(d)
    except ManifestError as e:
        raise ManifestError(f"{p}: {e}") from None


def check_artifact(manifest: Manifest, artifact: str | os.PathLike) -> None:
    """Refuse a manifest that does not describe this artifact (sha256 recorded at conversion)."""
    want = manifest.artifact.get("sha256")
    if want is None:
        return
    got = sha256_file(artifact)
    if got != want:
        raise ManifestError(f"manifest does not match {Path(artifact).name}: sha256 {got[:12]}... "
                            f"!= {want[:12]}... recorded at conversion (re-convert, or use the "
                            f"manifest written with this artifact)")


#: what a sidecar and the copy embedded in the artifact must agree on (the artifact's own record,
#: ``artifact``, cannot hold its own sha256; ``policy`` is the sidecar's to change:
#: ``python -m rsnet_edge.profile --write``)
AGREE_ON = ("backend", "arch", "arch_args", "weights", "dtype", "input", "class_names", "entries",
            "default_resolution", "checkpoint")


def disagreement(a: Manifest, b: Manifest) -> str | None:
    """The first field on which two manifests of one artifact (sidecar, embedded) differ, or None."""
    for key in AGREE_ON:
        if getattr(a, key) != getattr(b, key):
            return key
    return None
