"""Regenerate tests/data/preprocess_vectors.json: Python's eval preprocessing on a few small images.

Both suites read the file: tests/test_android_core.py re-runs rsnet_edge.preprocess.eval_view on
every image and checks the stored tensor, and the Java PreprocessVectorsTest runs
org.rsnetedge.core.Preprocess.toTensor on the same pixels; each must stay within 1/255 per element
on the 0-1 scale (i.e. |a - b| * std <= 1/255 after mean/std).

Images are stored as pixel arrays (row-major, R G B per pixel, 0..255) so that no decoder is
involved; they are made here by fixed rules (seeded numpy noise), e.g. a 4:3 smooth gradient, a
4:3 noisy image, a portrait checkerboard with noise, and a small image that is upscaled.

    python tests/data/make_preprocess_vectors.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).with_name("preprocess_vectors.json")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
TOLERANCE = 1 / 255


def images() -> dict[str, np.ndarray]:
    """name -> HxWx3 uint8."""
    rng = np.random.default_rng(20261124)
    y, x = np.mgrid[0:48, 0:64]
    smooth = np.stack([x * 4, y * 5, (x + y) * 2], -1) % 256
    noisy = rng.integers(0, 256, (36, 48, 3))
    yy, xx = np.mgrid[0:50, 0:30]
    checker = ((yy // 3 + xx // 3) % 2 * 200 + 20)[..., None] + rng.integers(-20, 21, (50, 30, 3))
    tiny = rng.integers(0, 256, (13, 10, 3))
    return {"smooth_64x48": smooth, "noisy_48x36": noisy, "portrait_checker_30x50": checker,
            "tiny_10x13_upscaled": tiny}


CASES = [  # (image, resolution, crop_pct)
    ("smooth_64x48", 24, 0.875), ("smooth_64x48", 16, 1.0),
    ("noisy_48x36", 24, 0.875), ("noisy_48x36", 16, 0.875), ("noisy_48x36", 11, 0.5),
    ("portrait_checker_30x50", 20, 0.875), ("portrait_checker_30x50", 16, 0.9),
    ("tiny_10x13_upscaled", 16, 0.875),
]


def expected(img: np.ndarray, resolution: int, crop_pct: float) -> np.ndarray:
    from PIL import Image
    from rsnet_edge.preprocess import eval_view
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return eval_view(pil, resolution, MEAN, STD, crop_pct).numpy()


def render() -> str:
    ims = {k: np.clip(v, 0, 255).astype(np.uint8) for k, v in images().items()}
    doc = {
        "about": "Eval preprocessing vectors (rsnet_edge.preprocess.eval_view: TF.resize of the shorter "
                 "side to round(r / crop_pct) on a PIL image = antialiased bilinear, centre crop, "
                 "/255, mean/std; CHW). Written by tests/data/make_preprocess_vectors.py; read by "
                 "tests/test_android_core.py and the Java PreprocessVectorsTest. pixels: row-major "
                 "R,G,B. expected: [3, r, r] flattened, normalised. Agreement: |a - b| * std <= "
                 "tolerance (1/255 on the 0-1 scale).",
        "mean": MEAN, "std": STD, "tolerance": TOLERANCE,
        "images": {k: {"width": int(v.shape[1]), "height": int(v.shape[0]),
                       "pixels": v.reshape(-1).tolist()} for k, v in ims.items()},
        "cases": [{"image": name, "resolution": r, "crop_pct": cp,
                   "expected": [round(float(x), 6) for x in expected(ims[name], r, cp).reshape(-1)]}
                  for name, r, cp in CASES],
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
