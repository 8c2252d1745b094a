"""int8 RS-Net entry points: PT2E with the backend's own quantizer, calibrated per resolution, and
ONE canonical int8 weight tensor per conv shared by every resolution.

Why one int8 tensor can serve every resolution: with BN folded, the conv weight of resolution r is
``W * s_r`` (``s_r`` one scale per output channel). Per-channel symmetric quantization of it is, in
exact arithmetic, ``sign(s_r) * q(W)`` with per-channel scale ``|s_r| * scale(W)``. Floating point
rounds a few elements of ``round(W * s_r / scale_r)`` differently, so quantizing each folded weight
directly gives S slightly different int8 tensors (stored S times). Here the shared tensor is made
canonical instead:

* ``q(W)`` and ``scale(W)`` come from the quantizer's own weight observer and
  ``quantize_per_channel`` applied to the plain (unfolded) ``W`` - what the backend quantizer would
  do to ``W``;
* resolution r gets ``q_r = q(W) * sign(s_r)`` (per output channel; a channel whose BN scale is
  exactly 0 gets zeros) and weight scales ``scale(W) * |s_r|`` (float32; ``eps`` of the observer
  where ``s_r`` is 0, as the observer itself gives an all-zero channel);
* :func:`check_canonical` compares that with quantizing ``W * s_r`` directly (the converted
  module's own int8 tensor): per channel, the canonical rounding error may not exceed half a
  quantization step of the direct one (plus float32 rounding), else the conversion is refused.

When every channel's sign agrees across resolutions (BN ``gamma`` rarely changes sign) the int8
tensors of all entries are bit-identical, and XNNPACK's named-data store (keyed by the sha256 of
the bytes) / LiteRT's converter (identical constant buffers shared across signatures) stores each
once without any packing. A conv whose signs differ between resolutions
keeps one int8 tensor per distinct sign pattern (counted in the manifest as
``extra.int8.int8_weight_tensors_extra``); nothing else differs. Biases, weight scales and every activation
scale/zero point are per resolution: each entry is calibrated on the eval views of the SAME real
images at its own resolution (``--calib DIR``, ``--calib-images N``).

ExecuTorch flow (torchao 0.18 / ExecuTorch 1.5.1): ``torch.export`` -> ``prepare_pt2e`` with
``XNNPACKQuantizer`` + ``get_symmetric_quantization_config(is_per_channel=True)`` (int8 activations
per tensor, int8 weights per channel symmetric in [-127, 127]) -> calibration -> ``convert_pt2e``
-> canonical weights written into the converted module -> ``torch.export`` again for lowering.

LiteRT flow (litert-torch 0.10): the same steps with ``litert_torch.quantize.pt2e_quantizer``'s
``PT2EQuantizer`` + ``get_symmetric_quantization_config(is_per_channel=True)`` (same scheme),
``convert_pt2e(fold_quantize=False)`` (litert-torch's lowering takes the float weight followed by
``quantize_per_channel``, not an int8 constant), the canonical weight written as the float
``dequant(q, scale)`` with its scale (its converter quantizes that back to exactly ``q``), then
``litert_torch.signature(...).convert(quant_config=QuantConfig(pt2e_quantizer=...))``. Its converter
stores byte-identical constant buffers once across signatures (converters/tflite.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from converters.calibration import (INT8_CALIB_IMAGES, CalibImage, Calibration, CalibrationError,
                                    calibration_batches, calibration_files, decode_for_views,
                                    load_calibration)
from converters.prepare import ConversionError, ConvBN, Prepared, bn_scale_shift, conv_bn_pairs, sample_input
from rsnet_edge import backends

#: --weights forms int8 supports: shared (canonical int8 W, stored once) and folded (each entry's
#: folded weight quantized directly: the plain PT2E export, e.g. the single-resolution baseline)
INT8_WEIGHTS = ("shared", "folded")
#: canonical vs direct: per channel, max |dequant - W s_r| of the canonical tensor may exceed the
#: direct one's by at most this fraction of the direct quantization step (float32 rounding only)
CANONICAL_SLACK = 1e-3


def check_int8_args(backend: str, weights: str, calib) -> None:
    _check_backend(backend)
    if weights not in INT8_WEIGHTS:
        raise ConversionError(f"--dtype int8 takes --weights {' or '.join(INT8_WEIGHTS)}, not {weights}")
    if calib is None:
        raise CalibrationError("--dtype int8 needs --calib DIR: a folder of real training images to "
                               "calibrate on (e.g. DATA/train)")


# ------------------------------------------------------------------------------ quantizer
def _scheme(backend: str) -> backends.Int8Scheme | None:
    b = backends.BACKENDS.get(backend)
    return b.int8 if b is not None else None


def _check_backend(backend: str) -> backends.Int8Scheme:
    scheme = _scheme(backend)
    if scheme is None:
        have = [b.name for b in backends.BACKENDS.values() if b.int8 is not None]
        raise ConversionError(f"--dtype int8 is available for {', '.join(have)} only, not {backend}")
    return scheme


def quantization_config(backend: str = "executorch"):
    """The backend quantizer's own symmetric per-channel config (ExecuTorch: XNNPACK's; LiteRT:
    litert_torch.quantize.pt2e_quantizer's; the registry names both)."""
    return backends.load_attr(_check_backend(backend).config)(is_per_channel=True)


def make_quantizer(backend: str = "executorch"):
    quantizer = backends.load_attr(_check_backend(backend).quantizer)
    return quantizer().set_global(quantization_config(backend))


def weight_spec(backend: str = "executorch"):
    return quantization_config(backend).weight


def weight_observer(eps: float | None = None, backend: str = "executorch"):
    """A fresh weight observer built from the spec the way ``prepare_pt2e`` builds it (the
    spec's dtype, range, qscheme and channel axis passed to its constructor); ``eps`` overrides
    the observer's lower bound on a scale."""
    import dataclasses
    spec = weight_spec(backend)
    kwargs = dataclasses.asdict(spec)
    ctr = kwargs.pop("observer_or_fake_quant_ctr")
    if eps is not None:
        kwargs["eps"] = eps
    return ctr.with_args(**kwargs)()


@torch.no_grad()
def quantize_weight(w: torch.Tensor, backend: str = "executorch") -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 tensor, float32 per-output-channel scales) of ``w`` as the quantizer's weight observer
    and ``quantize_per_channel`` make them, with one difference: the observer's floor on a scale
    (``eps`` = 2**-12) is lowered to float32's smallest normal number. The floor is meant for the
    weight that runs (the folded ``W * s_r``), not for ``W``: flooring ``scale(W)`` and then
    multiplying by ``|s_r| > 1`` would make a small channel's step coarser than quantizing ``W * s_r``
    directly. Without it, ``scale(W) * |s_r|`` is never coarser than the direct step."""
    spec = weight_spec(backend)
    obs = weight_observer(eps=float(torch.finfo(torch.float32).tiny), backend=backend)
    obs(w.detach().float())
    scale, zp = obs.calculate_qparams()
    q = torch.ops.quantized_decomposed.quantize_per_channel.default(
        w.detach().float(), scale.float(), zp, spec.ch_axis, spec.quant_min, spec.quant_max, spec.dtype)
    return q, scale.float()


def observer_eps(backend: str = "executorch") -> float:
    return float(weight_observer(backend=backend).eps)


@dataclass
class CanonicalConv:
    """The shared int8 ``q(W)`` of one conv and what resolution r derives from it."""
    q: torch.Tensor            # int8, the conv's weight shape
    scale: torch.Tensor        # float32 [out_channels], scale(W)
    eps: float = 2 ** -12      # the backend weight observer's floor on a scale (a zero channel's scale)

    def for_scale(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(int8 weight, float32 weight scales) for the folded weight ``W * s``."""
        sign = torch.sign(s).to(torch.int8)
        q = self.q * sign.reshape(-1, *([1] * (self.q.dim() - 1)))
        scale = (self.scale * s.abs().float()).float()
        scale = torch.where(s == 0, torch.full_like(scale, self.eps), scale)
        return q.to(torch.int8), scale


def dequant(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.reshape(-1, *([1] * (q.dim() - 1)))


def check_canonical(name: str, folded: torch.Tensor, canon: tuple[torch.Tensor, torch.Tensor],
                    direct: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    """Canonical vs direct quantization of one folded weight; refuses a canonical tensor that is
    less accurate than the direct one (per channel, beyond float32 rounding)."""
    dims = tuple(range(1, folded.dim()))
    err_c = (dequant(*canon) - folded).abs().amax(dim=dims)
    err_d = (dequant(*direct) - folded).abs().amax(dim=dims)
    step = direct[1]
    worse = err_c - torch.maximum(err_d, 0.5 * step)
    excess = float((worse / step).max())
    if excess > CANONICAL_SLACK:
        raise ConversionError(f"canonical int8 weight of {name} is less accurate than quantizing the "
                              f"folded weight directly ({excess:.3g} steps)")
    return {"differing": int((canon[0] != direct[0]).sum()),
            "max_err_steps": float((err_c / step).max()), "direct_max_err_steps": float((err_d / step).max())}


# --------------------------------------------------------------------------- one entry point
@dataclass
class QuantizedEntry:
    resolution: int
    module: nn.Module                  # convert_pt2e output (the backend's torch reference)
    act_qparams: list[tuple[float, int]]   # (scale, zero point) of every activation quantize, in graph order
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]]   # conv name -> (int8, scales) as shipped
    check: dict[str, Any]


def _conv_weight_names(gm: torch.fx.GraphModule) -> dict[str, str]:
    """prepared graph: conv node name -> qualified name of the conv module whose weight it reads."""
    out = {}
    for n in gm.graph.nodes:
        if n.op == "call_function" and n.target in (torch.ops.aten.conv2d.default,):
            w = n.args[1]
            while w.op == "call_module":               # the weight observer
                w = w.args[0]
            if w.op == "get_attr" and str(w.target).endswith(".weight"):
                out[n.name] = str(w.target)[:-len(".weight")]
    return out


def _set_attr(gm: nn.Module, target: str, value: torch.Tensor) -> None:
    *path, leaf = target.split(".")
    mod = gm
    for p in path:
        mod = getattr(mod, p)
    if leaf in mod._parameters:
        mod._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    elif leaf in mod._buffers:
        mod._buffers[leaf] = value
    else:
        setattr(mod, leaf, value)


def _get_attr(gm: nn.Module, target: str) -> torch.Tensor:
    mod = gm
    for p in target.split("."):
        mod = getattr(mod, p)
    return mod


def activation_qparams(gm: torch.fx.GraphModule) -> list[tuple[float, int]]:
    """(scale, zero point) of every per-tensor activation quantize node of a converted module."""
    out = []
    for n in gm.graph.nodes:
        if n.op == "call_function" and "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target):
            scale, zp = n.args[1], n.args[2]
            if isinstance(scale, torch.fx.Node):
                scale = float(_get_attr(gm, scale.target))
            if isinstance(zp, torch.fx.Node):
                zp = int(_get_attr(gm, zp.target))
            out.append((float(scale), int(zp)))
    return out


def quantize_entry(folded: nn.Module, reference: nn.Module, resolution: int, cal: Calibration,
                   mean: Sequence[float], std: Sequence[float], crop_pct: float,
                   canonical: dict[str, CanonicalConv] | None = None,
                   backend: str = "executorch", pairs: list[ConvBN] | None = None) -> QuantizedEntry:
    """PT2E-quantize one folded eval module with ``backend``'s quantizer, calibrated on ``cal`` at
    ``resolution``. With ``canonical`` (conv name -> CanonicalConv of the unfolded W), every folded
    conv weight is replaced by the canonical int8 tensor and scales derived from ``reference``'s BN
    (``pairs``: its folded convs and their BNs, traced from ``reference`` when not given).

    ExecuTorch's converted module holds the int8 weight as a constant (``fold_quantize``); LiteRT's
    holds the float weight and a ``quantize_per_channel`` node that its converter folds: there the
    shipped float weight is ``dequant(q, scale)``, which quantizes back to exactly ``q``."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    x = torch.zeros(2, 3, resolution, resolution)
    batch = torch.export.Dim("batch", min=1, max=1024)
    gm = torch.export.export(folded.eval(), (x,), dynamic_shapes=({0: batch},)).module()
    prepared = prepare_pt2e(gm, make_quantizer(backend))
    names = _conv_weight_names(prepared)
    with torch.no_grad():
        for xb in calibration_batches(cal, resolution, mean, std, crop_pct):
            prepared(xb)
    conv = convert_pt2e(prepared, fold_quantize=_scheme(backend).fold_quantize)
    nodes = {n.name: n for n in conv.graph.nodes}
    pairs = pairs if pairs is not None else conv_bn_pairs(reference, resolution)
    scales_of = {p.name: bn_scale_shift(p.bn)[0] for p in pairs}
    folded_w = {n: m.weight.detach() for n, m in folded.named_modules() if isinstance(m, nn.Conv2d)}
    weights, stats = {}, {"convs": 0, "differing": 0, "max_err_steps": 0.0, "direct_max_err_steps": 0.0}
    for node_name, conv_name in names.items():
        dq = nodes[node_name].args[1]
        if not (dq.op == "call_function" and "dequantize_per_channel" in str(dq.target)):
            raise ConversionError(f"int8: conv {conv_name} has no per-channel int8 weight after convert_pt2e")
        q_node, s_node = dq.args[0], dq.args[1]
        w_node = None                     # LiteRT: the float weight quantize_per_channel reads
        if q_node.op == "call_function" and "quantize_per_channel" in str(q_node.target):
            w_node = q_node.args[0]
            direct = (torch.ops.quantized_decomposed.quantize_per_channel.default(
                _get_attr(conv, w_node.target).detach().float(), *(a if not isinstance(a, torch.fx.Node)
                                                                   else _get_attr(conv, a.target)
                                                                   for a in q_node.args[1:])),
                _get_attr(conv, s_node.target))
        else:
            direct = (_get_attr(conv, q_node.target), _get_attr(conv, s_node.target))
        shipped = direct
        if canonical is not None and conv_name in canonical and conv_name in scales_of:
            shipped = canonical[conv_name].for_scale(scales_of[conv_name])
            st = check_canonical(f"{conv_name}@{resolution}", folded_w[conv_name], shipped, direct)
            stats["convs"] += 1
            stats["differing"] += st["differing"]
            stats["max_err_steps"] = max(stats["max_err_steps"], st["max_err_steps"])
            stats["direct_max_err_steps"] = max(stats["direct_max_err_steps"], st["direct_max_err_steps"])
            if w_node is None:
                _set_attr(conv, q_node.target, shipped[0].contiguous())
            else:                         # round(dequant(q, s) / s) == q exactly (|q| <= 127)
                _set_attr(conv, w_node.target, dequant(*shipped).contiguous())
            _set_attr(conv, s_node.target, shipped[1].contiguous())
        weights[conv_name] = shipped
    conv.recompile()
    return QuantizedEntry(resolution, conv, activation_qparams(conv), weights, stats)


def canonical_convs(prep: Prepared, backend: str = "executorch") -> dict[str, CanonicalConv]:
    """conv name -> q(W), scale(W) of the shared (unfolded) weight, quantized once."""
    eps = observer_eps(backend)
    return {p.name: CanonicalConv(*quantize_weight(p.conv.weight, backend), eps=eps)
            for p in prep.conv_bn(prep.default_resolution)}


def quantize_prepared(prep: Prepared, cal: Calibration, canonical: bool = True, verbose: bool = False,
                      progress: bool = True, backend: str = "executorch"
                      ) -> tuple[dict[int, QuantizedEntry], dict[str, Any]]:
    """Every served resolution of ``prep`` (its FOLDED modules) as int8 with ``backend``'s
    quantizer; facts for the manifest. ``canonical``: ship the canonical int8 W (``--weights
    shared``), else each entry's own."""
    from tqdm import tqdm

    from rsnet_edge.cli import quiet

    if prep.encoding != "folded":
        raise ConversionError(f"int8 quantizes the BN-folded modules, got encoding {prep.encoding}")
    if cal.skipped:
        import sys
        print(f"note: {len(cal.skipped)} unreadable calibration image(s) skipped, e.g. {cal.skipped[0]}",
              file=sys.stderr)
    ck = prep.ckpt
    with quiet(verbose):
        canon = canonical_convs(prep, backend) if canonical else None
    out: dict[int, QuantizedEntry] = {}
    for r in tqdm(prep.resolutions, desc=f"int8 calibration ({len(cal.images)} images)", unit="res",
                  disable=not progress):
        with quiet(verbose):               # torch.export / torchao warnings only with --verbose
            out[r] = quantize_entry(prep.modules[r], prep.references[r], r, cal, ck["mean"], ck["std"],
                                    ck.get("crop_pct", 0.875), canon, backend, prep.conv_bn(r))
    # distinct int8 weight tensors per conv across resolutions (1 = stored once)
    distinct: dict[str, set[str]] = {}
    for e in out.values():
        for name, (q, _) in e.weights.items():
            distinct.setdefault(name, set()).add(hashlib.sha256(q.numpy().tobytes()).hexdigest())
    extra = sum(len(v) - 1 for v in distinct.values())
    extra_bytes = sum((len(v) - 1) * out[prep.default_resolution].weights[k][0].numel()
                      for k, v in distinct.items())
    facts = {"scheme": _scheme(backend).description,
             "canonical_weights": canonical,
             "calibration": cal.facts(),
             "int8_weight_tensors_extra": extra, "int8_weight_bytes_extra": int(extra_bytes),
             "per_resolution": {str(r): {"activation_quant_points": len(e.act_qparams),
                                         "input_scale": e.act_qparams[0][0] if e.act_qparams else None,
                                         "weights_differing_from_direct": e.check.get("differing", 0),
                                         "max_weight_err_steps": round(e.check.get("max_err_steps", 0.0), 4)}
                                for r, e in out.items()}}
    return out, facts


def exported_programs(prep: Prepared, entries: dict[int, QuantizedEntry]) -> dict[str, Any]:
    """Entry-point name -> ExportedProgram (batch 1) of the quantized modules, for lowering."""
    progs = {}
    for name, (r, _) in prep.entries().items():
        progs[name] = torch.export.export(entries[r].module, (sample_input(r),))
    return progs


__all__ = ["CalibrationError", "Calibration", "CalibImage", "calibration_files", "decode_for_views",
           "load_calibration", "quantize_weight",
           "CanonicalConv", "check_canonical", "quantize_entry", "quantize_prepared", "exported_programs",
           "activation_qparams", "INT8_CALIB_IMAGES", "check_int8_args"]
