"""The architecture registry: everything rsnet-edge knows about an architecture, in ONE table.

Each :class:`Arch` names its builder (lazily, as a ``"module:attr"`` string, so that this module
stays standard-library only at import time), the constructor arguments it accepts besides
``num_classes`` (which of them is the width multiplier and which the classifier dropout), the
classifier's module name, the default training recipe (:class:`Recipe`), the rule that finds the
norm ending each residual block (``--zero-init-residual``), the source's own preprocessing
(:class:`Preprocess`, for information: rsnet-edge trains and evaluates with bilinear views, which is
what checkpoints and manifests record), the paper's Table 2 figures where they exist, and a family.
Every other module asks this table; nothing else keeps a per-architecture list or branches on a
name.

torchvision: every BatchNorm classification CNN up to 70M parameters except GoogLeNet and
Inception-v3 (auxiliary classifiers; ``weights=None`` always: nothing is downloaded). timm (the
optional extra ``rsnet-edge[timm]``): the names registered below, and any other ``timm:NAME`` whose
model is built from BatchNorm2d / BatchNormAct2d (built on demand, ``pretrained=False``; preprocessing
from timm's own config).

    python -m rsnet_edge.archs [--arch NAME ...] [--resolutions 224 192 ...] [--num-classes 1000]

lists every name with its parameters and MAdds per resolution (paper Table 2 beside, where it has
them).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
from dataclasses import dataclass
from typing import Any

from .backends import load_attr

TIMM = "timm:"
TIMM_EXTRA = "timm"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the rule of every architecture with residual blocks (rsnet_edge.models)
RESIDUAL_RULE = "rsnet_edge.models:residual_block_norms"


@dataclass(frozen=True)
class Recipe:
    """Default training recipe: SGD lr at batch 256 (scaled linearly), weight decay, epochs, the
    classifier dropout (where the builder takes one) and where the numbers come from."""
    lr: float
    weight_decay: float
    epochs: int
    dropout: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class Preprocess:
    """The source's own evaluation preprocessing (torchvision's DEFAULT weights' transforms, timm's
    pretrained_cfg): mean, std, crop_pct = crop / resize, interpolation, native input size."""
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    input_size: int = 224


@dataclass(frozen=True)
class Paper:
    """Paper Table 2 (ImageNet, 1000 classes), as printed: MAdds per resolution, params."""
    madds: tuple[tuple[int, str], ...]
    single_params: str
    rsnet_params: str


@dataclass(frozen=True)
class Arch:
    name: str                           # what --arch takes and checkpoints record
    family: str
    builder: str                        # "module:attr", called as builder(**fixed, num_classes=, **args)
    head: str                           # module name of the classifier nn.Linear
    recipe: Recipe
    args: tuple[str, ...] = ()          # constructor arguments accepted besides num_classes
    width_arg: str | None = None        # which of args is the width multiplier (--width-mult)
    dropout_arg: str | None = None      # which of args is the classifier dropout (--dropout)
    fixed: tuple[tuple[str, Any], ...] = (("weights", None),)   # always passed: nothing downloaded
    zero_init: str | None = RESIDUAL_RULE   # "module:attr": model -> the norm ending each residual block
    preprocess: Preprocess = Preprocess()
    paper: Paper | None = None
    source: str = "torchvision"
    extra: str | None = None            # pip extra the builder needs: rsnet-edge[extra]
    registered: bool = True             # False: a timm:NAME built on demand

    @property
    def needs(self) -> str:
        """The module the builder imports."""
        return self.builder.partition(":")[0].split(".")[0]

    def available(self) -> bool:
        return importlib.util.find_spec(self.needs) is not None


# ------------------------------------------------------------------------------------ recipes
PAPER_MBV2 = Recipe(0.05, 4e-5, 150, 0.2, "paper 4.1 (MobileNetV2)")
MOBILE = Recipe(0.05, 4e-5, 150, 0.2, "paper 4.1's MobileNetV2 recipe (rsnet-edge's default for mobile CNNs)")
PAPER_RESNET = Recipe(0.1, 1e-4, 120, 0.0, "paper 4.1 (ResNet)")
RESNET = dataclasses.replace(PAPER_RESNET, source="paper 4.1's ResNet recipe")
REGNET = Recipe(0.2, 5e-5, 100, 0.0, "RegNet paper (pycls: lr 0.8 at batch 1024, 100 epochs)")
SHUFFLENET = Recipe(0.125, 4e-5, 240, 0.0, "ShuffleNetV2 paper (lr 0.5 at batch 1024, 300k iterations)")
DENSENET = Recipe(0.1, 1e-4, 90, 0.0, "DenseNet paper (ImageNet: 90 epochs)")
TIMM_DEFAULT = dataclasses.replace(MOBILE, dropout=0.0)


def _tv(name, family, head, recipe, crop=224, resize=256, interp="bilinear", dropout=None, **kw) -> Arch:
    """A torchvision entry; ``dropout``: its builder's classifier dropout default (None: no arg)."""
    if dropout is not None:
        recipe = dataclasses.replace(recipe, dropout=dropout)
        kw.setdefault("args", ("dropout",))
        kw.setdefault("dropout_arg", "dropout")
    else:
        recipe = dataclasses.replace(recipe, dropout=0.0)
    return Arch(name, family, f"torchvision.models:{name}", head, recipe,
                preprocess=Preprocess(crop_pct=crop / resize, interpolation=interp, input_size=crop), **kw)


def _timm(name, family, head, zero_init=RESIDUAL_RULE, dropout=0.0, interp="bicubic") -> Arch:
    return Arch(TIMM + name, family, "timm:create_model", head, dataclasses.replace(TIMM_DEFAULT, dropout=dropout),
                args=("drop_rate", "drop_path_rate"), dropout_arg="drop_rate",
                fixed=(("model_name", name), ("pretrained", False)), zero_init=zero_init,
                preprocess=Preprocess(interpolation=interp), source="timm", extra=TIMM_EXTRA)


_MBV = ("width_mult", "dropout")
_EFF = ("dropout", "stochastic_depth_prob")
_ENTRIES = [
    _tv("mobilenet_v2", "MobileNetV2", "classifier.1", PAPER_MBV2, resize=232, dropout=0.2, args=_MBV,
        width_arg="width_mult", paper=Paper(((224, "301M"), (192, "221M"), (160, "154M"), (128, "99M"), (96, "56M")),
                                          "3.34M", "3.47M")),
    _tv("mobilenet_v3_small", "MobileNetV3", "classifier.3", MOBILE, dropout=0.2, args=_MBV, width_arg="width_mult"),
    _tv("mobilenet_v3_large", "MobileNetV3", "classifier.3", MOBILE, resize=232, dropout=0.2, args=_MBV,
        width_arg="width_mult"),
    _tv("efficientnet_b0", "EfficientNet", "classifier.1", MOBILE, 224, 256, "bicubic", 0.2, args=_EFF),
    _tv("efficientnet_b1", "EfficientNet", "classifier.1", MOBILE, 240, 255, "bilinear", 0.2, args=_EFF),
    _tv("efficientnet_b2", "EfficientNet", "classifier.1", MOBILE, 288, 288, "bicubic", 0.3, args=_EFF),
    _tv("efficientnet_b3", "EfficientNet", "classifier.1", MOBILE, 300, 320, "bicubic", 0.3, args=_EFF),
    _tv("efficientnet_b4", "EfficientNet", "classifier.1", MOBILE, 380, 384, "bicubic", 0.4, args=_EFF),
    _tv("efficientnet_b5", "EfficientNet", "classifier.1", MOBILE, 456, 456, "bicubic", 0.4, args=_EFF),
    _tv("efficientnet_b6", "EfficientNet", "classifier.1", MOBILE, 528, 528, "bicubic", 0.5, args=_EFF),
    _tv("efficientnet_b7", "EfficientNet", "classifier.1", MOBILE, 600, 600, "bicubic", 0.5, args=_EFF),
    _tv("efficientnet_v2_s", "EfficientNet", "classifier.1", MOBILE, 384, 384, "bilinear", 0.2, args=_EFF),
    _tv("efficientnet_v2_m", "EfficientNet", "classifier.1", MOBILE, 480, 480, "bilinear", 0.3, args=_EFF),
    _tv("resnet18", "ResNet", "fc", PAPER_RESNET,
        paper=Paper(((224, "1.82G"), (192, "1.34G"), (160, "931M"), (128, "596M"), (96, "335M")), "11.15M", "11.18M")),
    _tv("resnet34", "ResNet", "fc", RESNET),
    _tv("resnet50", "ResNet", "fc", PAPER_RESNET, resize=232,
        paper=Paper(((224, "4.14G"), (192, "3.04G"), (160, "2.11G"), (128, "1.35G"), (96, "760M")),
                    "24.37M", "24.58M")),
    *[_tv(n, "ResNet", "fc", RESNET, resize=232) for n in ("resnet101", "resnet152", "resnext50_32x4d",
                                                          "wide_resnet50_2")],
    *[_tv(f"regnet_{xy}_{size}", "RegNet", "fc", REGNET, resize=232)
      for xy, sizes in (("x", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf")),
                        ("y", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf"))) for size in sizes],
    *[_tv(f"shufflenet_v2_{w}", "ShuffleNetV2", "fc", SHUFFLENET, resize=r, zero_init=None)
      for w, r in (("x0_5", 256), ("x1_0", 256), ("x1_5", 232), ("x2_0", 232))],
    *[_tv(f"mnasnet{a}", "MNASNet", "classifier.1", MOBILE, resize=r, dropout=0.2)
      for a, r in (("0_5", 256), ("0_75", 232), ("1_0", 256), ("1_3", 232))],
    *[_tv(f"densenet{d}", "DenseNet", "classifier", DENSENET, zero_init=None) for d in (121, 161, 169, 201)],
    _timm("mobilenetv3_large_100", "MobileNetV3", "classifier"),
    _timm("mobilenetv3_small_100", "MobileNetV3", "classifier"),
    _timm("mobilenetv2_100", "MobileNetV2", "classifier"),
    _timm("efficientnet_lite0", "EfficientNet-Lite", "classifier"),
    _timm("efficientnet_b0", "EfficientNet", "classifier"),
    _timm("tf_efficientnet_b0", "EfficientNet", "classifier"),
    _timm("mnasnet_100", "MNASNet", "classifier"),
    _timm("fbnetc_100", "FBNet", "classifier", interp="bilinear"),
    _timm("lcnet_100", "LCNet", "classifier", zero_init=None),
    _timm("mixnet_s", "MixNet", "classifier"),
    _timm("ghostnet_100", "GhostNet", "classifier", zero_init=None, dropout=0.2),
    _timm("rexnet_100", "ReXNet", "head.fc", dropout=0.2),
    _timm("regnety_008", "RegNet", "head.fc"),
    _timm("resnet18d", "ResNet-D", "fc"),
    _timm("resnet50d", "ResNet-D", "fc"),
    _timm("densenet121", "DenseNet", "classifier", zero_init=None),
]
#: THE table (order: how they are listed to users)
ARCHS: dict[str, Arch] = {a.name: a for a in _ENTRIES}


def names() -> tuple[str, ...]:
    """Every registered name (timm ones included, installed or not)."""
    return tuple(ARCHS)


def families() -> dict[str, list[str]]:
    """family -> registered names, torchvision and timm apart (``"timm MobileNetV3"``)."""
    out: dict[str, list[str]] = {}
    for a in ARCHS.values():
        out.setdefault(a.family if a.source == "torchvision" else f"{a.source} {a.family}", []).append(a.name)
    return out


def _needs_timm(name: str) -> ValueError:
    return ValueError(f"{name} needs timm, an optional extra: pip install 'rsnet-edge[{TIMM_EXTRA}]'")


@functools.lru_cache(maxsize=None)
def _timm_spec(name: str) -> Arch:
    """A timm model that is not registered: its facts from timm itself (nothing downloaded)."""
    model = name[len(TIMM):]
    if importlib.util.find_spec("timm") is None:
        raise _needs_timm(name)
    import timm
    from timm.models import get_pretrained_cfg

    if not model or not timm.is_model(model):
        raise ValueError(f"unknown architecture {name!r}: timm has no model {model!r}")
    cfg = get_pretrained_cfg(model)
    head = getattr(cfg, "classifier", None) or "classifier"
    size = getattr(cfg, "input_size", (3, 224, 224))[-1]
    pre = Preprocess(tuple(cfg.mean), tuple(cfg.std), float(cfg.crop_pct), str(cfg.interpolation), int(size))
    return dataclasses.replace(_timm(model, "timm", head), preprocess=pre, registered=False)


def get(name: str) -> Arch:
    """The registry entry of ``name``; ``timm:NAME`` for any timm model (needs timm)."""
    if not isinstance(name, str):
        raise ValueError(f"architecture must be a name, got {name!r}")
    if name in ARCHS:
        return ARCHS[name]
    if name.startswith(TIMM):
        return _timm_spec(name)
    close = difflib.get_close_matches(name, list(ARCHS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown architecture {name!r}{hint} (python -m rsnet_edge.archs lists the "
                     f"{len(ARCHS)} registered names; timm:NAME takes any timm model built from BatchNorm)")


def check(name: str) -> str:
    """``name`` if it can be built here; else a ValueError naming it (unknown, or its extra missing)."""
    spec = get(name)
    if not spec.available():
        raise _needs_timm(name) if spec.extra == TIMM_EXTRA else ValueError(f"{name} needs {spec.needs}")
    return name


def arch_args(name: str, num_classes: int, width_mult: float | None = None,
              dropout: float | None = None) -> dict[str, Any]:
    """The constructor arguments a run passes (and its checkpoint records): ``num_classes``, and the
    width multiplier / classifier dropout under the builder's own names where it has them. A width
    is ignored by a builder without one (``training.train``'s ``--width-mult`` always was); a
    non-zero dropout for a builder without one is a ValueError."""
    spec = get(name)
    out: dict[str, Any] = {"num_classes": int(num_classes)}
    if width_mult is not None and spec.width_arg:
        out[spec.width_arg] = width_mult
    if dropout is not None:
        if spec.dropout_arg:
            out[spec.dropout_arg] = dropout
        elif dropout:
            raise ValueError(f"--dropout: {name} has no classifier dropout argument")
    return out


def build(name: str, num_classes: int = 1000, **args):
    """The plain (single-resolution) model of ``name``, randomly initialised (nothing downloaded)."""
    spec = get(name)
    bad = set(args) - set(spec.args)
    if bad:
        raise ValueError(f"{name} does not take {sorted(bad)} (it takes {list(spec.args)})")
    check(name)
    return load_attr(spec.builder)(**dict(spec.fixed), num_classes=num_classes, **args)


def checkpoint_preprocess(name: str) -> dict[str, Any]:
    """What a checkpoint of ``name`` records for evaluation: the source's mean and std, and the
    bilinear views rsnet-edge trains and evaluates with (crop_pct 0.875, the paper's)."""
    pre = get(name).preprocess
    return {"mean": list(pre.mean), "std": list(pre.std), "crop_pct": 0.875}


# ------------------------------------------------------------------------------------ listing
def table_lines(arch_names, resolutions=(224, 192, 160, 128, 96), num_classes: int = 1000):
    """The lines of :func:`table`, one architecture at a time (each is built to be counted)."""
    from .flops import count_madds, human
    from .norms import norm_affine_params

    rs = [int(r) for r in resolutions]
    yield f"{'arch':<30} {'family':<18} {'params':>8} {'RS-Net':>8} " + " ".join(f"{r:>7}" for r in rs)
    for name in arch_names:
        spec = get(name)
        if not spec.available():
            yield f"{name:<30} {spec.family:<18} (needs pip install 'rsnet-edge[{spec.extra}]')"
            continue
        model = build(name, num_classes).eval()
        single = sum(p.numel() for p in model.parameters())
        rsnet = single + (len(rs) - 1) * norm_affine_params(model)
        madds = " ".join(f"{human(count_madds(model, r)):>7}" for r in rs)
        yield f"{name:<30} {spec.family:<18} {single / 1e6:>7.2f}M {rsnet / 1e6:>7.2f}M {madds}"
        if spec.paper is not None:
            paper = dict(spec.paper.madds)
            yield (f"{'  paper Table 2':<49} {spec.paper.single_params:>8} {spec.paper.rsnet_params:>8} "
                   + " ".join(f"{paper.get(r, '-'):>7}" for r in rs))


def table(arch_names, resolutions=(224, 192, 160, 128, 96), num_classes: int = 1000) -> str:
    """Parameters (single model, RS-Net = single + (S-1) x one BN set) and MAdds per resolution
    of each architecture, paper Table 2 beside where it has them."""
    return "\n".join(table_lines(arch_names, resolutions, num_classes))


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m rsnet_edge.archs",
                                 description="Every registered architecture: parameters and MAdds per "
                                             "resolution (paper Table 2 beside)")
    ap.add_argument("--arch", nargs="+", metavar="NAME", help="these only (default: every registered "
                    "name; timm:NAME for any timm model)")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[224, 192, 160, 128, 96])
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    archs = a.arch or list(ARCHS)
    for n in archs:
        get(n)                                 # an unknown name is refused before any work
    from tqdm import tqdm

    with tqdm(total=len(archs), desc="architectures", unit="arch", disable=a.no_progress, leave=False) as bar:
        for line in table_lines(archs, a.resolutions, a.num_classes):
            if not line.startswith(" ") and not line.startswith("arch "):
                bar.update(1)
            tqdm.write(line)
    return 0


if __name__ == "__main__":
    from .cli import run as _run
    raise SystemExit(_run(main))
