#!/usr/bin/env bash
# Validation-alphabet measurements of docs/experiments/v2/ADAPTATION.md (round 2: ADAPTATION-2.md,
# CANDIDATES="eps15 lr03 eps15-steps40"; round 3: ADAPTATION-3.md,
# CANDIDATES="aug4 aug16 aug16-steps40"): the v2 initialization
# under each service-time adaptation candidate, 5-way 1-shot, the selection suite at eps 0.1,
# every episode journaled (run again to resume). Candidates run one after the other.
# Usage: scripts/adaptation_select.sh [OUT_DIR] ; EPISODES (60), CANDIDATES, SEED (0) override.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${SEED:-0}
suffix=""
[ "$seed" = 0 ] || suffix="-seed$seed"  # another seed's episodes: another folder
out=${1:-docs/experiments/v2/adaptation$suffix}
episodes=${EPISODES:-60}
mkdir -p "$out"
options_of() {
  case $1 in
    default) echo "--adversarial" ;;
    clean) echo "--clean" ;;
    fgsm-rs) echo "--adversarial --adapt-random-start" ;;
    steps40) echo "--adversarial --adapt-steps 40" ;;
    eps15) echo "--adversarial --adapt-eps 0.15" ;;
    lr03) echo "--adversarial --adapt-lr 0.3" ;;
    eps15-steps40) echo "--adversarial --adapt-eps 0.15 --adapt-steps 40" ;;
    aug4) echo "--adversarial --adapt-augment 4" ;;
    aug16) echo "--adversarial --adapt-augment 16" ;;
    aug16-steps40) echo "--adversarial --adapt-augment 16 --adapt-steps 40" ;;
    aug4-clean) echo "--clean --adapt-augment 4" ;;
    aug16-clean) echo "--clean --adapt-augment 16" ;;
    aug16-steps40-clean) echo "--clean --adapt-augment 16 --adapt-steps 40" ;;
    *) echo "unknown candidate $1" >&2; return 1 ;;
  esac
}
for name in ${CANDIDATES:-default clean fgsm-rs steps40}; do
  target="$out/$name.json"
  [ -f "$target" ] && continue
  options=$(options_of "$name") || exit 1
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 .venv/bin/fewshot evaluate models/pretrained/adml-omniglot --split val \
    --episodes "$episodes" --way 5 --shot 1 --query 5 --eps 0,0.1 \
    --attacks fgsm,pgd-20,apgd-ce-20,apgd-ce-100,apgd-t-100 --blackbox square-1000 \
    --blackbox-every 10 --seed "$seed" --adapt-eps 0.1 $options --journal "$out/$name.jsonl" \
    --output "$target.tmp" > /dev/null 2> "$out/$name.log" && mv "$target.tmp" "$target"
done
