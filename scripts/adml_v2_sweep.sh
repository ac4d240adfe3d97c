#!/usr/bin/env bash
# The ADML v2 recipe sweep of docs/experiments/v2/SELECTION.md: five 400-step warm starts
# from the shipped v1 initialization, one CPU thread each, one after the other.
# Usage: scripts/adml_v2_sweep.sh [OUT_DIR] ; ITERATIONS overrides 400. Finished runs are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/v2-sweep}
iterations=${ITERATIONS:-400}
mkdir -p "$out"
common=(--init models/pretrained/adml-omniglot --eps 0.1 --eps-ramp 100 --iterations "$iterations"
  --way 5 --shot 1 --query 5 --meta-batch 4 --inner-steps 1 --inner-lr 0.4 --meta-lr 0.001
  --second-order --seed 0 --validate-every 100 --val-episodes 40 --device cpu)
train() {
  local name=$1
  shift
  [ -f "$out/$name.json" ] && return 0
  OMP_NUM_THREADS=1 .venv/bin/fewshot meta-train --out "$out/$name" "${common[@]}" "$@" \
    2> "$out/$name.train.log"
}
train fgsm --algo adml --attack fgsm
train fgsm-rs --algo adml --attack fgsm-rs
train pgd3 --algo adml --attack pgd --attack-steps 3
train pgd3-trades5 --algo adml --attack pgd --attack-steps 3 --trades 5
train aq-pgd3 --algo aq --attack pgd --attack-steps 3
