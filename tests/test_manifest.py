"""The manifest schema: round trip, validation with one clear error per problem, sidecar I/O."""

import copy
import json

import pytest

from rsnet_edge.manifest import (Entry, InputSpec, Manifest, ManifestError, check_artifact,
                                 entry_name, read_sidecar, sha256_file, sidecar_path, write_sidecar)
from rsnet_edge.policy import default_policy


def _manifest(**kw) -> Manifest:
    rs = [224, 160, 96]
    m = Manifest(backend="executorch", arch="mobilenet_v2", arch_args={"num_classes": 3, "width_mult": 1.0},
                 input=InputSpec(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
                 class_names=["a", "b", "c"],
                 entries=[Entry(r, entry_name(r), madds=1000 * r, top1=50.0, top5=90.0) for r in rs],
                 default_resolution=224, policy=default_policy(rs).to_dict())
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def test_round_trip_and_queries():
    m = _manifest()
    back = Manifest.from_json(m.to_json())
    assert back == m
    assert back.resolutions == [224, 160, 96]
    assert back.entry_for(160).entry == "forward_160"
    assert back.input.resize_size(224) == 256
    with pytest.raises(ManifestError, match="not served"):
        back.entry_for(128)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(format="something-else"), "not an rsnet-edge manifest"),
    (lambda d: d.update(schema_version=99), "newer than this library"),
    (lambda d: d.pop("entries"), "missing 'entries'"),
    (lambda d: d.update(backend="caffe"), "unknown backend"),
    (lambda d: d["input"].update(std=[1.0, 0.0, 1.0]), "std must be positive"),
    (lambda d: d["input"].update(mean=[0.5, 0.5]), "mean must be 3 numbers"),
    (lambda d: d["input"].update(layout="CHWN"), "layout"),
    (lambda d: d.update(class_names=[]), "class_names"),
    (lambda d: d["entries"].reverse(), "highest resolution first"),
    (lambda d: d["entries"].append(dict(d["entries"][0])), "listed twice"),
    (lambda d: d.update(default_resolution=128), "default_resolution 128"),
])
def test_validation_rejects_with_one_clear_line(mutate, message):
    d = json.loads(_manifest().to_json())
    bad = copy.deepcopy(d)
    mutate(bad)
    with pytest.raises(ManifestError, match=message) as e:
        Manifest.from_dict(bad)
    assert "\n" not in str(e.value)


def test_not_json():
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_json(b"{not json")


def test_sidecar_and_artifact_check(tmp_path):
    art = tmp_path / "m.pte"
    art.write_bytes(b"program bytes")
    m = _manifest(artifact={"file": art.name, "sha256": sha256_file(art)})
    p = write_sidecar(m, art)
    assert p == sidecar_path(art) and p.name == "m.pte.manifest.json"
    assert read_sidecar(art) == m
    check_artifact(m, art)  # matches
    art.write_bytes(b"other program")
    with pytest.raises(ManifestError, match="does not match m.pte"):
        check_artifact(m, art)
    with pytest.raises(ManifestError, match="no manifest beside"):
        read_sidecar(tmp_path / "other.pte")
