"""Training views come from ONE crop and flip; corrupt images are skipped; built-in data is deterministic."""

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from rsnet_edge.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from training.data import TrainViews, collate_views, train_dataset, val_dataset
from training.synthetic import generate, make_image

RS = [96, 64, 32]


def _err(views):
    """Mean abs difference between the low-res view and the high-res view downsampled to it."""
    hi, lo = views[0], views[-1]
    down = F.interpolate(hi[None], size=lo.shape[-2:], mode="bilinear", antialias=True, align_corners=False)[0]
    return (down - lo).abs().mean().item()


def _asymmetric_image():
    img = make_image("arrow", 7, size=160)
    return img


def test_all_views_come_from_the_same_crop_and_flip():
    img = _asymmetric_image()
    single = TrainViews(RS, IMAGENET_MEAN, IMAGENET_STD, multi_crop=False)
    multi = TrainViews(RS, IMAGENET_MEAN, IMAGENET_STD, multi_crop=True)
    same, diff = [], []
    for seed in range(20):
        torch.manual_seed(seed)
        v = single(img)
        assert [t.shape[-1] for t in v] == RS
        same.append(_err(v))
        torch.manual_seed(seed)
        diff.append(_err(multi(img)))
    # a downsampled high-resolution view matches the low-resolution view of the same crop
    assert max(same) < 0.08, same
    # independent crops (the ablation) do not
    assert sorted(diff)[len(diff) // 2] > 4 * max(same), (same, diff)


def test_flip_is_shared():
    img = _asymmetric_image()
    tv = TrainViews(RS, IMAGENET_MEAN, IMAGENET_STD)
    flips = set()
    for seed in range(12):
        torch.manual_seed(seed)
        crops = tv.crops(img)
        assert len({c for c in crops}) == 1  # the same Crop (box and flip) for every resolution
        flips.add(crops[0].flip)
    assert flips == {True, False}


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    root = generate(tmp_path / "ds", num_classes=3, train_per_class=4, val_per_class=2, size=64, progress=False)
    bad = root / "train" / "disc" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / "train" / "ring" / "truncated.jpg").write_bytes((root / "train" / "ring" / "ring_00000.jpg").read_bytes()[:50])
    ds = train_dataset(root, [48, 32], IMAGENET_MEAN, IMAGENET_STD)
    assert len(ds) == 14
    loader = DataLoader(ds, batch_size=5, collate_fn=collate_views)
    seen = skipped = 0
    for views, target, bad_n in loader:
        skipped += bad_n
        if views is not None:
            assert views[0].shape[1:] == (3, 48, 48) and views[1].shape[1:] == (3, 32, 32)
            seen += len(target)
    assert (seen, skipped) == (12, 2)


def test_validation_views_and_class_order(tmp_path):
    root = generate(tmp_path / "ds", num_classes=3, train_per_class=2, val_per_class=2, size=64, progress=False)
    tr = train_dataset(root, [48], IMAGENET_MEAN, IMAGENET_STD)
    va = val_dataset(root, [48, 32], IMAGENET_MEAN, IMAGENET_STD, 0.875, tr.classes)
    views, target = va[0]
    assert [v.shape for v in views] == [(3, 48, 48), (3, 32, 32)]
    assert va.classes == tr.classes == sorted(tr.classes)


def test_builtin_dataset_is_deterministic_and_image_folder_shaped(tmp_path):
    a = generate(tmp_path / "a", num_classes=10, train_per_class=2, val_per_class=1, size=128, seed=3, progress=False)
    b = generate(tmp_path / "b", num_classes=10, train_per_class=2, val_per_class=1, size=128, seed=3, progress=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.jpg"))
    assert len(files_a) == 30 and len({p.parts[1] for p in files_a}) == 10
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.jpg"))
    for p in files_a:
        assert (a / p).read_bytes() == (b / p).read_bytes()
    with Image.open(a / files_a[0]) as im:
        assert im.size == (128, 128)
    # a different seed gives different images
    c = generate(tmp_path / "c", num_classes=10, train_per_class=2, val_per_class=1, size=128, seed=4, progress=False)
    assert (a / files_a[0]).read_bytes() != (c / files_a[0]).read_bytes()


def test_crop_scale_bounds_the_crop_area():
    from training.data import crop_scale, draw_crop
    import pytest
    img = make_image("disc", 3, size=160)
    for lo in (0.08, 0.35, 0.9):
        areas = []
        for seed in range(50):
            torch.manual_seed(seed)
            c = draw_crop(img, crop_scale(lo))
            areas.append(c.height * c.width / (160 * 160))
        assert min(areas) >= lo * 0.97, (lo, min(areas))  # integer box rounding
    assert min(areas) > 0.8
    with pytest.raises(ValueError, match="--crop-scale"):
        crop_scale(0)


# ------------------------------------------------------------------ by hand (issue 22)
def test_flip_is_horizontal_against_pil_mirrored_by_hand():
    """A half-white image (left half white, right half black): a crop with ``flip`` is the PIL
    resize of the same box mirrored left-right by hand (numpy ``[:, ::-1]``), white on the right;
    without ``flip`` it is the PIL resize itself. A vertical flip would leave it unchanged."""
    from dataclasses import replace

    import numpy as np

    from training.data import Crop, render_crop
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :30] = 255
    img = Image.fromarray(a, "RGB")
    box = Crop(top=4, left=6, height=30, width=36, flip=False)     # x 6..42, y 4..34: white x < 30
    plain = np.asarray(img.crop((6, 4, 42, 34)).resize((24, 24), Image.BILINEAR), dtype=np.int16)
    mirrored = plain[:, ::-1]
    got = np.asarray(render_crop(img, box, 24), dtype=np.int16)
    got_flip = np.asarray(render_crop(img, replace(box, flip=True), 24), dtype=np.int16)
    assert np.abs(got - plain).max() <= 1
    assert np.abs(got_flip - mirrored).max() <= 1
    assert (got_flip[:, -1] == 255).all() and (got_flip[:, 0] == 0).all()   # white moved to the right
    assert np.abs(got_flip - plain).max() == 255


def test_sampler_seeds_differ_between_epochs_and_equal_a_hand_seed_sequence():
    """The augmentation seed of sample i in epoch e is SeedSequence([seed, e, i])'s first 64-bit
    word >> 1 (the documented rule, written here with numpy), for every rank; so the same image gets
    another crop and flip in the next epoch."""
    import numpy as np

    from training.data import GlobalBatchSampler, sample_seed

    def hand(seed, epoch, i):
        return int(np.random.SeedSequence([seed, epoch, i]).generate_state(1, np.uint64)[0] >> 1)

    by_epoch = {}
    for world in (1, 2):
        for rank in range(world):
            sampler = GlobalBatchSampler(10, 4, rank=rank, world=world, seed=7)
            for epoch in (0, 1, 2):
                sampler.set_epoch(epoch)
                pairs = [p for batch in sampler for p in batch]
                assert pairs and all(s == hand(7, epoch, i) for i, s in pairs), (world, rank, epoch)
                by_epoch.setdefault(epoch, {}).update(pairs)
    for e, f in ((0, 1), (1, 2)):
        common = set(by_epoch[e]) & set(by_epoch[f])
        assert common and all(by_epoch[e][i] != by_epoch[f][i] for i in common)
    assert sample_seed(7, 1, 3) == hand(7, 1, 3) != hand(7, 0, 3)


def test_teacher_view_is_the_same_crop_at_its_own_resolution():
    """``extra`` (the teacher's resolution, training.train --teacher) is rendered after the S views
    from the SAME crop and flip: it equals that crop rendered at its resolution alone, it matches
    the training views, and another crop would not."""
    img = _asymmetric_image()
    with_teacher = TrainViews([64, 32], IMAGENET_MEAN, IMAGENET_STD, extra=[96])
    alone = TrainViews([96], IMAGENET_MEAN, IMAGENET_STD)
    same, other = [], []
    for seed in range(12):
        torch.manual_seed(seed)
        v = with_teacher(img)
        assert [t.shape[-1] for t in v] == [64, 32, 96]
        torch.manual_seed(seed)
        assert torch.equal(v[-1], alone(img)[0])
        same.append(_err([v[-1], v[0]]))                 # 96 downsampled ~ the 64 view of the same crop
        torch.manual_seed(seed + 100)
        other.append(_err([alone(img)[0], v[0]]))        # another image's crop does not
    assert max(same) < 0.08, same
    assert sorted(other)[len(other) // 2] > 4 * max(same), (same, other)
    try:
        TrainViews([64, 32], IMAGENET_MEAN, IMAGENET_STD, multi_crop=True, extra=[96])
    except ValueError as e:
        assert "--multi-crop" in str(e)
    else:
        raise AssertionError("a teacher view with --multi-crop must be refused")
