#!/usr/bin/env bash
# The target's `up` on each Emissary line of the current version line, in one run: Emissary 4.1.0 from its two
# charts (v3alpha1 only, no emissary-apiext) beside 3.9.1 from its release YAML (v2 stored, v3alpha1 converted by
# the real apiext where it is built), each on a fresh local API server with e2e/test_full.py's webhook servers and
# forced config. One cluster at a time, so the two never share the machine; the machine's load is printed with
# each figure, and after each `up` the live Deployments are read back, so a time is never printed for the
# wrong line. With LINES_ROUNDS=N the pair runs N times, the order swapped each round (A B, B A, ...), so a
# drift in the machine's load falls on both lines.
#
#   e2e/lines.sh                      about 4 minutes on 2 cores
#   e2e/lines.sh --skip-if-missing    exits 0 instead of 2 when a tool or a release file is missing, after saying so
#   LINES_ROUNDS=2 e2e/lines.sh       twice each, ABBA
set -euo pipefail
# shellcheck source=e2e/tier.sh
. "$(dirname "$0")/tier.sh"
tier_init lines "$@"
LINKERD=$B/linkerd-edge-26.8.3
find_tools "$LINKERD"
for version in 4.1.0 3.9.1; do
  needs="Emissary $version's release files in E2E_REFERENCE"
  [ "$version" = 3.9.1 ] || needs+=", and $B/helm-4.3.2 to render its charts"
  (E2E_EMISSARY=$version emissary_files) 2>/dev/null || MISSING+=("$needs")
done
stop_if_missing "EMISSARY LINES NOT TIMED (e2e/lines.sh): these are missing:"
start_rounds "${LINES_ROUNDS:-}" LINES_ROUNDS

# up_on_line VERSION: a fresh target cluster, the project on Emissary VERSION, `up`, the live objects read back.
up_on_line() {
  local version=$1 seconds load deployments
  WORK=$BASE/$version-$round
  mkdir -p "$WORK"
  export KUBECONFIG=$WORK/kubeconfig
  E2E_EMISSARY=$version emissary_files
  start_cluster target 127.0.100.0/24 127.1.0.0/16
  check_loopback target
  webhook_servers target
  copy_project
  use_engine
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  driver up --stack target >/dev/null
  seconds=$(stack_seconds target "$WORK/up.log")
  deployments=$("$B/kubectl" --context target get deploy -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {end}')
  say "Emissary $version: live Deployments: $deployments"
  case $version in  # the line's own shape, or the time belongs to something else
    4.1.0) [[ " $deployments " != *"/emissary-apiext "* ]] || { say "FAILED: 4.1.0 made an emissary-apiext"; exit 1; } ;;
    3.9.1) [[ " $deployments " == *"/emissary-apiext "* ]] || { say "FAILED: 3.9.1 made no emissary-apiext"; exit 1; } ;;
  esac
  RESULTS+=("Emissary $version (round $round): target up ${seconds}s, load before $load")
  end_round  # the next cluster starts alone on the machine
}

for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then order=(4.1.0 3.9.1); else order=(3.9.1 4.1.0); fi
  for version in "${order[@]}"; do up_on_line "$version"; done
done
say "EMISSARY LINES, one run, one cluster at a time ($(nproc) cores; linkerd $("$LINKERD" version --client --short)):"
for line in "${RESULTS[@]}"; do say "  $line"; done
