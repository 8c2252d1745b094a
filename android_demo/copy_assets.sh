#!/usr/bin/env bash
# Put a converted artifact into the app:
#
#   android_demo/copy_assets.sh ARTIFACT [SAMPLES_DIR]
#
# ARTIFACT is the converted file (e.g. runs/quickstart/rs_mbv2.pte, or a compact rs_mbv2.pte.rsfold);
# its manifest is the sidecar ARTIFACT.manifest.json written beside it by the converter. The
# manifest is validated with rsnet_edge.manifest (the one schema) and must describe ARTIFACT
# (backend executorch, artifact.sha256) before anything is copied. Both are copied into
# app/src/main/assets/ under the name the manifest records (artifact.file, which is the file the
# app opens) and that name + ".manifest.json"; artifacts and manifests copied earlier are removed,
# so the app finds exactly one manifest.
#
# Up to MAX_SAMPLES (8) sample images go to app/src/main/assets/samples/ (shown when the camera
# permission is refused), picked ACROSS classes: images are grouped by their folder
# (ImageFolder layout SAMPLES_DIR/<class>/*.jpg), and the first image of every class is taken
# before the second of any. SAMPLES_DIR defaults to the artifact's folder + /samples when that
# exists.
#
# Environment: MAX_SAMPLES (default 8), RSNET_ASSETS_DIR (default app/src/main/assets),
# PYTHON (default python3). Exit 2 with one line on bad input; nothing is copied then.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ASSETS="${RSNET_ASSETS_DIR:-$HERE/app/src/main/assets}"
MAX_SAMPLES="${MAX_SAMPLES:-8}"
PY="${PYTHON:-python3}"

die() { echo "copy_assets.sh: $*" >&2; exit 2; }

[ "$#" -ge 1 ] && [ "$#" -le 2 ] && [ -n "$1" ] || die "usage: $0 ARTIFACT [SAMPLES_DIR]"
ART="$1"
if [ -d "$ART" ]; then
  die "$ART is a folder; pass the artifact file itself (e.g. $ART/rs_mbv2.pte)"
fi
[ -f "$ART" ] || die "$ART not found"
MAN="$ART.manifest.json"
[ -f "$MAN" ] || die "$MAN not found (the converter writes it beside the artifact)"
case "$MAX_SAMPLES" in ''|*[!0-9]*) die "MAX_SAMPLES must be a number, got '$MAX_SAMPLES'" ;; esac

SAMPLES="${2:-}"
if [ -z "$SAMPLES" ] && [ -d "$(dirname "$ART")/samples" ]; then SAMPLES="$(dirname "$ART")/samples"; fi
if [ -n "$SAMPLES" ] && [ ! -d "$SAMPLES" ]; then die "samples folder $SAMPLES not found"; fi

# Validate, and get the recorded file name. One line on failure.
# rsnet_edge.manifest (and the policy it validates with) is stdlib-only: it is imported without
# running rsnet_edge/__init__.py, which would load torch for nothing.
NAME="$("$PY" - "$ROOT" "$ART" "$MAN" <<'PY'
import re, sys, types
pkg = types.ModuleType("rsnet_edge")
pkg.__path__ = [sys.argv[1] + "/rsnet_edge"]
sys.modules["rsnet_edge"] = pkg
from rsnet_edge.manifest import ManifestError, check_artifact, read_sidecar
art, man = sys.argv[2], sys.argv[3]
try:
    m = read_sidecar(art)                       # = $MAN, read within rsnet_edge.jsonio's limits
    if m.backend != "executorch":
        raise ManifestError(f"{man} describes a {m.backend} artifact; the Android demo runs executorch")
    name = m.artifact.get("file")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise ManifestError(f"{man} records no usable artifact.file ({name!r})")
    if not (name.endswith(".pte") or name.endswith(".pte.rsfold")):
        raise ManifestError(f"{man} records artifact.file {name!r}, not a .pte or .pte.rsfold")
    check_artifact(m, art)
except (ManifestError, OSError) as e:
    print(f"copy_assets.sh: {e}", file=sys.stderr)
    sys.exit(2)
print(name)
PY
)" || exit 2

mkdir -p "$ASSETS"
# Stage both files next to their final place, then swap: never half an artifact in assets.
TMP_ART="$ASSETS/.$NAME.tmp-$$"
TMP_MAN="$ASSETS/.$NAME.manifest.json.tmp-$$"
cleanup() { rm -f -- "$TMP_ART" "$TMP_MAN"; }
trap cleanup EXIT
trap 'echo "copy_assets.sh: interrupted" >&2; exit 130' INT
cp -- "$ART" "$TMP_ART"
cp -- "$MAN" "$TMP_MAN"
find "$ASSETS" -maxdepth 1 -type f \( -name '*.manifest.json' -o -name '*.pte' -o -name '*.pte.rsfold' \) \
  -exec rm -f -- {} +
mv -- "$TMP_ART" "$ASSETS/$NAME"
mv -- "$TMP_MAN" "$ASSETS/$NAME.manifest.json"

rm -rf -- "$ASSETS/samples"
mkdir -p "$ASSETS/samples"
n=0
if [ -n "$SAMPLES" ] && [ "$MAX_SAMPLES" -gt 0 ]; then
  # Round-robin over class folders (sorted), images sorted inside each: NUL-separated paths.
  while IFS= read -r -d '' f; do
    base="$(basename -- "$f")"
    ext="${base##*.}"
    cls="$(basename -- "$(dirname -- "$f")" | tr -c 'A-Za-z0-9_-' '_')"
    cp -- "$f" "$ASSETS/samples/$(printf 'sample_%02d' "$n")_$cls.${ext,,}"
    n=$((n + 1))
  done < <("$PY" - "$SAMPLES" "$MAX_SAMPLES" <<'PY'
import os, sys
from collections import defaultdict
root, k = sys.argv[1], int(sys.argv[2])
groups = defaultdict(list)
for d, _, files in os.walk(root):
    for f in files:
        if f.lower().endswith((".jpg", ".jpeg", ".png")):
            groups[d].append(os.path.join(d, f))
order = [sorted(groups[d]) for d in sorted(groups)]
picked = []
for i in range(max(map(len, order), default=0)):
    picked += [g[i] for g in order if i < len(g)]
sys.stdout.write("".join(p + "\0" for p in picked[:k]))
PY
)
fi
echo "copied $(basename -- "$ART") as $NAME (+ $NAME.manifest.json) and $n sample image(s) into $ASSETS"
[ "$n" -gt 0 ] || echo "note: no sample images; without camera permission the app has nothing to classify" >&2
