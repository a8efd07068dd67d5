#!/usr/bin/env bash
# Two revisions of the program timed against each other: the target's fresh `up`, a no-change `preview`, a second
# `up` and then `destroy --delete-trust-anchor`, each round on a fresh local API server with e2e/test_full.py's webhook
# servers and forced config, the project taken from git at the revision (`git archive`: committed files only). One
# cluster at a time, so the two never share the machine; the order swaps each round (A B, B A, ...), so a drift in the
# machine's load falls on both; the load is printed with each figure, and where the CPU went through each fresh `up`
# (e2e/cpu.py: the busiest processes by name). For "measure before and after each change" (issue 22) without the
# 10 minutes of e2e/perf.sh.
#
#   e2e/ab.sh REV_A REV_B                     about 3 minutes a round on 2 cores
#   AB_ROUNDS=2 e2e/ab.sh main my-branch      twice each, ABBA
#   e2e/ab.sh REV_A REV_B --skip-if-missing   exits 0 instead of 2 when a tool is missing, after saying so
set -euo pipefail
# shellcheck source=e2e/tier.sh
. "$(dirname "$0")/tier.sh"
tier_init ab "${3:-}"
if [ $# -lt 2 ]; then
  say "usage: e2e/ab.sh REV_A REV_B [--skip-if-missing]"
  exit 2
fi
declare -A SHA
for rev in "$1" "$2"; do
  SHA[$rev]=$(git rev-parse --verify --quiet "$rev^{commit}") || { say "not a git revision here: $rev"; exit 2; }
done
LINKERD=$B/linkerd-edge-26.8.3
find_tools "$LINKERD"
(emissary_files) 2>/dev/null || MISSING+=("Emissary ${E2E_EMISSARY:-4.1.0}'s release files in E2E_REFERENCE")
stop_if_missing "TWO REVISIONS NOT TIMED (e2e/ab.sh): these are missing:"
emissary_files
start_rounds "${AB_ROUNDS:-}" AB_ROUNDS

# up_and_destroy REV: a fresh target cluster, the project at REV, `up`, a no-change `preview`, a second `up`, then
# `destroy --delete-trust-anchor`.
up_and_destroy() {
  local rev=$1 up_s preview_s up2_s destroy_s up_load preview_load up2_load destroy_load up_began up_ended
  WORK=$BASE/${SHA[$rev]:0:12}-$round
  mkdir -p "$WORK"
  export KUBECONFIG=$WORK/kubeconfig
  start_cluster target 127.0.100.0/24 127.1.0.0/16
  check_loopback target
  webhook_servers target
  PROJECT=$WORK/project
  mkdir -p "$PROJECT"
  git archive "${SHA[$rev]}" | tar -xf - -C "$PROJECT"
  force_config "$PROJECT"
  use_engine
  "$ROOT/venv/bin/python" "$ROOT/e2e/cpu.py" sample "$WORK/cpu.jsonl" &  # stopped with the round's cluster
  PIDS+=($!)
  up_load=$(load_now)
  up_began=$(date +%s.%N)
  driver up --stack target >/dev/null
  up_ended=$(date +%s.%N)
  up_s=$(stack_seconds target "$WORK/up.log")
  mv "$WORK/up.log" "$WORK/first-up.log"
  preview_load=$(load_now)
  driver preview --stack target --expect-no-changes >/dev/null
  preview_s=$(stack_seconds target "$WORK/preview.log")
  up2_load=$(load_now)
  driver up --stack target >/dev/null
  up2_s=$(stack_seconds target "$WORK/up.log")
  destroy_load=$(load_now)
  driver destroy --stack target --delete-trust-anchor >/dev/null
  destroy_s=$(stack_seconds target "$WORK/destroy.log")
  RESULTS+=("$rev (${SHA[$rev]:0:12}), round $round: up ${up_s}s (load $up_load), no-change preview ${preview_s}s (load $preview_load), second up ${up2_s}s (load $up2_load), destroy ${destroy_s}s (load $destroy_load)")
  RESULTS+=("  through ./aes-linkerd2 up, $("$ROOT/venv/bin/python" "$ROOT/e2e/cpu.py" window "$WORK/cpu.jsonl" "$up_began" "$up_ended")")
  end_round  # the next cluster starts alone on the machine
}

for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then order=("$1" "$2"); else order=("$2" "$1"); fi
  for rev in "${order[@]}"; do up_and_destroy "$rev"; done
done
say "TWO REVISIONS, the target's up, preview, second up and destroy, one cluster at a time ($(nproc) cores, Emissary $EMISSARY_VERSION):"
for line in "${RESULTS[@]}"; do say "  $line"; done
