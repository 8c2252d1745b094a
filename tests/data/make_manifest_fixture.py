"""Regenerate tests/data/manifest_fixture.json from the Python schema (rsnet_edge.manifest).

The Java core's ManifestTest parses this file; tests/test_android_core.py checks it is what this
script produces, so a schema change in rsnet_edge/manifest.py shows up as a stale fixture.

    python tests/data/make_manifest_fixture.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rsnet_edge.manifest import Entry, InputSpec, Manifest, entry_name  # noqa: E402
from rsnet_edge.policy import default_policy  # noqa: E402

FIXTURE = Path(__file__).with_name("manifest_fixture.json")
RESOLUTIONS = [224, 192, 160, 128, 96]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def build() -> Manifest:
    entries = [Entry(resolution=r, entry=entry_name(r), madds=int(300_000_000 * (r / 224) ** 2),
                     top1=round(70.0 - (224 - r) / 16, 2), top5=None, trained=True)
               for r in RESOLUTIONS]
    return Manifest(
        backend="executorch", arch="mobilenet_v2",
        arch_args={"width_mult": 1.0, "num_classes": len(CLASSES)},
        input=InputSpec(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], crop_pct=0.875),
        class_names=CLASSES, entries=entries, default_resolution=224,
        policy=default_policy(RESOLUTIONS).to_dict(),
        artifact={"file": "rs_mbv2.pte", "sha256": "0" * 64, "size_bytes": 123},
        checkpoint={"file": "rs_mbv2.pt", "sha256": "1" * 64},
        params={"total": 3470000, "shared": 3400000, "bn_per_resolution": 34000},
        extra={"fixture": True})


def render() -> str:
    return build().to_json() + "\n"


if __name__ == "__main__":
    FIXTURE.write_text(render())
    print(f"wrote {FIXTURE}")
