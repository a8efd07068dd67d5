#!/usr/bin/env bash
# e2e/clusters.sh - the processes behind e2e/clusters.py's pytest fixtures (not run by hand): e2e/tier.sh's
# functions, nothing of its own.
#
#   e2e/clusters.sh [--mirror|--full] --check   prints each missing tool (and Emissary's release files, when
#                               missing), one a line; nothing when all are there
#   e2e/clusters.sh READY       the safety tier: cluster `target` (etcd, kube-apiserver, controllers, kwok; services
#                               on 127.0.112.0/24), the webhook watcher (Emissary's apiext where built, and
#                               the empty-Endpoints stand-in; Linkerd's servers are left off: nothing here
#                               needs a meshed pod, and Linkerd runs without HA), a copy of the project
#                               (copy_project) and the engine's environment (use_engine); then writes
#                               READY (NAME=VALUE lines) and waits until it is sent SIGTERM, when it stops
#                               everything it started and removes its scratch folder.
#   e2e/clusters.sh --mirror READY   the mirror tier: clusters `target` and `source` (services on 127.0.113.0/24
#                               and 127.0.114.0/24), the same webhook watcher on each, and the service mirror's
#                               watcher on the source for Link `target` (e2e/mirror.sh: it starts Linkerd's
#                               service mirror once `up` has made the Link), kwok forwarding its admin port
#   e2e/clusters.sh --full READY     the full tier: clusters `target` and `source` (services on 127.0.100.0/24 and
#                               127.0.101.0/24) with every real webhook server that is built (webhook_servers:
#                               Linkerd's three, then linkerdHa true, and Emissary 3.9.1's apiext); READY also
#                               names the servers found (empty: not built) and the Emissary release
#   e2e/clusters.sh --performance UP_S PREVIEW_S   in a running full tier's environment (WORK, PROJECT, KUBECONFIG,
#                               PATH and PULUMI_* from its READY): tier.sh's `performance`, the PERFORMANCE line on
#                               its own fresh API servers, stopped when it returns; exit 1: not measured
#   e2e/clusters.sh --trust READY    the trust tier: clusters `target` and `source` (services on 127.0.115.0/24 and
#                               127.0.116.0/24), the webhook watcher on each with Linkerd's proxy injector (the meshed
#                               pods carry a real proxy and its roots' hash; Linkerd without HA) and Linkerd's identity
#                               controller, one process per identity pod (e2e/identity.sh)
set -euo pipefail
# shellcheck source=e2e/tier.sh
. "$(dirname "$0")/tier.sh"
mode=safety
case "${1:-}" in --mirror | --full | --trust | --performance) mode=${1#--}; shift ;; esac
tier_init "${mode/performance/full}"
LINKERD=$B/linkerd-edge-26.8.3
find_tools "$LINKERD"
if [ "$mode" = mirror ]; then
  mirror_check 2>/dev/null
  [ -n "$MIRROR_BINARY" ] || MISSING+=("$B/linkerd-controller-edge-26.8.3 (its service-mirror; and unshare --mount, as root)")
fi
if [ "$mode" = trust ]; then
  identity_check 2>/dev/null
  [ -n "$WEBHOOK_IDENTITY" ] || MISSING+=("$B/linkerd-controller-edge-26.8.3 (its identity and proxy-injector; and unshare --mount, as root)")
fi
if [ "${1:-}" = --check ]; then
  reference=$( (emissary_files) 2>&1 ) || MISSING+=("${reference#\[*\] }")
  [ ${#MISSING[@]} -eq 0 ] || printf '%s\n' "${MISSING[@]}"
  exit 0
fi
stop_if_missing "${TIER^^} TIER NOT RUN (e2e/clusters.sh): these tools are missing:"
emissary_files
# Each process stopped before the one it talks to (etcd last): all at once, the API server's shutdown
# waits on requests to a gone etcd (20 s and more).
stop_in_order() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null && wait "${PIDS[i]}" 2>/dev/null || true; done
  PIDS=()
}
if [ "$mode" = performance ]; then
  PIDS=()
  trap stop_in_order EXIT
  webhook_servers  # which servers are built (for the bench clusters), none started here
  performance "$1" "$2"
  exit
fi
ready=$1
start_work
trap 'stop_in_order; exit 143' TERM INT  # start_work's EXIT trap then removes WORK
case $mode in
  mirror)
    webhooks_check 2>/dev/null
    WEBHOOK_INJECTOR="" WEBHOOK_SP_VALIDATOR="" WEBHOOK_POLICY="" WEBHOOK_LINKERD_HA=false
    mirror_port=$(free_port)
    mirror_forward "$mirror_port"
    start_cluster target 127.0.113.0/24 127.13.0.0/16
    start_cluster source 127.0.114.0/24 127.14.0.0/16
    check_loopback target; check_loopback source
    kubelet_endpoints source
    serve_webhooks target; serve_webhooks source
    serve_mirror source target "$mirror_port" ;;
  trust)
    webhooks_check 2>/dev/null
    # The proxy injector alone of Linkerd's webhook servers (Linkerd without HA), and the identity controller.
    WEBHOOK_SP_VALIDATOR="" WEBHOOK_POLICY="" WEBHOOK_LINKERD_HA=false
    identity_check
    start_cluster target 127.0.115.0/24 127.15.0.0/16
    start_cluster source 127.0.116.0/24 127.16.0.0/16
    check_loopback target; check_loopback source
    serve_webhooks target; serve_webhooks source ;;
  full)
    start_cluster target 127.0.100.0/24 127.1.0.0/16
    start_cluster source 127.0.101.0/24 127.2.0.0/16
    check_loopback target; check_loopback source
    say "$("$B/kube-apiserver" --version), 3 kwok nodes each, services on 127.0.100.0/24 and 127.0.101.0/24"
    webhook_servers target source ;;
  *)
    webhooks_check 2>/dev/null
    WEBHOOK_INJECTOR="" WEBHOOK_SP_VALIDATOR="" WEBHOOK_POLICY="" WEBHOOK_LINKERD_HA=false
    start_cluster target 127.0.112.0/24 127.12.0.0/16
    check_loopback target
    serve_webhooks target ;;
esac
copy_project
use_engine
[ "$mode" = full ] && say_engine
{
  printf 'WORK=%s\nPROJECT=%s\nKUBECONFIG=%s\nKUBECTL=%s\nLINKERD=%s\nAPIEXT=%s\n' \
    "$WORK" "$PROJECT" "$KUBECONFIG" "$B/kubectl" "$LINKERD" "${WEBHOOK_APIEXT:-}"
  printf 'INJECTOR=%s\nSP_VALIDATOR=%s\nPOLICY=%s\nLINKERD_HA=%s\nEMISSARY_VERSION=%s\n' "${WEBHOOK_INJECTOR:-}" \
    "${WEBHOOK_SP_VALIDATOR:-}" "${WEBHOOK_POLICY:-}" "${WEBHOOK_LINKERD_HA:-false}" "$EMISSARY_VERSION"
  [ "$mode" = mirror ] && printf 'MIRROR=%s\nMIRROR_PORT=%s\n' "$MIRROR_BINARY" "$mirror_port"
  [ "$mode" = trust ] && printf 'IDENTITY=%s\n' "$WEBHOOK_IDENTITY"
  env | grep -E '^(PATH|PULUMI_[A-Z_]+)='
} > "$ready.tmp"
mv "$ready.tmp" "$ready"
while :; do sleep 1 & wait $!; done
