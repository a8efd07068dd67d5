#!/usr/bin/env bash
# The performance tier: both stacks through `./aes-linkerd2` on the real engine (driver, Pulumi CLI, providers,
# language host, linkerd CLI) on two local API servers, against the same objects applied with
# `kubectl apply --server-side` + wait on fresh API servers, each pair in the same run:
#   - `up` of fresh stacks (each stack's own seconds, and both through one `./aes-linkerd2 up`), against kubectl
#     all at once (until Available, and until every rollout is done) and in the page's order with its waits;
#   - the no-change `preview` and a second `up`, against `kubectl diff`;
#   - `destroy` (both, the trust anchor too), against `up`.
# Each figure with the machine's load average (/proc/loadavg: 1, 5, 15 minutes). Prints each resource step's start
# and end, each Deployment's API server times and the dependency graph's critical path (e2e/timings.py), so the slow
# chain can be read off. The tools, webhook servers, forced config and kubectl comparison are the full tier's
# (e2e/tier.sh).
#
#   e2e/perf.sh                          about 10 minutes on 2 cores
#   e2e/perf.sh --skip-if-missing        exits 0 instead of 2 when a tool is missing, after saying so loudly
#   PERF_LOG=up.log e2e/perf.sh          keeps the driver's progress of the first `up` there
#   PERF_UP_FLAGS=--skip-checkpoints e2e/perf.sh
#                                        the fresh `up` with these flags of `./aes-linkerd2 up`
#   PERF_UPGRADE_FROM=REV e2e/perf.sh    then, on a fresh target cluster: the target made by the program at git REV,
#                                        previewed and updated by this one: the plan's replacements and deletions,
#                                        and whether the update rolled Edge Stack (its Deployment's generation)
set -euo pipefail
# shellcheck source=e2e/tier.sh
. "$(dirname "$0")/tier.sh"
tier_init perf "$@"
LINKERD=$B/linkerd-edge-26.8.3
find_tools "$LINKERD"
stop_if_missing "PERFORMANCE TIER NOT RUN (e2e/perf.sh): these tools are missing:"
emissary_files
start_work

started=$SECONDS
first=${#PIDS[@]}
start_cluster target 127.0.100.0/24 127.1.0.0/16
TARGET_PIDS=("${PIDS[@]:first}")  # upgrade_check replaces the target cluster with a fresh one
start_cluster source 127.0.101.0/24 127.2.0.0/16
check_loopback target
check_loopback source
say "clusters up in $((SECONDS - started))s: $("$B/kube-apiserver" --version), 3 kwok nodes each, services on 127.0.100.0/24 and 127.0.101.0/24"
first=${#PIDS[@]}
webhook_servers target
TARGET_PIDS+=("${PIDS[@]:first}")
webhook_servers source
copy_project
use_engine
say_engine

declare -A UP UP2 PREVIEW DESTROY
figure() {  # figure NAME SECONDS: one line, with the load average now
  say "FIGURE $1: ${2}s (load $(load_now))"
}

# shellcheck disable=SC2086 # the flags are words
both_up=$(driver up ${PERF_UP_FLAGS:-})
[ -z "${PERF_UP_FLAGS:-}" ] || say "the fresh up ran with: $PERF_UP_FLAGS"
both_up_load=$(load_now)
cp "$WORK/up.log" "$WORK/up-fresh.log"
[ -z "${PERF_LOG:-}" ] || cp "$WORK/up.log" "$PERF_LOG"  # the driver's progress, one line per step
for stack in target source; do
  UP[$stack]=$(stack_seconds "$stack" "$WORK/up-fresh.log")
  say "FIGURE $stack up (fresh): ${UP[$stack]}s (load $both_up_load)"
done
say "FIGURE both stacks up (./aes-linkerd2 up, set-up and pre-flight included): ${both_up}s (load $both_up_load)"
check_loopback target
check_loopback source
for stack in target source; do
  slowest_steps "$stack" "$WORK/up-fresh.log"
  deployment_times "$stack" "$WORK/up-fresh.log"
  critical_path "$stack" "$WORK/up-fresh.log"
done

both_preview=$(driver preview --expect-no-changes)
for stack in target source; do
  PREVIEW[$stack]=$(stack_seconds "$stack" "$WORK/preview.log")
  figure "$stack no-change preview" "${PREVIEW[$stack]}"
done
both_up2=$(driver up --expect-no-changes)
for stack in target source; do
  UP2[$stack]=$(stack_seconds "$stack" "$WORK/up.log")
  figure "$stack second up" "${UP2[$stack]}"
done
figure "both stacks second up" "$both_up2"
both_destroy=$(driver destroy --delete-trust-anchor)
for stack in target source; do
  DESTROY[$stack]=$(stack_seconds "$stack" "$WORK/destroy.log")
  figure "$stack destroy" "${DESTROY[$stack]}"
done
figure "both stacks destroy" "$both_destroy"
say "(both stacks preview: ${both_preview}s)"

declare -A BENCH
for stack in target source; do
  if kubectl_bench "$stack"; then
    BENCH[$stack]="$kubectl_apply_s $kubectl_rollout_s $kubectl_page_s $kubectl_diff_s"
    say "FIGURE $stack kubectl all at once until Available: ${kubectl_apply_s}s (load $kubectl_apply_load)"
    say "FIGURE $stack kubectl all at once until every rollout done: ${kubectl_rollout_s}s (load $kubectl_rollout_load)"
    say "FIGURE $stack kubectl in the page's order, every rollout done: ${kubectl_page_s}s (load $kubectl_page_load)"
    say "FIGURE $stack kubectl diff: ${kubectl_diff_s}s (load $kubectl_diff_load)"
  else
    say "PERFORMANCE NOT MEASURED: the kubectl comparison of $stack failed (see $WORK/render-$stack.log and the bench clusters' logs)"
    exit 1
  fi
done

python3 - "${BENCH[target]}" "${BENCH[source]}" "${UP[target]}" "${UP[source]}" "$both_up" "${PREVIEW[target]}" \
  "${PREVIEW[source]}" "${UP2[target]}" "${UP2[source]}" "${DESTROY[target]}" "${DESTROY[source]}" <<'EOF' >&2
import sys
bench = {stack: [float(x) for x in sys.argv[i].split()] for i, stack in ((1, "target"), (2, "source"))}
up = {"target": float(sys.argv[3]), "source": float(sys.argv[4])}
both_up = float(sys.argv[5])
preview = {"target": float(sys.argv[6]), "source": float(sys.argv[7])}
up2 = {"target": float(sys.argv[8]), "source": float(sys.argv[9])}
destroy = {"target": float(sys.argv[10]), "source": float(sys.argv[11])}
rows = []
for stack in ("target", "source"):
    apply_s, rollout_s, page_s, diff_s = bench[stack]
    rows.append(
        f"[perf] PERFORMANCE {stack}: up {up[stack]:.1f}s vs kubectl page order {page_s:.1f}s ({up[stack] / page_s:.2f}x),"
        f" all at once until Available {apply_s:.1f}s ({up[stack] / apply_s:.2f}x), until every rollout done {rollout_s:.1f}s"
        f" ({up[stack] / rollout_s:.2f}x); no-change preview {preview[stack]:.1f}s and second up {up2[stack]:.1f}s vs kubectl"
        f" diff {diff_s:.1f}s ({preview[stack] / diff_s:.2f}x, {up2[stack] / diff_s:.2f}x); destroy {destroy[stack]:.1f}s"
        f" ({destroy[stack] / up[stack]:.2f}x up)"
    )
page = bench["target"][2] + bench["source"][2]
rollout = bench["target"][1] + bench["source"][1]
rows.append(
    f"[perf] PERFORMANCE both stacks: ./aes-linkerd2 up {both_up:.1f}s vs the two kubectl baselines added up: page order"
    f" {page:.1f}s ({both_up / page:.2f}x), all at once until every rollout done {rollout:.1f}s ({both_up / rollout:.2f}x)"
)
print("\n".join(rows))
EOF

# Last: it replaces the target cluster, and its figures are not the performance's.
[ -z "${PERF_UPGRADE_FROM:-}" ] || upgrade_check "$PERF_UPGRADE_FROM"
