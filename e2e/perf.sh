#!/usr/bin/env bash
# The performance half of e2e/test_full.py alone, on one cluster: `up` of the target stack on the real engine
# (driver, Pulumi CLI, providers, language host, linkerd CLI) against the same objects applied with
# `kubectl apply --server-side` + wait on a fresh API server, and a no-change `preview` against
# `kubectl diff`, in the same run. Prints each resource step's start and end (from the driver's progress)
# so the slow chain can be read off. The tools, webhook servers, forced config and kubectl comparison
# are the full tier's (e2e/tier.sh).
#
#   e2e/perf.sh                          about 3 minutes on 2 cores
#   e2e/perf.sh --skip-if-missing        exits 0 instead of 2 when a tool is missing, after saying so loudly
#   PERF_LOG=up.log e2e/perf.sh          keeps the driver's progress of `up` there
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
start_cluster target 127.0.100.0/24 127.1.0.0/16
check_loopback target
say "cluster up in $((SECONDS - started))s: $("$B/kube-apiserver" --version), 3 kwok nodes, services on 127.0.100.0/24"
webhook_servers target
copy_project
use_engine
say_engine

t_up=$(driver up --stack target)
target_up_s=$(stack_seconds target "$WORK/up.log")
check_loopback target
[ -z "${PERF_LOG:-}" ] || cp "$WORK/up.log" "$PERF_LOG"  # the driver's progress, one line per step
slowest_steps target "$WORK/up.log"
deployment_times target "$WORK/up.log"
t_preview=$(driver preview --stack target --expect-no-changes)
target_preview_s=$(stack_seconds target "$WORK/preview.log")
performance "$target_up_s" "$target_preview_s"
