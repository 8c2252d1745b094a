"""Invariants checked against references written HERE, never against another path of the code under test.

Each test derives its expected values independently: hand-computed numbers, a reference recipe written
in the test (PIL, plain torchvision modules, math), or a property. They exist because mutation testing
(issue 12) found bugs that tests comparing a code path with itself could not see:

| invariant                                                     | test                                      |
|---------------------------------------------------------------|-------------------------------------------|
| stored BN set k serves resolutions[k] (highest first), exactly | test_bn_set_by_value, test_bn_sets_match_plain_torchvision |
| BN interpolation = linear blend of the two nearest sets        | same two tests, at 1/4 and 3/4 points      |
| eval view = shorter side to round(r/crop_pct) (antialiased), centre crop, normalise | test_eval_preprocessing_matches_pil_recipe |
| predict: most likely first, top-k, softmax probabilities       | test_predict_order_and_topk                |
| evaluate: top-1 / top-5 and the Table 1 matrix (both builders) | test_evaluate_topk_and_table1, test_table1_matrix_from_per_image_hits |
| MRED from_students = Eq. 10 without the ensemble teacher       | test_mred_from_students                    |
| atomic writes: a crash mid-write leaves the old file, no temp  | test_crash_mid_write_keeps_old_file, test_crash_before_rename_keeps_old_file |
| runtime input (rsnet_edge.load) = PIL view with the checkpoint's mean, std, crop_pct; probabilities = softmax(model(view)) | test_runtime_input_and_probabilities_by_hand |
| BN fold: s = gamma / sqrt(var + eps), t = beta - mean * s; folded conv W * s, bias t + b * s | test_bn_fold_scale_and_shift_by_hand |

Issue 22 added the last two rows; the other hand references of that round sit with their subject:
test_int8.py (calibration), test_bench.py (ratios, p90), test_data.py (flip, sampler seeds).
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import models as tvm

from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD, save_checkpoint
from rsnet_edge.manifest import Manifest, atomic_write_bytes, sidecar_path, write_sidecar
from rsnet_edge.models import create_model, make_switchable, set_interpolation, to_single_resolution
from rsnet_edge.preprocess import eval_batch, eval_view

from helpers import pil_eval_view as _reference_view, softmax

RS = (64, 48, 40, 32)       # highest first, as stored; an even count: reversing moves every set


# =============================================================================== BN sets
# Set k of every BN is given a bias that names it; weight 0 makes the BN output exactly its bias, so
# the model's output IS the BN value it used. Values are not linear in resolution, so only the
# right blend of the right two neighbours gives the expected number.
SET_VALUE = {64: 1000.0, 48: 100.0, 40: 10.0, 32: 1.0}

# (input size, expected output): trained sizes give their own set's value; an untrained size between
# two trained ones gives (1 - u) * lower + u * upper with u = (r - lower_r) / (upper_r - lower_r)
BN_CASES = [
    (64, 1000.0),                       # highest trained
    (48, 100.0),
    (40, 10.0),
    (32, 1.0),                          # lowest trained
    (60, 0.75 * 1000 + 0.25 * 100),     # 3/4 of the way from 48 to 64: 775
    (52, 0.25 * 1000 + 0.75 * 100),     # 1/4 of the way from 48 to 64: 325
    (46, 0.75 * 100 + 0.25 * 10),       # 3/4 of the way from 40 to 48: 77.5
    (34, 0.25 * 10 + 0.75 * 1),         # 1/4 of the way from 32 to 40: 3.25
    (80, 1000.0),                       # above the range: nearest set unchanged
    (16, 1.0),                          # below the range: nearest set unchanged
]


def _value_model() -> nn.Module:
    """conv (zero) -> switchable BN -> global pool: outputs the BN bias of the set in use."""
    net = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten())
    model = make_switchable(net, RS)
    sd = model.state_dict()
    with torch.no_grad():
        sd["0.weight"].zero_()
        for k, r in enumerate(RS):               # the checkpoint layout: set k <-> resolutions[k]
            sd[f"1.bns.{k}.weight"].zero_()
            sd[f"1.bns.{k}.bias"].fill_(SET_VALUE[r])
            sd[f"1.bns.{k}.running_mean"].fill_(float(k))
            sd[f"1.bns.{k}.running_var"].fill_(1.0 + k)
    model.load_state_dict(sd)
    set_interpolation(model, True)
    return model.eval()


@pytest.mark.parametrize("r,want", BN_CASES)
def test_bn_set_by_value(r, want):
    model = _value_model()
    with torch.no_grad():
        out = model(torch.randn(1, 3, r, r))
        single = to_single_resolution(model, r)(torch.randn(1, 3, r, r))
    assert out.flatten().tolist() == pytest.approx([want, want], rel=1e-6)
    assert single.flatten().tolist() == pytest.approx([want, want], rel=1e-6)


def _blend(sd: dict, weights: dict[int, float]) -> dict:
    """A plain torchvision state dict from an RS-Net state dict: shared tensors copied, each BN the
    hand blend sum_k weights[k] * set k (k indexes the stored sets, highest resolution first)."""
    out = {}
    for key, v in sd.items():
        if ".bns." not in key:
            out[key] = v.clone()
            continue
        prefix, rest = key.split(".bns.", 1)
        k, leaf = rest.split(".", 1)
        name = f"{prefix}.{leaf}"
        if leaf == "num_batches_tracked":
            out[name] = v.clone()
        elif int(k) in weights:
            out[name] = out.get(name, torch.zeros_like(v)) + weights[int(k)] * v
    return out


@pytest.fixture(scope="module")
def rs_and_plain():
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", RS, num_classes=5, width_mult=0.35)
    g = torch.Generator().manual_seed(1)
    sd = model.state_dict()
    with torch.no_grad():                        # distinct sets: affine and statistics differ per set
        for key, v in sd.items():
            if ".bns." in key and v.is_floating_point():
                k = int(key.split(".bns.", 1)[1].split(".", 1)[0])
                if key.endswith("running_var"):
                    v.copy_(0.5 + torch.rand(v.shape, generator=g) * (k + 1))
                elif key.endswith("weight"):
                    v.copy_(1.0 + 0.3 * torch.randn(v.shape, generator=g))
                else:
                    v.copy_(0.3 * torch.randn(v.shape, generator=g) + 0.2 * k)
    model.load_state_dict(sd)
    set_interpolation(model, True)
    plain = tvm.mobilenet_v2(weights=None, num_classes=5, width_mult=0.35).eval()
    return model.eval(), sd, plain


# (input size, {stored set index: weight}) -- the hand blend of the two neighbours
PLAIN_CASES = [
    (64, {0: 1.0}), (48, {1: 1.0}), (40, {2: 1.0}), (32, {3: 1.0}),
    (60, {0: 0.75, 1: 0.25}), (52, {0: 0.25, 1: 0.75}), (34, {2: 0.25, 3: 0.75}),
    (72, {0: 1.0}), (24, {3: 1.0}),
]


@pytest.mark.parametrize("r,weights", PLAIN_CASES)
def test_bn_sets_match_plain_torchvision(rs_and_plain, r, weights):
    """The RS-Net at size r equals torchvision's MobileNetV2 holding the hand-made BN (all four of
    weight, bias, running mean and variance) -- and differs from the wrong set."""
    model, sd, plain = rs_and_plain
    x = torch.randn(2, 3, r, r, generator=torch.Generator().manual_seed(r))
    with torch.no_grad():
        got = model(x)
        plain.load_state_dict(_blend(sd, weights))
        want = plain(x)
        if len(weights) == 2:                    # the same two sets, weights swapped
            (a, wa), (b, wb) = weights.items()
            wrong = {a: wb, b: wa}
        else:                                    # the mirrored set (reversed mapping)
            wrong = {len(RS) - 1 - next(iter(weights)): 1.0}
        plain.load_state_dict(_blend(sd, wrong))
        other = plain(x)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - other).abs().max() > 1e-2        # the sets are distinct enough to tell apart


# ========================================================================= preprocessing
def _busy_image(w: int, h: int, seed: int = 0) -> Image.Image:
    """High-frequency content: a 1-pixel checkerboard, fine stripes and noise, per channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([((xx + yy) % 2) * 255,
                  (xx % 3 == 0) * 200 + rng.integers(0, 56, (h, w)),
                  rng.integers(0, 256, (h, w))], axis=-1)
    a[: h // 3, : w // 3] = 30                    # a flat corner: the crop offset matters too
    return Image.fromarray(a.astype(np.uint8), "RGB")


# (image size, resolution, crop_pct)
PRE_CASES = [((301, 203), 32, 0.5), ((203, 301), 40, 0.7), ((250, 180), 24, 1.0), ((180, 250), 32, 0.875)]


@pytest.mark.parametrize("size,r,crop_pct", PRE_CASES)
def test_eval_preprocessing_matches_pil_recipe(size, r, crop_pct):
    img = _busy_image(*size)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    want = _reference_view(img, r, crop_pct, mean, std)
    got = eval_view(img, r, mean, std, crop_pct).numpy()
    assert got.shape == (3, r, r)
    scale = np.asarray(std, np.float32)[:, None, None]           # compare in 0..1 pixel units
    diff = np.abs(got - want) * scale
    assert diff.max() <= 1.01 / 255 and diff.mean() <= 0.25 / 255, diff.max() * 255
    for layout, perm in (("NCHW", (0, 1, 2, 3)), ("NHWC", (0, 2, 3, 1))):
        batch = eval_batch([img, img], r, mean, std, crop_pct, layout)
        assert batch.dtype == np.float32
        np.testing.assert_allclose(batch, np.stack([want, want]).transpose(perm), atol=1.01 / 255 / min(std))


# ================================================================================ predict
LOGITS = [0.5, 3.0, -1.0, 2.0, 1.0]
NAMES = ["c0", "c1", "c2", "c3", "c4"]
ORDER = [1, 3, 4, 0, 2]                                   # by hand: 3.0 > 2.0 > 1.0 > 0.5 > -1.0


@pytest.fixture(scope="module")
def fixed_logits_ckpt(tmp_path_factory):
    """A real checkpoint whose model outputs LOGITS for any image (classifier weight 0, bias set)."""
    model = create_model("mobilenet_v2", (32,), num_classes=len(NAMES), width_mult=0.35)
    with torch.no_grad():
        model.classifier[-1].weight.zero_()
        model.classifier[-1].bias.copy_(torch.tensor(LOGITS))
    path = tmp_path_factory.mktemp("fixed") / "fixed.pt"
    save_checkpoint({"arch": "mobilenet_v2", "arch_args": {"width_mult": 0.35, "num_classes": len(NAMES)},
                     "resolutions": [32], "class_names": NAMES, "mean": list(IMAGENET_MEAN),
                     "std": list(IMAGENET_STD), "crop_pct": 0.875, "state_dict": model.state_dict()}, path)
    return path


@pytest.mark.parametrize("topk,want", [(1, ORDER[:1]), (3, ORDER[:3]), (5, ORDER), (10, ORDER)])
def test_predict_order_and_topk(fixed_logits_ckpt, topk, want):
    from rsnet_edge import load

    e = [math.exp(z) for z in LOGITS]
    prob = [v / sum(e) for v in e]
    clf = load(fixed_logits_ckpt)
    imgs = [_busy_image(40, 40, 1), _busy_image(50, 36, 2)]
    out = clf.predict(imgs, topk=topk)
    assert len(out) == 2
    for row in out:
        assert [n for n, _ in row] == [NAMES[i] for i in want]
        assert [p for _, p in row] == pytest.approx([prob[i] for i in want], abs=1e-5)


# ================================================================ the runtime's input (issue 22)
# A checkpoint whose mean and std differ per channel and from each other (swapping them changes
# every input value), served by rsnet_edge.load with crop_pct 1.0 (no crop) and 0.5 (half the
# resized side). The reference is written here: the view by PIL/numpy (helpers.pil_eval_view, never
# rsnet_edge.preprocess), the probabilities softmax(model(that view)) with the torch model the
# checkpoint was saved from.
RT_MEAN, RT_STD = (0.2, 0.5, 0.7), (0.6, 0.3, 0.1)
RT_RS = (40, 32)
RT_NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module", params=[1.0, 0.5], ids=["crop_pct=1.0", "crop_pct=0.5"])
def runtime_ckpt(request, tmp_path_factory):
    """(checkpoint path, the eval-mode torch model saved in it, its crop_pct). BN statistics are
    recalibrated on random inputs at each resolution so activations neither vanish nor explode, and
    the classifier spreads the probabilities (no class near 0 or 1 everywhere): a wrong input
    changes them by tenths."""
    crop_pct = request.param
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", RT_RS, num_classes=len(RT_NAMES), width_mult=0.35)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.train()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None                       # cumulative average
        for r in RT_RS:
            model(torch.randn(8, 3, r, r, generator=g))
        model.eval()
        model.classifier[-1].weight.normal_(0, 0.05, generator=g)
    path = tmp_path_factory.mktemp("runtime") / f"crop{crop_pct}.pt"
    save_checkpoint({"arch": "mobilenet_v2", "arch_args": {"width_mult": 0.35, "num_classes": len(RT_NAMES)},
                     "resolutions": list(RT_RS), "class_names": RT_NAMES, "mean": list(RT_MEAN),
                     "std": list(RT_STD), "crop_pct": crop_pct, "state_dict": model.state_dict()}, path)
    return path, model, crop_pct


@pytest.mark.parametrize("r", RT_RS)
def test_runtime_input_and_probabilities_by_hand(runtime_ckpt, r):
    """``Classifier.preprocess`` gives the PIL/numpy view with the checkpoint's mean, std and
    crop_pct (in that order), and ``predict_proba`` / ``predict`` give softmax(model(that view))."""
    from rsnet_edge import load

    path, model, crop_pct = runtime_ckpt
    imgs = [_busy_image(301, 203, 3), _busy_image(203, 301, 4), _busy_image(120, 120, 5)]
    want = np.stack([_reference_view(im, r, crop_pct, RT_MEAN, RT_STD) for im in imgs])
    clf = load(path)
    assert clf.manifest.input.layout == "NCHW"
    got = clf.preprocess(imgs, r)
    assert got.shape == want.shape and got.dtype == np.float32
    diff = np.abs(got - want) * np.asarray(RT_STD, np.float32)[None, :, None, None]   # 0..1 pixel units
    assert diff.max() <= 1.01 / 255 and diff.mean() <= 0.25 / 255, diff.max() * 255
    with torch.no_grad():
        p_want = softmax(model(torch.from_numpy(want)).numpy())
    assert p_want.max() < 0.999 and (p_want.max(1) - np.sort(p_want, 1)[:, -2]).min() > 1e-3  # clear tops
    np.testing.assert_allclose(clf.predict_proba(imgs, r), p_want, atol=1e-4)
    clf.set_resolution(r)
    out = clf.predict(imgs, topk=3)
    for row, p in zip(out, p_want):
        order = np.argsort(-p)[:3]
        assert [n for n, _ in row] == [RT_NAMES[i] for i in order]
        assert [q for _, q in row] == pytest.approx(p[order].tolist(), abs=1e-4)


# ============================================================================ evaluation
# 8 images, 6 classes, 3 resolutions. RANKS[r][i] is where image i's true class sits in the model's
# ranking at resolution r (1 = top). Expected figures below are counted by hand from this table.
EVAL_RS = [48, 40, 32]
RANKS = {48: [1, 1, 1, 1, 2, 2, 6, 5],
         40: [1, 2, 2, 2, 1, 6, 6, 3],
         32: [2, 1, 6, 3, 1, 1, 2, 2]}
TARGETS = [0, 5, 2, 3, 1, 4, 0, 2]
WANT_METRICS = {"48": {"top1": 50.0, "top5": 87.5}, "40": {"top1": 25.0, "top5": 75.0},
                "32": {"top1": 37.5, "top5": 87.5}}
# Table 1: row = wrong at, column = right at; right-at sets: 48 {0,1,2,3}, 40 {0,4}, 32 {1,4,5}
WANT_MATRIX = {"48": {"40": 12.5, "32": 25.0},          # 48-wrong: {4,5,6,7}; 40-right among: {4}
               "40": {"48": 37.5, "32": 25.0},          # 40-wrong: {1,2,3,5,6,7}
               "32": {"48": 37.5, "40": 12.5}}          # 32-wrong: {0,2,3,6,7}


def _logits_with_rank(target: int, rank: int, classes: int = 6) -> torch.Tensor:
    order = [c for c in range(classes) if c != target]
    order.insert(rank - 1, target)                       # order[j] gets the (j+1)-th highest score
    z = torch.empty(classes)
    for j, c in enumerate(order):
        z[c] = float(classes - j)
    return z


class _TableModel(nn.Module):
    """Returns the logits of the table for (input size, image id); the id is the input's value."""

    def __init__(self):
        super().__init__()
        self.table = {r: torch.stack([_logits_with_rank(t, k) for t, k in zip(TARGETS, RANKS[r])])
                      for r in EVAL_RS}

    def forward(self, x):
        return self.table[x.shape[-1]][x[:, 0, 0, 0].long()]


def _loader():
    from training.data import collate_views

    items = [([torch.full((1, r, r), float(i)) for r in EVAL_RS], TARGETS[i]) for i in range(8)]
    return [collate_views(items[:3]), collate_views(items[3:5] + [None]), collate_views(items[5:])]


def test_evaluate_topk_and_table1():
    from training.evaluate import evaluate

    res = evaluate(_TableModel(), _loader(), EVAL_RS, progress=False)
    assert res.count == 8 and res.skipped == 1
    for r, want in WANT_METRICS.items():
        assert res.metrics[r] == pytest.approx(want), r
    got = res.matrix()
    assert set(got) == set(WANT_MATRIX)
    for w in WANT_MATRIX:
        assert got[w] == pytest.approx(WANT_MATRIX[w]), w


def test_table1_matrix_from_per_image_hits():
    from training.report import matrix_from

    correct = {str(r): [int(k == 1) for k in RANKS[r]] for r in EVAL_RS}
    got = matrix_from(correct, EVAL_RS)
    assert set(got) == set(WANT_MATRIX)
    for w in WANT_MATRIX:
        assert got[w] == pytest.approx(WANT_MATRIX[w]), w


# ================================================================================== MRED
def test_mred_from_students():
    """Eq. 10 without the ensemble teacher: every higher-resolution prediction teaches every lower
    one, 2/S * sum_{1 <= t < s <= S} KL(p_t || p_s) (S(S-1)/2 pairs, scaled as Eq. 10 scales its
    S(S+1)/2 pairs by 2/(S+1)); teachers detached, KL batch-averaged. cls and ens are unchanged."""
    from training.mred import mred_loss

    Z = [[[1.5, -0.5, 0.2], [0.0, 1.0, -1.0]],          # S = 3 resolutions (highest first)
         [[0.3, 0.8, -0.4], [2.0, -0.3, 0.1]],
         [[-1.0, 0.5, 1.2], [0.4, 0.4, -0.8]]]
    Y, A = [2, 0], [0.3, -0.2, 0.1]
    S, N = 3, 2

    def sm(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    def kl(zt, zs):
        return sum(a * math.log(a / b) for a, b in zip(sm(zt), sm(zs)))

    pairs = [(0, 1), (0, 2), (1, 2)]
    dis = 2 / S * sum(sum(kl(Z[t][i], Z[s][i]) for i in range(N)) / N for t, s in pairs)
    cls = sum(-math.log(sm(Z[s][i])[Y[i]]) for s in range(S) for i in range(N)) / N
    w = sm(A)
    z0 = [[sum(w[s] * Z[s][i][c] for s in range(S)) for c in range(3)] for i in range(N)]
    ens = sum(-math.log(sm(z0[i])[Y[i]]) for i in range(N)) / N

    logits = [torch.tensor(z, requires_grad=True) for z in Z]
    out = mred_loss(logits, torch.tensor(Y), torch.tensor(A, requires_grad=True), "from_students")
    assert out["dis"].item() == pytest.approx(dis, rel=1e-5)
    assert out["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert out["ens"].item() == pytest.approx(ens, rel=1e-5)
    assert out["total"].item() == pytest.approx(cls + ens + dis, rel=1e-5)
    # the highest resolution only teaches (no ensemble above it): dis gives it no gradient
    g = torch.autograd.grad(out["dis"], logits, allow_unused=True)
    assert (g[0] is None or g[0].abs().max() == 0) and g[2].abs().max() > 0


# ================================================================ BN fold (issue 22)
# A BN with tiny (and zero) running variances and a large eps: sqrt(var) and sqrt(var + eps) differ
# by factors, not by rounding. Expected values by hand: s = gamma / sqrt(var + eps),
# t = beta - mean * s; the folded conv is W * s (per output channel) with bias t (+ its bias * s).
FOLD_GAMMA = [1.5, -2.0, 0.5, 1.0]
FOLD_BETA = [0.1, -0.3, 0.0, 2.0]
FOLD_MEAN = [0.5, -1.0, 0.25, 0.0]
FOLD_VAR = [1e-6, 0.0, 4e-4, 1.0]
FOLD_EPS = 1e-3


def _fold_bn() -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(4, eps=FOLD_EPS).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(FOLD_GAMMA))
        bn.bias.copy_(torch.tensor(FOLD_BETA))
        bn.running_mean.copy_(torch.tensor(FOLD_MEAN))
        bn.running_var.copy_(torch.tensor(FOLD_VAR))
    return bn


def _hand_scale_shift() -> tuple[list[float], list[float]]:
    s = [g / math.sqrt(v + FOLD_EPS) for g, v in zip(FOLD_GAMMA, FOLD_VAR)]
    return s, [b - m * k for b, m, k in zip(FOLD_BETA, FOLD_MEAN, s)]


def test_bn_fold_scale_and_shift_by_hand():
    from converters.prepare import bn_scale_shift, encode

    s, t = _hand_scale_shift()                  # e.g. s[0] = 1.5 / sqrt(0.001001) = 47.4, not 1.5 / 0.001
    got_s, got_t = bn_scale_shift(_fold_bn())
    assert got_s.tolist() == pytest.approx(s, rel=1e-6)
    assert got_t.tolist() == pytest.approx(t, rel=1e-6, abs=1e-6)
    # the folded conv (encode with the conv in `folds`) and the shared-conv affine form
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), _fold_bn()).eval()
    w, b = net[0].weight.detach().clone(), net[0].bias.detach().clone()
    folded = encode(net, {"0"})
    want_w = w * torch.tensor(s).reshape(-1, 1, 1, 1)
    want_b = torch.tensor(t) + b * torch.tensor(s)
    torch.testing.assert_close(folded[0].weight.detach(), want_w, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(folded[0].bias.detach(), want_b, rtol=1e-6, atol=1e-6)
    affine = encode(net, set())
    assert torch.equal(affine[0].weight, w)                                # the conv stays shared
    torch.testing.assert_close(affine[1].conv.weight.detach().flatten(), torch.tensor(s), rtol=1e-6, atol=0)
    torch.testing.assert_close(affine[1].conv.bias.detach(), torch.tensor(t), rtol=1e-6, atol=1e-6)


# ========================================================================= atomic writes
def _manifest(n_classes: int) -> Manifest:
    from pathlib import Path

    m = Manifest.from_json((Path(__file__).parent / "data" / "manifest_fixture.json").read_text())
    m.class_names = [f"class_{i:06d}" for i in range(n_classes)]
    return m


# (name, write(path, big): writes OLD (small) when big is False, NEW (about 1 MB) when True;
#  the file it writes for a target path)
WRITERS = [
    ("atomic_write_bytes", lambda p, big: atomic_write_bytes(p, (b"N" if big else b"old") * (1 << 20 if big else 1)),
     lambda p: p),
    ("save_checkpoint", lambda p, big: save_checkpoint({"w": torch.arange(300_000 if big else 4, dtype=torch.float32)}, p),
     lambda p: p),
    ("write_sidecar", lambda p, big: write_sidecar(_manifest(60_000 if big else 3), p), sidecar_path),
]


@contextlib.contextmanager
def _file_size_limit(n: int):
    """The disk 'fills up' after n bytes of any file (RLIMIT_FSIZE; SIGXFSZ ignored so the write
    fails with EFBIG): a real crash in the middle of writing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def _run_write(tmp_path, write, target_of, crash):
    target = target_of(tmp_path / "out.bin")
    write(tmp_path / "out.bin", False)
    old = target.read_bytes()
    with crash(), pytest.raises(BaseException) as info:
        write(tmp_path / "out.bin", True)
    assert not isinstance(info.value, AssertionError)
    return target, old


@pytest.mark.parametrize("name,write,target_of", WRITERS, ids=[w[0] for w in WRITERS])
def test_crash_mid_write_keeps_old_file(tmp_path, name, write, target_of):
    target, old = _run_write(tmp_path, write, target_of, lambda: _file_size_limit(64 * 1024))
    assert target.read_bytes() == old, f"{name}: the old file was damaged by a failed write"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name], "temp file left behind"
    write(tmp_path / "out.bin", True)                 # and without the crash the new file lands whole
    assert len(target.read_bytes()) > 64 * 1024
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("name,write,target_of", WRITERS, ids=[w[0] for w in WRITERS])
def test_crash_before_rename_keeps_old_file(tmp_path, monkeypatch, name, write, target_of):
    import os

    def boom(*a, **k):
        raise KeyboardInterrupt                       # Ctrl-C between the write and the rename

    @contextlib.contextmanager
    def crash():
        with monkeypatch.context() as m:
            m.setattr(os, "replace", boom)
            m.setattr(os, "rename", boom)
            yield

    target, old = _run_write(tmp_path, write, target_of, crash)
    assert target.read_bytes() == old, f"{name}: the old file was replaced before the rename"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name], "temp file left behind"
