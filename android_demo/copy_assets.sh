#!/usr/bin/env bash
# Put a converted artifact into the app: copies ARTIFACT_DIR/rs_mbv2.pte and
# ARTIFACT_DIR/rs_mbv2.pte.manifest.json into app/src/main/assets/, plus up to MAX_SAMPLES (8)
# sample images into app/src/main/assets/samples/ (shown when no camera permission is given).
#
#   android_demo/copy_assets.sh ARTIFACT_DIR [SAMPLES_DIR]
#
# SAMPLES_DIR defaults to ARTIFACT_DIR/samples, else any *.jpg/*.jpeg/*.png found (recursively) under
# ARTIFACT_DIR. The manifest is checked (JSON, format, artifact sha256) before anything is copied.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="$HERE/app/src/main/assets"
MAX_SAMPLES="${MAX_SAMPLES:-8}"
PTE=rs_mbv2.pte
MAN="$PTE.manifest.json"

[ "$#" -ge 1 ] && [ -n "$1" ] || { echo "usage: $0 ARTIFACT_DIR [SAMPLES_DIR]" >&2; exit 2; }
SRC="$1"
[ -f "$SRC/$PTE" ] || { echo "copy_assets.sh: $SRC/$PTE not found" >&2; exit 1; }
[ -f "$SRC/$MAN" ] || { echo "copy_assets.sh: $SRC/$MAN not found (convert with the executorch converter)" >&2; exit 1; }

python3 - "$SRC/$PTE" "$SRC/$MAN" <<'PY'
import hashlib, json, sys
pte, man = sys.argv[1], sys.argv[2]
d = json.load(open(man))
assert d.get("format") == "rsnet-edge-manifest", f"{man} is not an rsnet-edge manifest"
assert d.get("backend") == "executorch", f"{man} describes a {d.get('backend')} artifact, not executorch"
want = (d.get("artifact") or {}).get("sha256")
if want:
    h = hashlib.sha256()
    with open(pte, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert h.hexdigest() == want, f"{man} does not describe {pte} (sha256 differs)"
print("manifest ok:", [e["entry"] for e in d["entries"]])
PY

mkdir -p "$ASSETS"
cp "$SRC/$PTE" "$SRC/$MAN" "$ASSETS/"

SAMPLES="${2:-}"
if [ -z "$SAMPLES" ] && [ -d "$SRC/samples" ]; then SAMPLES="$SRC/samples"; fi
[ -n "$SAMPLES" ] || SAMPLES="$SRC"
rm -rf "$ASSETS/samples"
mkdir -p "$ASSETS/samples"
n=0
while IFS= read -r f; do
  ext="${f##*.}"
  cp "$f" "$ASSETS/samples/$(printf 'sample_%02d' "$n").${ext,,}"
  n=$((n + 1))
done < <(find "$SAMPLES" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort | head -n "$MAX_SAMPLES")
echo "copied $PTE, $MAN and $n sample image(s) into $ASSETS"
[ "$n" -gt 0 ] || echo "note: no sample images found; without camera permission the app has nothing to classify" >&2
