#!/bin/bash
# The zoo comparison recipe (issue 18): every architecture trained from scratch under one identical,
# short schedule (same data, crops, steps, optimiser, loss, seed), one after another. Each run resumes
# from its last.pt; a finished one has a DONE file. Then scripts/ship_model.py turns each run into a
# model card, and benchmarks/zoo_comparison.py scores them all in one process (docs/zoo_comparison.md).
#
#   scripts/zoo_recipe.sh [OUT_ROOT]        (default runs/cmp; ~1 h on 2 idle CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-runs/cmp}
PY=${PYTHON:-python}
RECIPE=(--epochs 24 --steps-per-epoch 25 --batch-size 8 --lr 1e-3 --val-every 6 --threads 2
        --shares '{"stained": 0.25, "brightfield": 0.08}' --contact-weight 10
        --test-file splits/dsb2018_test.txt)
run() {
  local name=$1 arch=$2 cfg=$3 out=$ROOT/$1
  [ -f "$out/DONE" ] && return
  mkdir -p "$out"
  $PY scripts/train_model.py --arch "$arch" --config "$cfg" --out "$out" "${RECIPE[@]}" >> "$out/log.txt" 2>&1
  touch "$out/DONE"
}
run resnet34-unet resnet_unet '{"base": 16, "resnet_depth": 34}'
run resnet18-unet resnet_unet '{"base": 16, "resnet_depth": 18}'
run unetplus16 unet_plus '{"base": 16, "depth": 5}'
run unet16 unet '{"base": 16, "depth": 5}'
run resunet32 residual_unet '{"base": 32, "depth": 4}'
# U-Net++ at B=8: at B=16 a step costs 3.4x U-Net's on this CPU and did not fit the CPU time of the session that ran it (docs/zoo_comparison.md)
run unetpp8 unet_plusplus '{"base": 8, "depth": 5}'
