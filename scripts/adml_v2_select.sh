#!/usr/bin/env bash
# Validation-alphabet measurements of docs/experiments/v2/SELECTION.md: v1 and every sweep
# candidate, 5-way 1-shot, adapted at eps 0.1, attacked at eps 0.1 by the selection suite.
# Usage: scripts/adml_v2_select.sh [SWEEP_DIR] [OUT_DIR] ; EPISODES (40), JOBS (2) override.
set -euo pipefail
cd "$(dirname "$0")/.."
sweep=${1:-runs/v2-sweep}
out=${2:-docs/experiments/v2}
episodes=${EPISODES:-40}
jobs=${JOBS:-2}
mkdir -p "$out"
evaluate() {
  local name=$1 checkpoint=$2
  local target="$out/select_$name.json"
  [ -f "$target" ] && return 0
  OMP_NUM_THREADS=1 .venv/bin/fewshot evaluate "$checkpoint" --split val --episodes "$episodes" \
    --way 5 --shot 1 --query 5 --adversarial --adapt-eps 0.1 --eps 0,0.1 \
    --attacks fgsm,pgd-20,apgd-ce-20,apgd-ce-100,apgd-t-100 --blackbox square-1000 \
    --blackbox-every 10 --seed 0 --output "$target.tmp" > /dev/null 2> "$out/select_$name.log" \
    && mv "$target.tmp" "$target"
}
candidates=("v1 models/pretrained/adml-omniglot")
for name in fgsm fgsm-rs pgd3 pgd3-trades5 aq-pgd3; do candidates+=("$name $sweep/$name"); done
for candidate in "${candidates[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 2; done
  evaluate $candidate &
done
wait
