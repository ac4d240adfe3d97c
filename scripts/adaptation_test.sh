#!/usr/bin/env bash
# The test-alphabet check of a service-time adaptation candidate (the addendum of
# docs/experiments/v2/ADAPTATION-3.md): the full protocol of docs/robustness.md (the strong
# suite at eps 0, 0.05 and 0.1, Square-1000 on every 10th episode), 5-way 1-shot, on the first
# EPISODES (50) seeded episodes of the 600-episode v2 journal, as two processes (one per core),
# merged, then paired by episode against that journal. Run it again to resume.
# Usage: scripts/adaptation_test.sh NAME ADAPT_OPTION...
#   e.g. scripts/adaptation_test.sh aug16-steps40 --adapt-augment 16 --adapt-steps 40
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 NAME ADAPT_OPTION..." >&2; exit 2; }
name=$1
shift
episodes=${EPISODES:-50}
half=$((episodes / 2))
out=docs/robustness/$name
journal=$out/adml-v2-${name}_1shot_adversarial.json.jsonl
shard=$out/adml-v2-${name}_1shot_adversarial.shard$half.jsonl
baseline=docs/robustness/600/adml-v2_1shot_adversarial.json.jsonl
mkdir -p "$out"
evaluate() {
  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/fewshot evaluate models/pretrained/adml-omniglot \
    --way 5 --shot 1 --query 5 --eps 0,0.05,0.1 --adversarial "$@" > /dev/null
}
evaluate "$@" --episodes "$half" --journal "$journal" 2> "$out/main.log" &
first=$!
evaluate "$@" --first-episode "$half" --episodes "$episodes" --journal "$shard" 2> "$out/shard$half.log" &
second=$!
failed=0
wait "$first" || failed=1  # both halves finish (or fail) before anything is merged
wait "$second" || failed=1
[ "$failed" = 0 ] || { echo "an evaluation failed: see $out/*.log" >&2; exit 1; }
.venv/bin/python benchmarks/merge_journals.py "$journal" "$shard"
# every episode is journaled by now: this only reads them, then writes the table and checks
evaluate "$@" --episodes "$episodes" --journal "$journal" --output "${journal%.jsonl}"
.venv/bin/python benchmarks/paired_journals.py "$baseline" "$journal" --eps 0.05,0.1 \
  | tee "$out/paired-test.txt"
