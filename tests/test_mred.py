"""MRED loss terms against hand computations, and gradient routing (paper Eq. 2, 5-10)."""

import math

import pytest
import torch

from training.mred import mred_loss


def _softmax(v):
    e = [math.exp(x) for x in v]
    return [x / sum(e) for x in e]


def _ce(z, y):
    return -math.log(_softmax(z)[y])


def _kl(zt, zs):
    pt, ps = _softmax(zt), _softmax(zs)
    return sum(a * math.log(a / b) for a, b in zip(pt, ps))


# two samples, three classes, S = 3 resolutions (highest first)
Z = [[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]],
     [[1.0, 1.0, 0.0], [-0.5, 0.0, 1.5]],
     [[0.0, 2.0, 1.0], [0.3, -0.2, 0.1]]]
Y = [0, 2]
A = [0.2, -0.1, 0.4]


def _hand():
    S, N = len(Z), len(Y)
    cls = sum(sum(_ce(Z[s][i], Y[i]) for i in range(N)) / N for s in range(S))
    w = _softmax(A)
    z0 = [[sum(w[s] * Z[s][i][c] for s in range(S)) for c in range(3)] for i in range(N)]
    ens = sum(_ce(z0[i], Y[i]) for i in range(N)) / N
    chain = [z0] + Z
    van = sum(sum(_kl(z0[i], Z[s][i]) for i in range(N)) / N for s in range(S))
    full = 2 / (S + 1) * sum(sum(_kl(chain[t][i], chain[s][i]) for i in range(N)) / N
                             for t in range(S) for s in range(t + 1, S + 1))
    return cls, ens, van, full


def _tensors():
    logits = [torch.tensor(z, requires_grad=True) for z in Z]
    return logits, torch.tensor(Y), torch.tensor(A, requires_grad=True)


@pytest.mark.parametrize("mode", ["full", "vanilla", "none"])
def test_terms_match_hand_computation(mode):
    cls, ens, van, full = _hand()
    logits, y, alpha = _tensors()
    out = mred_loss(logits, y, alpha, mode)
    assert out["cls"].item() == pytest.approx(cls, rel=1e-5)
    if mode == "none":
        assert out["ens"].item() == 0 and out["dis"].item() == 0
        assert out["total"].item() == pytest.approx(cls, rel=1e-5)
        return
    assert out["ens"].item() == pytest.approx(ens, rel=1e-5)
    want_dis = full if mode == "full" else van
    assert out["dis"].item() == pytest.approx(want_dis, rel=1e-5)
    assert out["total"].item() == pytest.approx(cls + ens + want_dis, rel=1e-5)


def test_alpha_gets_gradient_from_ens_only():
    logits, y, alpha = _tensors()
    out = mred_loss(logits, y, alpha, "full")
    g_ens = torch.autograd.grad(out["ens"], alpha, retain_graph=True)[0]
    assert g_ens.abs().sum() > 0
    for term in ("cls", "dis"):
        g = torch.autograd.grad(out[term], alpha, retain_graph=True, allow_unused=True)[0]
        assert g is None or g.abs().sum() == 0, term
    # and ens moves no network output: logits get no gradient from it
    g_logits = torch.autograd.grad(out["ens"], logits, allow_unused=True)
    assert all(g is None or g.abs().sum() == 0 for g in g_logits)


def test_no_gradient_flows_into_a_teacher():
    """In full MRED the highest resolution teaches the others but is taught only by the ensemble
    (which is detached), so dis must give z_1's... every pair's teacher side no gradient: check with
    KL terms isolated — the gradient of dis w.r.t. z_s equals that of its terms as a student."""
    logits, y, alpha = _tensors()
    out = mred_loss(logits, y, alpha, "full")
    g = torch.autograd.grad(out["dis"], logits)
    # hand gradient: d/dz_s of sum over teachers t<s of KL(p_t || p_s) = n_teachers * p_s - sum_t p_t,
    # batch-averaged and scaled by 2/(S+1); teachers contribute nothing
    S, N = len(Z), len(Y)
    w = _softmax(A)
    z0 = [[sum(w[s] * Z[s][i][c] for s in range(S)) for c in range(3)] for i in range(N)]
    chain = [z0] + Z
    for s in range(S):
        for i in range(N):
            ps = _softmax(Z[s][i])
            teachers = [_softmax(chain[t][i]) for t in range(s + 1)]
            want = [2 / (S + 1) * (len(teachers) * ps[c] - sum(pt[c] for pt in teachers)) / N for c in range(3)]
            assert g[s][i].tolist() == pytest.approx(want, abs=1e-6)


def test_bad_arguments():
    logits, y, alpha = _tensors()
    with pytest.raises(ValueError, match="mode"):
        mred_loss(logits, y, alpha, "bogus")
    with pytest.raises(ValueError, match="alpha"):
        mred_loss(logits, y, alpha[:2], "full")


@pytest.mark.parametrize("mode", ["full", "vanilla", "none"])
def test_mean_resolution_loss_divides_cls_and_dis_by_s(mode):
    cls, ens, van, full = _hand()
    S = len(Z)
    logits, y, alpha = _tensors()
    out = mred_loss(logits, y, alpha, mode, resolution_loss="mean")
    assert out["cls"].item() == pytest.approx(cls / S, rel=1e-5)
    want_dis = {"full": full, "vanilla": van, "none": 0.0}[mode] / S
    assert out["dis"].item() == pytest.approx(want_dis, rel=1e-5, abs=1e-9)
    want_ens = 0.0 if mode == "none" else ens  # the ensemble term moves alpha only: not rescaled
    assert out["total"].item() == pytest.approx(cls / S + want_ens + want_dis, rel=1e-5)
    with pytest.raises(ValueError, match="resolution loss"):
        mred_loss(logits, y, alpha, mode, resolution_loss="max")


# --------------------------------------------------------------- --teacher (issue 18, item 7)
T = [[1.5, -0.5, 0.2], [0.0, 0.4, 2.0]]   # a frozen teacher's logits on the same two images


@pytest.mark.parametrize("mode,resolution_loss,weight", [("full", "sum", 1.0), ("full", "mean", 1.0),
                                                          ("none", "mean", 0.5), ("vanilla", "sum", 2.0)])
def test_teacher_term_matches_hand_computation(mode, resolution_loss, weight):
    cls, ens, van, full = _hand()
    S, N = len(Z), len(Y)
    per = 1 / S if resolution_loss == "mean" else 1.0
    tea = per * sum(sum(_kl(T[i], Z[s][i]) for i in range(N)) / N for s in range(S))
    logits, y, alpha = _tensors()
    out = mred_loss(logits, y, alpha, mode, resolution_loss, teacher_logits=torch.tensor(T),
                    teacher_weight=weight)
    assert out["tea"].item() == pytest.approx(tea, rel=1e-5)
    rest = {"full": cls * per + ens + full * per, "vanilla": cls * per + ens + van * per, "none": cls * per}[mode]
    assert out["total"].item() == pytest.approx(rest + weight * tea, rel=1e-5)
    without = mred_loss(*_tensors()[:1], y, alpha, mode, resolution_loss)
    assert without["tea"].item() == 0 and without["total"].item() == pytest.approx(rest, rel=1e-5)


def test_teacher_gets_no_gradient_and_teaches_every_resolution():
    """The teacher's logits (as if from a model with requires_grad) get no gradient; each student
    z_s gets the hand gradient of KL(p_T || p_s): (p_s - p_T) / N."""
    logits, y, alpha = _tensors()
    teacher = torch.tensor(T, requires_grad=True)
    out = mred_loss(logits, y, alpha, "none", teacher_logits=teacher)
    g = torch.autograd.grad(out["tea"], logits + [teacher], allow_unused=True)
    assert g[-1] is None or g[-1].abs().sum() == 0
    N = len(Y)
    for s in range(len(Z)):
        for i in range(N):
            want = [(ps - pt) / N for ps, pt in zip(_softmax(Z[s][i]), _softmax(T[i]))]
            assert g[s][i].tolist() == pytest.approx(want, abs=1e-6)
