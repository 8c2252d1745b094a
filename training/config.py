"""The training configuration: ``training.train``'s command line, its per-architecture defaults and
their validation, and the same config built without a command line (``training.compare``).

A config is the ``argparse.Namespace`` of :func:`build_parser` after :func:`resolve_defaults`: every
option of ``python -m training.train --help`` by its dest name (``cfg.lr``, ``cfg.multi_crop``).
:func:`make_config` builds one from keyword options, :func:`parse_overrides` reads training flags
(only those given) from an argv list. The per-architecture recipe (paper 4.1 where it has one) is
the architecture registry's (:mod:`rsnet_edge.archs`), read through :func:`arch_recipe` only.
"""

from __future__ import annotations

import argparse

from rsnet_edge import archs
from rsnet_edge.models import DEFAULT_RESOLUTIONS, normalize_resolutions
from training.data import SCALE, crop_scale
from training.mred import MODES, RESOLUTION_LOSSES

DESCRIPTION = "Train an RS-Net: parallel multi-resolution training with MRED (paper 3, 4.1)."


# The fine-tune recipe (docs/byom.md): with --init, each of these flags left unset takes this value
# instead of the from-scratch default (FROM_SCRATCH, the paper's). An unset --lr is resolved by
# training.train once the data is known (finetune_lr): FINETUNE_LR per 256 images of batch, scaled
# linearly with --batch-size as the paper's lr is, and by steps / FINETUNE_FULL_LR_STEPS for a run
# of fewer steps (a short run must leave the top resolution where it was).
FINETUNE_RECIPE = {"epochs": 12, "warmup_epochs": 0.5, "resolution_loss": "mean", "mred": "none"}
FINETUNE_LR = 0.16
FINETUNE_FULL_LR_STEPS = 300
FROM_SCRATCH = {"warmup_epochs": 0.0, "resolution_loss": "sum", "mred": "full"}

# arguments that must agree between a checkpoint's run and the run resuming it
RESUME_KEYS = ("arch", "width_mult", "dropout", "crop_scale", "warmup_epochs", "resolution_loss",
               "head_lr_scale", "zero_init_residual",
               "resolutions", "mred", "multi_crop", "epochs", "batch_size", "lr",
               "weight_decay", "momentum", "max_steps_per_epoch", "seed", "views", "dtype",
               "teacher", "teacher_weight", "teacher_resolution")


def arch_names() -> list[str]:
    """The registered architectures (rsnet_edge.archs), sorted; ``--arch`` also takes ``timm:NAME``
    for any timm model built from BatchNorm."""
    return sorted(archs.names())


def arch_recipe(arch: str) -> tuple[float, float, int]:
    """``(lr at batch 256, weight decay, epochs)`` of ``arch``: its registry recipe (paper 4.1 for
    MobileNetV2 and the ResNets)."""
    try:
        r = archs.get(arch).recipe
    except ValueError as e:
        raise ValueError(f"--arch: {e}") from None
    return r.lr, r.weight_decay, r.epochs


def _arch(name: str) -> str:
    """``--arch`` type: a registered name or timm:NAME that can be built here."""
    try:
        return archs.check(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=DESCRIPTION)
    ap.add_argument("--arch", default="mobilenet_v2", type=_arch, metavar="NAME",
                    help="a registered architecture (python -m rsnet_edge.archs lists them) or "
                         "timm:NAME for a timm model built from BatchNorm (needs rsnet-edge[timm])")
    ap.add_argument("--width-mult", type=float, default=1.0,
                    help="width multiplier (architectures whose builder has one, e.g. MobileNetV2/V3)")
    ap.add_argument("--data", required=True, help="ImageFolder root with train/ and val/")
    ap.add_argument("--resolutions", type=int, nargs="+", default=list(DEFAULT_RESOLUTIONS))
    ap.add_argument("--mred", choices=MODES, help="full (Eq. 10; default from scratch), vanilla (Eq. 8), "
                    "none (Parallel; default with --init, where --teacher is the better teacher), "
                    "from_students (no ensemble teacher)")
    ap.add_argument("--multi-crop", action="store_true", help="independent crop per resolution (ablation)")
    ap.add_argument("--resolution-loss", choices=RESOLUTION_LOSSES,
                    help="sum: Eq. 2, the S per-resolution losses summed (paper; default from scratch); "
                         "mean: divided by S (the shared weights get about an individual model's "
                         "gradient; default with --init)")
    ap.add_argument("--crop-scale", type=float, default=SCALE[0], metavar="MIN",
                    help=f"RandomResizedCrop area range MIN-1 (default {SCALE[0]}, the paper's ImageNet "
                         f"recipe; larger keeps more of each object)")
    ap.add_argument("--warmup-epochs", type=float,
                    help="linear lr warmup over this many epochs before the cosine decay (default: 0 as "
                         f"the paper; {FINETUNE_RECIPE['warmup_epochs']:g} with --init)")
    ap.add_argument("--dropout", type=float, help="classifier dropout (architectures whose builder "
                    "has one; default the builder's, e.g. torchvision's 0.2 for MobileNetV2; the "
                    "paper's code uses none: --dropout 0)")
    ap.add_argument("--head-lr-scale", type=float, default=1.0, metavar="F",
                    help="the classifier's lr is F x --lr (default 1, the paper). Its input is 1280 "
                         "non-negative pooled features (norm ~17 at init): at small batches SGD on it "
                         "swings the logits of all images together; 0.1 lets short runs learn")
    ap.add_argument("--zero-init-residual", action="store_true",
                    help="start the last BN (every set) of each residual block at gamma 0, so each "
                         "block starts as the identity (torchvision's ResNet option, also for MobileNetV2)")
    ap.add_argument("--init", metavar="PATH", help="start from these weights: a torchvision-layout "
                    "single-model state dict (every BN set seeded from its BN) or an rsnet-edge "
                    "checkpoint (weights only; other resolutions mapped by BN interpolation); a "
                    "classifier of another size is re-initialised. Unset --lr, --epochs, "
                    "--warmup-epochs, --resolution-loss and --mred then take the fine-tune recipe's "
                    "values (printed first; docs/byom.md)")
    ap.add_argument("--teacher", metavar="PATH", help="distil from this frozen model (an rsnet-edge "
                    "checkpoint, or a torchvision-layout state dict of --arch with the run's classes), "
                    "run at its own resolution on the crop every view comes from (off by default)")
    ap.add_argument("--teacher-weight", type=float, default=1.0, metavar="W",
                    help="the teacher term sum_s KL(p_teacher || p_s) (divided by S with --resolution-loss "
                         "mean, as the cross-entropy) is added x W to the MRED loss (default 1)")
    ap.add_argument("--teacher-resolution", type=int, metavar="R",
                    help="the teacher's own resolution (default: a checkpoint's largest trained one; a "
                         "state dict's: the largest of --resolutions)")
    ap.add_argument("--epochs", type=int, help="default per architecture (paper 4.1); with --init the "
                    "fine-tune recipe's")
    ap.add_argument("--batch-size", type=int, default=256, help="global batch size (all processes)")
    ap.add_argument("--lr", type=float, help="default: paper lr x batch/256 (with --init: the fine-tune "
                    f"recipe's {FINETUNE_LR:g} x batch/256, x steps/{FINETUNE_FULL_LR_STEPS} for a run of "
                    f"fewer steps)")
    ap.add_argument("--weight-decay", type=float, help="default per architecture")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="intra-op CPU threads of each process (default: "
                    "torch's; 1 avoids OpenMP oversubscription on busy machines)")
    ap.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    ap.add_argument("--no-amp", action="store_true", help="fp32 on GPU too")
    ap.add_argument("--views", choices=("auto", "exact", "device"), default="auto",
                    help="exact: every view resized from the decoded crop in the workers (default on "
                         "CPU); device: crop rendered once at the largest resolution, smaller views "
                         "downsampled on the device (default on GPU)")
    ap.add_argument("--local-bn", action="store_true",
                    help="with several processes, per-process BN statistics (not synchronised)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="parameter dtype; float64 (CPU) is for checking exactness, e.g. DDP against "
                         "one process without float32 noise")
    ap.add_argument("--deterministic", action="store_true", help="deterministic algorithms (GPU)")
    ap.add_argument("--save-every", type=int, default=0, help="also checkpoint every K steps")
    ap.add_argument("--eval-every", type=int, default=1, metavar="K",
                    help="validate every K epochs and after the last one (0: after the last one only)")
    ap.add_argument("--resume", help="checkpoint with train_state to continue from, or 'auto' "
                    "(continue from --out if it holds an unfinished run)")
    ap.add_argument("--out", required=True, help="checkpoint path (.pt)")
    ap.add_argument("--force", action="store_true",
                    help="replace an existing --out checkpoint (refused otherwise, unless --resume)")
    ap.add_argument("--log", help="per-epoch JSON lines (default: <out>.log.jsonl)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def recipe_defaults(a: argparse.Namespace) -> dict:
    """``{dest: value}`` the fine-tune recipe gives to the flags ``a`` leaves unset (None), when
    ``a.init`` is given; ``{}`` for a from-scratch run (the paper's defaults). An unset lr stays
    None here (:func:`finetune_lr`, once the number of steps is known)."""
    if not getattr(a, "init", None):
        return {}
    return {k: v for k, v in FINETUNE_RECIPE.items() if getattr(a, k, None) is None}


def finetune_lr(batch_size: int, total_steps: int) -> float:
    """The fine-tune recipe's lr: ``FINETUNE_LR x batch/256 x min(1, steps / FINETUNE_FULL_LR_STEPS)``."""
    return FINETUNE_LR * batch_size / 256 * min(1.0, total_steps / FINETUNE_FULL_LR_STEPS)


def resolve_defaults(a: argparse.Namespace) -> argparse.Namespace:
    """Fill the per-architecture defaults in ``a`` (in place) and check every value; idempotent.
    With ``--init`` the unset flags of :data:`FINETUNE_RECIPE` take its values first."""
    for k, v in recipe_defaults(a).items():
        setattr(a, k, v)
    for k, v in FROM_SCRATCH.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    base_lr, wd, epochs = arch_recipe(a.arch)
    try:
        archs.check(a.arch)                        # timm:NAME needs timm here
    except ValueError as e:
        raise ValueError(f"--arch: {e}") from None
    a.resolutions = list(normalize_resolutions(a.resolutions))
    a.epochs = a.epochs if a.epochs is not None else epochs
    if a.lr is None and not a.init:   # with --init: the recipe's, by training.train (finetune_lr)
        a.lr = base_lr * a.batch_size / 256
    a.weight_decay = a.weight_decay if a.weight_decay is not None else wd
    a.log = a.log or str(a.out) + ".log.jsonl"
    if a.epochs < 1 or a.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    if a.save_every < 0:
        raise ValueError("--save-every must be >= 0")
    if a.eval_every < 0:
        raise ValueError(f"--eval-every must be >= 0, got {a.eval_every}")
    crop_scale(a.crop_scale)
    if a.warmup_epochs < 0:
        raise ValueError(f"--warmup-epochs must be >= 0, got {a.warmup_epochs}")
    spec = archs.get(a.arch)
    if a.dropout is None:
        a.dropout = spec.recipe.dropout if spec.dropout_arg else 0.0  # the builder's default
    if not a.head_lr_scale > 0:
        raise ValueError(f"--head-lr-scale must be > 0, got {a.head_lr_scale}")
    if not 0 <= a.dropout < 1:
        raise ValueError(f"--dropout must be in [0, 1), got {a.dropout}")
    archs.arch_args(a.arch, 1, dropout=a.dropout)   # a dropout the builder lacks is refused
    if not a.teacher_weight >= 0:
        raise ValueError(f"--teacher-weight must be >= 0, got {a.teacher_weight}")
    if a.teacher_resolution is not None:
        a.teacher_resolution = normalize_resolutions([a.teacher_resolution])[0]
        if not a.teacher:
            raise ValueError("--teacher-resolution is for --teacher")
    if a.teacher and a.multi_crop:
        raise ValueError("--teacher sees the one crop every view comes from: not with --multi-crop")
    return a


def _options(ap: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """dest -> action of every option of ``ap`` but --help, in the parser's order."""
    return {act.dest: act for act in ap._actions if not isinstance(act, argparse._HelpAction)}


def make_config(**options) -> argparse.Namespace:
    """A resolved, validated config without argv: the parser's defaults, then ``options`` by dest
    name (``data`` and ``out`` are required; ``lr=0.01``, ``multi_crop=True``, ...), then
    :func:`resolve_defaults`. Equal, key for key and in the same order, to
    ``resolve_defaults(build_parser().parse_args(argv))`` with the matching flags."""
    acts = _options(build_parser())
    unknown = [k for k in options if k not in acts]
    if unknown:
        raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
    missing = [f"--{k.replace('_', '-')}" for k, act in acts.items() if act.required and options.get(k) is None]
    if missing:
        raise ValueError(f"training option(s) {', '.join(missing)} required")
    cfg = argparse.Namespace(**{k: act.default for k, act in acts.items()})
    for k, v in options.items():
        if acts[k].choices is not None and v is not None:   # None: unset (the default's value)
            for x in (v if isinstance(v, (list, tuple)) else [v]):
                if x not in acts[k].choices:
                    raise ValueError(f"argument --{k.replace('_', '-')}: invalid choice: {x!r} "
                                     f"(choose from {', '.join(map(str, acts[k].choices))})")
        setattr(cfg, k, _plain(v))
    return resolve_defaults(cfg)


def parse_overrides(argv: list[str]) -> dict:
    """The training flags in ``argv`` as ``{dest: value}``, only those given (no defaults, none
    required). A flag the parser does not know exits as ``python -m training.train`` would (2)."""
    ap = build_parser()
    ap.usage = ap.format_usage().removeprefix("usage: ").rstrip("\n")  # the full parser's usage line
    for act in _options(ap).values():
        act.default, act.required = argparse.SUPPRESS, False
    return vars(ap.parse_args(argv))


def resume_args(a: argparse.Namespace) -> dict:
    """The :data:`RESUME_KEYS` values of a config, as a checkpoint stores and compares them."""
    return {k: _plain(getattr(a, k)) for k in RESUME_KEYS}


def _plain(v):
    return list(v) if isinstance(v, (list, tuple)) else v


def config_record(a: argparse.Namespace) -> dict:
    """The config as the checkpoint's ``train_args``: JSON-safe (other values as ``str``)."""
    return {k: (v if isinstance(v, (int, float, str, bool, list, type(None))) else str(v)) for k, v in vars(a).items()}
