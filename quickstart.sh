#!/usr/bin/env bash
# The main job on the built-in default: make the built-in dataset, train a small RS-MobileNetV2 on
# CPU, evaluate it at every resolution, convert it to ExecuTorch / LiteRT / ONNX / Core ML, verify
# each artifact against PyTorch, and benchmark every entry point against folded single-resolution
# exports.
# Usage: bash quickstart.sh [OUT_DIR]   (default runs/quickstart; EPOCHS=N / FT_EPOCHS=N to train longer)
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-runs/quickstart}
EPOCHS=${EPOCHS:-15}        # stage 1: the 96 px single-resolution model
FT_EPOCHS=${FT_EPOCHS:-4}   # stage 2: the RS-Net fine-tune at 224..96 (2: faster, below 85 % at 224)
mkdir -p "$OUT"
start=$(date +%s)
run() { echo; echo "+ $*"; local t=$(date +%s); "$@"; echo "($(( $(date +%s) - t )) s)"; }

[ -d "$OUT/data" ] || run python -m training.synthetic --out "$OUT/data" --classes 10 --train-per-class 100 --val-per-class 30
# Training in two stages (docs/recipes.md): most of the learning happens in a
# single-resolution model at 96 px (1/15 of the pixels of the five views), then `--init` turns it
# into the RS-Net (every BN set starts from its BN) and four epochs of parallel training with full
# MRED fits the five resolutions. Recipe flags: crops of 35-100 % of the area, classifier lr x0.1,
# zero-init residual BN, no dropout, lr warmup (the paper's settings stay the defaults of training.train).
RECIPE=(--arch mobilenet_v2 --width-mult 0.35 --data "$OUT/data" --workers 1
        --crop-scale 0.35 --head-lr-scale 0.1 --zero-init-residual --dropout 0)
run python -m training.train "${RECIPE[@]}" --resolutions 96 --epochs "$EPOCHS" --batch-size 32 --lr 0.1 \
    --warmup-epochs 0.5 --eval-every 5 --out "$OUT/inet96.pt" --force
run python -m training.train "${RECIPE[@]}" --resolutions 224 192 160 128 96 --mred full --resolution-loss mean \
    --epochs "$FT_EPOCHS" --batch-size 16 --lr 0.03 --warmup-epochs 0.1 --init "$OUT/inet96.pt" --eval-every 2 \
    --out "$OUT/rs_mbv2.pt" --force
run python -m training.evaluate --ckpt "$OUT/rs_mbv2.pt" --data "$OUT/data" \
    --resolutions 224 208 192 160 128 112 96 --matrix --json "$OUT/eval.json"
# one artifact per backend, each storing the shared weights once (--weights shared, the default):
# ExecuTorch / LiteRT ship a compact .rsfold that becomes the BN-folded program when first loaded,
# ONNX Runtime folds the .onnx itself when it creates the session, Core ML stores W once and scales it per function
# (constexpr_blockwise_shift_scale; docs/formats.md)
# (two conversions at a time, one per core, in lanes of about equal length; each one's output is
# shown when it ends)
convert() { local log="$OUT/convert_$1.log"; echo "+ python -m converters.$1 --ckpt $OUT/rs_mbv2.pt"
    OMP_NUM_THREADS=1 python -m converters.$1 --ckpt "$OUT/rs_mbv2.pt" > "$log" 2>&1 || { cat "$log"; return 1; }
    grep -E '^(wrote|error)' "$log" || true; }
echo
t=$(date +%s)
( convert executorch && convert tflite ) &      # -> rs_mbv2.pte.rsfold, rs_mbv2.tflite.rsfold
lane=$!
convert coreml && convert onnx                  # -> rs_mbv2.mlpackage, rs_mbv2.onnx
wait "$lane"
echo "($(( $(date +%s) - t )) s)"
for a in rs_mbv2.pte.rsfold rs_mbv2.tflite.rsfold rs_mbv2.onnx rs_mbv2.mlpackage; do
    run python -m converters.verify "$OUT/$a" --ckpt "$OUT/rs_mbv2.pt" --images "$OUT/data/val" --no-baseline
done
# every entry point against the folded single-resolution export of the same backend, side by side
run python -m bench.run_device "$OUT/rs_mbv2.pte.rsfold" "$OUT/rs_mbv2.tflite.rsfold" "$OUT/rs_mbv2.onnx" \
    --ckpt "$OUT/rs_mbv2.pt" --runs 15 --warmup 5 --out-dir "$OUT/bench" \
    --baseline-dir "$OUT/baselines"
echo
echo "quickstart finished in $(( $(date +%s) - start )) s; results in $OUT/"
