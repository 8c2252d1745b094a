"""The lr schedule of training.train: linear warmup (--warmup-epochs), then cosine to 0."""

import math

import pytest

from training.train import lr_factor


def test_warmup_then_cosine():
    # 4 warmup steps of 10: 1/4, 2/4, 3/4, 4/4, then cosine over the remaining 6 steps to 0
    assert [lr_factor(s, 4, 10) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 10) == 1.0
    assert lr_factor(7, 4, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert lr_factor(10, 4, 10) == pytest.approx(0.0, abs=1e-12)


def test_no_warmup_is_the_papers_plain_cosine():
    for s in range(11):
        assert lr_factor(s, 0, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * s / 10)))
