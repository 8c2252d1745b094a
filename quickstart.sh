#!/usr/bin/env bash
# The main job on the built-in default: make the built-in dataset, train a small RS-MobileNetV2 on
# CPU, evaluate it at every resolution, convert it to ExecuTorch / LiteRT / Core ML, verify each
# artifact against PyTorch, and benchmark every entry point against folded single-resolution exports.
# Usage: bash quickstart.sh [OUT_DIR]   (default runs/quickstart; EPOCHS=N to train longer)
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-runs/quickstart}
EPOCHS=${EPOCHS:-3}
mkdir -p "$OUT"
start=$(date +%s)
run() { echo; echo "+ $*"; "$@"; }

[ -d "$OUT/data" ] || run python -m training.synthetic --out "$OUT/data" --classes 10 --train-per-class 100 --val-per-class 30
run python -m training.train --arch mobilenet_v2 --width-mult 0.35 --data "$OUT/data" \
    --resolutions 224 192 160 128 96 --mred full --epochs "$EPOCHS" --batch-size 32 --workers 1 --out "$OUT/rs_mbv2.pt"
run python -m training.evaluate --ckpt "$OUT/rs_mbv2.pt" --data "$OUT/data" \
    --resolutions 224 208 192 160 128 112 96 --matrix --json "$OUT/eval.json"
run python -m converters.executorch --ckpt "$OUT/rs_mbv2.pt" --out "$OUT/rs_mbv2.pte"
run python -m converters.tflite --ckpt "$OUT/rs_mbv2.pt" --out "$OUT/rs_mbv2.tflite"
run python -m converters.coreml --ckpt "$OUT/rs_mbv2.pt" --out "$OUT/rs_mbv2.mlpackage"
for a in rs_mbv2.pte rs_mbv2.tflite rs_mbv2.mlpackage; do
    run python -m converters.verify "$OUT/$a" --ckpt "$OUT/rs_mbv2.pt" --images "$OUT/data/val"
done
run python -m bench.run_device "$OUT/rs_mbv2.pte" "$OUT/rs_mbv2.tflite" --ckpt "$OUT/rs_mbv2.pt" \
    --data "$OUT/data" --runs 20 --warmup 5 --out-dir "$OUT/bench"
echo
echo "quickstart finished in $(( $(date +%s) - start )) s; results in $OUT/"
