#!/usr/bin/env bash
# The stack under docker compose, end to end (cpu profile): build the image, bring up redis, api
# and worker-cpu, wait until all are healthy and /readyz says ready, create an API key, adapt a
# real Omniglot support set and predict; kill and recreate the redis container and find job,
# model and key intact (AOF volume); remove and recreate the api and worker containers and
# predict with the same model (its weights on the artifacts volume); SIGTERM the worker in the middle of a job and see the job
# finish after it restarts; `down -v` and nothing left. Bounded by COMPOSE_TEST_TIMEOUT_S (780; .ci/run allows 900).
# Needs docker, docker-compose (1.29 or v2), ../shared/data/omniglot and the venv (make).
# Without a registry, run scripts/airgap_base_images.sh first (it makes the base images).
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-fewshot-ci} COMPOSE_PROFILES=cpu
# the stack of this repo's compose file alone, with its own Redis: whatever a local .env or an
# override file says is not used
export REDIS_URL=redis://redis:6379/0 FEWSHOT_AUTH=keys
export FEWSHOT_PORT=${FEWSHOT_PORT:-18000} FEWSHOT_LOG_LEVEL=WARNING
# reports with the cheap attacks only: the test is about the stack, not about robustness
export FEWSHOT_REPORT_ATTACKS=fgsm,pgd-20 FEWSHOT_REPORT_TIME_BUDGET_S=20
url="http://127.0.0.1:${FEWSHOT_PORT}"
budget=${COMPOSE_TEST_TIMEOUT_S:-780}
started=$(date +%s)
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
no_env=$(mktemp)  # an empty env file: a local .env is not read (Compose 1.29 refuses /dev/null)
compose+=(-f docker-compose.yml --env-file "$no_env")
py=.venv/bin/python

step() { echo "compose-test [$(($(date +%s) - started)) s]: $*"; }
left() { echo $((budget - ($(date +%s) - started))); }  # seconds left (<= 0: over budget)
within() {  # within CMD...: CMD bounded by the time left
  local seconds
  seconds=$(left)
  [ "$seconds" -gt 0 ] || { echo "compose-test: over ${budget} s" >&2; return 1; }
  timeout "$seconds" "$@"
}
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then  # what went wrong, before it is all removed
    echo "compose-test: FAILED (exit $status); the services and their last logs:" >&2
    "${compose[@]}" ps >&2 || true
    "${compose[@]}" logs --tail=100 >&2 || true
  fi
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -f "$no_env"
}
trap cleanup EXIT
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true  # an aborted run's leftovers

healthy() {  # healthy SERVICE: wait until its container reports healthy
  local id status
  while true; do
    id=$("${compose[@]}" ps -q "$1")
    status=$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || echo none)
    [ "$status" = healthy ] && return 0
    [ "$(left)" -gt 0 ] || { echo "compose-test: $1 not healthy in time" >&2; return 1; }
    sleep 2
  done
}

step "build (the api service builds the image; worker-cpu uses it)"
within "${compose[@]}" build api >/tmp/compose-test-build.log 2>&1 ||
  { tail -30 /tmp/compose-test-build.log >&2; exit 1; }
step "up"
within "${compose[@]}" up -d >/dev/null 2>&1
for service in redis worker-cpu api; do healthy "$service"; step "$service healthy"; done
ready=$(curl -fsS "$url/readyz")
[[ "$ready" == *'"ready"'* ]] || { echo "not ready: $ready" >&2; exit 1; }
key=$(within "${compose[@]}" exec -T api fewshot keys create --tenant ci 2>/dev/null | tail -1)
[[ "$key" == fsk_* ]] || { echo "no API key made: $key" >&2; exit 1; }
step "adapt a real Omniglot support set, predict"
adapted=$(within "$py" scripts/compose_e2e.py adapt "$url" "$key")
read -r job model <<<"$adapted"
step "kill and recreate redis: job $job, model $model and the key must survive (AOF volume)"
"${compose[@]}" kill redis >/dev/null 2>&1
"${compose[@]}" rm -f redis >/dev/null 2>&1
"${compose[@]}" up -d redis >/dev/null 2>&1
healthy redis
until curl -fsS "$url/readyz" >/dev/null 2>&1; do [ "$(left)" -gt 0 ] || exit 1; sleep 1; done
within "$py" scripts/compose_e2e.py check "$url" "$key" "$job" "$model"
step "recreate the api and worker containers: model $model must still predict (artifacts volume)"
"${compose[@]}" rm -f -s api worker-cpu >/dev/null 2>&1
"${compose[@]}" up -d api worker-cpu >/dev/null 2>&1
for service in worker-cpu api; do healthy "$service"; done
until curl -fsS "$url/readyz" >/dev/null 2>&1; do [ "$(left)" -gt 0 ] || exit 1; sleep 1; done
within "$py" scripts/compose_e2e.py check "$url" "$key" "$job" "$model"
step "SIGTERM the worker mid-job: the job goes back to the queue and finishes after a restart"
long=$(within "$py" scripts/compose_e2e.py start "$url" "$key")
within "$py" scripts/compose_e2e.py wait "$url" "$key" "$long" running
worker=$("${compose[@]}" ps -q worker-cpu)
"${compose[@]}" kill -s SIGTERM worker-cpu >/dev/null 2>&1
timeout 60 docker wait "$worker" >/dev/null  # it exits once the job is given back
"${compose[@]}" start worker-cpu >/dev/null 2>&1
within "$py" scripts/compose_e2e.py wait "$url" "$key" "$long" succeeded 2  # on attempt 2
step "down -v"
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
trap - EXIT
rm -f "$no_env"
leftovers=$(docker ps -aq --filter "label=com.docker.compose.project=${COMPOSE_PROJECT_NAME}")
volumes=$(docker volume ls -q --filter "label=com.docker.compose.project=${COMPOSE_PROJECT_NAME}")
[ -z "$leftovers$volumes" ] || { echo "left behind: $leftovers $volumes" >&2; exit 1; }
step "passed"
