#!/usr/bin/env bash
# make demo: start the local AWS emulator, read a demo secret with the aws
# CLI, run a command under rolesenv with the demo secrets, rotate one and
# watch the command restart with the new value, then stop everything.
#
# Everything stays on 127.0.0.1: the emulator's env.sh points every AWS
# setting at it and turns instance metadata off.
set -euo pipefail

bin=${1:-bin/rolesenv}
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
export AWS_EC2_METADATA_DISABLED=true

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: error: $*" >&2; exit 1; }

command -v aws >/dev/null 2>&1 || fail "the aws CLI is needed for the demo (pip install awscli)"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE PATTERN [SECONDS]: wait until FILE has a line matching PATTERN.
wait_for() {
  local file=$1 pattern=$2 deadline=$((SECONDS + ${3:-30}))
  until grep -qE "$pattern" "$file" 2>/dev/null; do
    ((SECONDS < deadline)) || { cat "$file" >&2 || true; fail "timed out waiting for '$pattern' in $file"; }
    sleep 0.1
  done
}

step "Start the emulator: rolesenv dev --dir $work/dev"
"$bin" dev --dir "$work/dev" >"$work/dev.out" 2>"$work/dev.log" &
pids+=($!)
wait_for "$work/dev.out" 'Press Ctrl-C to stop'
cat "$work/dev.out"
# shellcheck disable=SC1091
. "$work/dev/env.sh"

step "The aws CLI (profile admin) reads a demo secret from the emulator"
aws --profile admin secretsmanager get-secret-value --secret-id demo/api-key \
  --query '{Name: Name, Value: SecretString, Stages: VersionStages}' --output json

step "The aws CLI (profile dev) gets Roles Anywhere credentials through rolesenv credential-process"
aws --profile dev sts get-caller-identity --output json

step "A command under rolesenv run gets the demo secrets (it prints what it received, then waits)"
# The demo command prints values: showing them is the point of the demo.
# rolesenv itself never prints or logs a value.
demo_child='echo "child started (pid $$): API_KEY=$API_KEY DB_USER=$DB_USER FEATURE_FLAG=$FEATURE_FLAG"
trap "echo \"child $$ stopping\"; exit 0" TERM
while :; do sleep 3600 & wait $!; done'
echo "$bin run --env-file $work/dev/demo.env --interval 1s --debounce 500ms -- sh -c '...'"
"$bin" run --env-file "$work/dev/demo.env" --interval 1s --debounce 500ms -- sh -c "$demo_child" \
  >"$work/child.out" 2>"$work/run.log" &
run_pid=$!
pids+=("$run_pid")
wait_for "$work/child.out" 'API_KEY=demo-api-key-1' 60
cat "$work/child.out"
grep -E 'references resolved' "$work/run.log" || true

step "Rotate demo/api-key with the aws CLI (profile admin)"
aws --profile admin secretsmanager put-secret-value --secret-id demo/api-key \
  --secret-string demo-api-key-2 --query '{Name: Name, VersionId: VersionId, Stages: VersionStages}' --output json
rotated=$(date +%s%N)

step "rolesenv notices the rotation and restarts the command with the new value"
wait_for "$work/child.out" 'API_KEY=demo-api-key-2' 60
restarted=$(date +%s%N)
cat "$work/child.out"
echo
grep -E 'rotation detected|environment changed|child restarted' "$work/run.log" || true
printf 'restart with the new value %d ms after the rotation\n' $(((restarted - rotated) / 1000000))

step "Stop rolesenv (SIGTERM goes to the command, which exits 0)"
kill -TERM "$run_pid"
status=0
wait "$run_pid" || status=$?
pids=("${pids[@]:0:${#pids[@]}-1}") # it was the last one started
[[ $status -eq 0 ]] || { cat "$work/run.log" >&2; fail "rolesenv run exited $status"; }
echo "rolesenv run exited $status"

step "Done: everything stopped"
