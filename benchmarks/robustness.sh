#!/usr/bin/env bash
# The robustness protocol of docs/robustness.md on the test alphabets: each model x shot x
# adaptation cell, 5-way, attacked by the strong suite (each attack's own accuracy and the
# per-image worst case) at eps 0/0.05/0.1/0.2 (+0.5 for the sanity check), Square-1000 on every
# 10th episode as the gradient-masking check, JOBS evaluations at a time.
# Usage: benchmarks/robustness.sh [OUT_DIR]
#   MODELS  "name=checkpoint ..." (default: the shipped adml and maml initializations)
#   SHOTS ("1 5"), MODES ("adversarial clean"), EPISODES (600), QUERY (5), JOBS (2),
#   ATTACKS (fewshot evaluate's default suite), EPS (0,0.05,0.1,0.2), PLOT (docs/robustness.png)
#   override the defaults.
# Result files that exist are kept (delete one to measure it again); then tables and the plot.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/robustness/results}
models=${MODELS:-"adml=models/pretrained/adml-omniglot maml=models/pretrained/maml-omniglot"}
episodes=${EPISODES:-600}
query=${QUERY:-5}
shots=${SHOTS:-"1 5"}
modes=${MODES:-"adversarial clean"}
jobs=${JOBS:-2}
eps=${EPS:-0,0.05,0.1,0.2}
attack_args=()
[ -n "${ATTACKS:-}" ] && attack_args=(--attacks "$ATTACKS")
mkdir -p "$out"
configs=()
for shot in $shots; do
  for model in $models; do
    for mode in $modes; do configs+=("$model $shot $mode"); done
  done
done
run() {
  local name=${1%%=*} checkpoint=${1#*=} shot=$2 mode=$3
  local target="$out/${name}_${shot}shot_${mode}.json"
  [ -f "$target" ] && return 0
  OMP_NUM_THREADS=1 .venv/bin/fewshot evaluate "$checkpoint" --episodes "$episodes" --way 5 \
    --shot "$shot" --query "$query" --eps "$eps" "${attack_args[@]}" --"$mode" \
    --journal "$target.jsonl" \
    --output "$target.tmp" > /dev/null 2> "$target.log" && mv "$target.tmp" "$target"
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
.venv/bin/python benchmarks/robustness_report.py "$out" --plot "${PLOT:-docs/robustness.png}"
