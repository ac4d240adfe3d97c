#!/usr/bin/env bash
# The robustness protocol of docs/robustness.md: ADML vs MAML on the test alphabets, 5-way
# 1-shot and 5-shot, adversarial (clean+FGSM) and clean-only adaptation, eps 0/0.05/0.1/0.2
# (+0.5 for the sanity check), FGSM and PGD-20, 600 episodes per cell, two runs at a time.
# Usage: benchmarks/robustness.sh [OUT_DIR] ; EPISODES, QUERY, SHOTS, MODES, JOBS override
# defaults. Result files that exist are kept (delete one to measure it again).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/robustness/results}
episodes=${EPISODES:-600}
query=${QUERY:-5}
shots=${SHOTS:-"1 5"}
modes=${MODES:-"adversarial clean"}
jobs=${JOBS:-2}
mkdir -p "$out"
configs=()
for shot in $shots; do
  for algo in adml maml; do
    for mode in $modes; do configs+=("$algo $shot $mode"); done
  done
done
run() {
  local algo=$1 shot=$2 mode=$3
  local target="$out/${algo}_${shot}shot_${mode}.json"
  [ -f "$target" ] && return 0
  OMP_NUM_THREADS=1 .venv/bin/fewshot evaluate "models/pretrained/${algo}-omniglot" \
    --episodes "$episodes" --way 5 --shot "$shot" --query "$query" --pgd-steps 20 \
    --"$mode" --output "$target.tmp" > /dev/null && mv "$target.tmp" "$target"
}
pids=()
for config in "${configs[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run $config &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" -eq 0 ] || { echo "an evaluation failed" >&2; exit 1; }
.venv/bin/python benchmarks/robustness_report.py "$out" --plot docs/robustness.png
