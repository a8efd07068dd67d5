#!/usr/bin/env bash
# e2e/webhooks.sh - the real webhook servers of the local clusters, as local processes on their
# Services' loopback ClusterIPs (the API server calls a webhook at ClusterIP:443; the service
# ranges of e2e/cluster.sh are inside 127.0.0.0/8, so that call ends here).
#
#   e2e/webhooks.sh --check      says which hand-built servers are in the tool cache; exits 1 if any is missing
#
# Sourced by e2e/full.sh (needs $B, $WORK, $CACHE and the PIDS array the caller kills on exit):
#   webhooks_check               sets WEBHOOK_INJECTOR / WEBHOOK_APIEXT to the binaries found (empty when
#                                missing) and says LOUDLY what falls back to the forced config
#   serve_webhooks NAME          a watcher for cluster NAME: as soon as a webhook's Service (and, for the
#                                injector, the Secret and ConfigMaps its pod would mount) exist, it starts
#                                that server bound to exactly the ClusterIP; refuses anything off loopback
#   webhooks_ready NAME          waits until NAME's servers run and apiext's CA is in the CRDs
#   webhooks_served NAME         fails unless every server started for NAME answered the API server
#
# The servers (hand-built into the cache, never committed; CONTRIBUTING.md says how):
#   linkerd-controller-edge-26.8.3 proxy-injector   Linkerd's controller binary. It reads its cert,
#       linkerd-config's values and the trust roots from fixed paths under /var/run/linkerd, so each
#       runs in its own mount namespace with the cluster's copies bind-mounted on /run.
#   emissary-apiext-loopback-3.9.1   Emissary's apiext (its CA Secret, the CRDs' caBundle patching and
#       the conversion handler, all upstream code) with a main that serves on one address instead of
#       :8443 and :8080 on every interface.
INJECTOR_NAMESPACE=linkerd
INJECTOR_SERVICE=linkerd-proxy-injector
INJECTOR_SECRET=linkerd-proxy-injector-k8s-tls
APIEXT_NAMESPACE=emissary-system
APIEXT_SERVICE=emissary-apiext

webhooks_check() {
  local cache=${CACHE:-$HOME/.cache/linkerd-aes-e2e} missing=0 found
  WEBHOOK_INJECTOR=$cache/bin/linkerd-controller-edge-26.8.3
  WEBHOOK_APIEXT=$cache/bin/emissary-apiext-loopback-3.9.1
  if [ ! -x "$WEBHOOK_INJECTOR" ]; then
    printf '[webhooks] MISSING %s: NOT SHOWN: the proxy injector serving its webhook (no pod is injected)\n' \
      "$WEBHOOK_INJECTOR" >&2
    WEBHOOK_INJECTOR=""; missing=1
  fi
  if [ ! -x "$WEBHOOK_APIEXT" ]; then
    printf '[webhooks] MISSING %s: NOT SHOWN: Emissary'"'"'s conversion webhook; a STAND-IN of its CRDs stores v3alpha1\n' \
      "$WEBHOOK_APIEXT" >&2
    WEBHOOK_APIEXT=""; missing=1
  fi
  [ "$missing" = 0 ] || printf '[webhooks] build them as CONTRIBUTING.md says (hand-built, in the tool cache)\n' >&2
  for found in $WEBHOOK_INJECTOR $WEBHOOK_APIEXT; do printf '[webhooks] found %s\n' "$found" >&2; done
  return 0
}

_on_loopback() {  # an IPv4 address inside 127.0.0.0/8
  python3 -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network("127.0.0.0/8"))' "$1" \
    2>/dev/null
}

_cluster_ip() {  # _cluster_ip NAME NAMESPACE SERVICE: its ClusterIP, empty while it does not exist
  "$B/kubectl" --kubeconfig "$WORK/$1/kubeconfig" get svc -n "$2" "$3" --ignore-not-found -o 'jsonpath={.spec.clusterIP}'
}

# The files the injector's pod mounts (chart: proxy-injector.yaml), from the live objects; each is
# replaced only when it changed, so the injector's file watcher sees a renewal and nothing else.
_injector_files() {
  local name=$1 run=$WORK/$1/webhooks/run
  "$B/kubectl" --kubeconfig "$WORK/$name/kubeconfig" get -n "$INJECTOR_NAMESPACE" "secret/$INJECTOR_SECRET" \
    configmap/linkerd-config configmap/linkerd-identity-trust-roots --ignore-not-found -o json 2>/dev/null | python3 -c '
import base64, json, os, sys
base = os.path.join(sys.argv[1], "linkerd")
try:
    listed = json.load(sys.stdin)
except ValueError:  # the API server did not answer
    sys.exit(1)
items = {i["kind"] + "/" + i["metadata"]["name"]: i for i in listed.get("items", [])}
wanted = ("Secret/" + sys.argv[2], "ConfigMap/linkerd-config", "ConfigMap/linkerd-identity-trust-roots")
if any(name not in items for name in wanted):
    sys.exit(1)  # not all there yet (or gone at destroy): the caller tries again
secret = items[wanted[0]]["data"]
files = {
    "tls/tls.crt": base64.b64decode(secret["tls.crt"]),
    "tls/tls.key": base64.b64decode(secret["tls.key"]),
    "config/values": items["ConfigMap/linkerd-config"]["data"]["values"].encode(),
    "identity/trust-roots/ca-bundle.crt": items["ConfigMap/linkerd-identity-trust-roots"]["data"]["ca-bundle.crt"].encode(),
}
for path, body in files.items():
    path = os.path.join(base, path)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if os.path.exists(path) and open(path, "rb").read() == body:
        continue
    with open(path + ".new", "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(body)
    os.replace(path + ".new", path)
' "$run" "$INJECTOR_SECRET"
}

_start_injector() {  # _start_injector NAME IP
  local name=$1 ip=$2 dir=$WORK/$1/webhooks
  # A private mount namespace: the bind mount on /run is seen by this process only.
  unshare --mount --propagation private -- /bin/sh -c 'mount --bind "$1" /run && shift && exec "$@"' sh \
    "$dir/run" "$WEBHOOK_INJECTOR" proxy-injector -addr "$ip:443" -metrics-addr "$ip:9995" \
    -kubeconfig "$WORK/$name/kubeconfig" -linkerd-namespace "$INJECTOR_NAMESPACE" -log-level info \
    > "$dir/proxy-injector.log" 2>&1 &
  echo $! >> "$dir/pids"
  printf '[webhooks] %s: Linkerd'"'"'s proxy injector (pid %s) serves %s/%s on %s:443\n' "$name" "$!" \
    "$INJECTOR_NAMESPACE" "$INJECTOR_SERVICE" "$ip" >&2
}

_start_apiext() {  # _start_apiext NAME IP
  local name=$1 ip=$2 dir=$WORK/$1/webhooks
  KUBECONFIG=$WORK/$name/kubeconfig "$WEBHOOK_APIEXT" "$APIEXT_NAMESPACE" "$APIEXT_SERVICE" "$ip:443" \
    > "$dir/apiext.log" 2>&1 &
  echo $! >> "$dir/pids"
  printf '[webhooks] %s: Emissary'"'"'s apiext (pid %s) serves %s/%s on %s:443\n' "$name" "$!" \
    "$APIEXT_NAMESPACE" "$APIEXT_SERVICE" "$ip" >&2
}

# The watcher: polls every second until both servers run, then keeps the injector's files current.
# It stops its servers when it is stopped (the caller kills it by its pid).
_watch_webhooks() {
  local name=$1 dir=$WORK/$1/webhooks ip injector=${WEBHOOK_INJECTOR:+wanted} apiext=${WEBHOOK_APIEXT:+wanted} tick=0
  set +e  # a failed poll (the API server busy or gone) must not end the watcher and orphan its servers
  # shellcheck disable=SC2046  # one pid a line
  trap '[ -f "$dir/pids" ] && kill $(cat "$dir/pids") 2>/dev/null; exit 0' TERM INT
  while :; do
    if [ "$injector" = wanted ]; then
      ip=$(_cluster_ip "$name" "$INJECTOR_NAMESPACE" "$INJECTOR_SERVICE")
      if [ -n "$ip" ] && ! _on_loopback "$ip"; then
        printf '[webhooks] REFUSING: %s/%s has ClusterIP %s, off loopback\n' "$name" "$INJECTOR_SERVICE" "$ip" >&2
        injector=refused
      elif [ -n "$ip" ] && _injector_files "$name"; then
        _start_injector "$name" "$ip"; injector=started
      fi
    elif [ "$injector" = started ] && [ $((tick % 10)) = 0 ]; then
      _injector_files "$name" || true
    fi
    if [ "$apiext" = wanted ]; then
      ip=$(_cluster_ip "$name" "$APIEXT_NAMESPACE" "$APIEXT_SERVICE")
      if [ -n "$ip" ] && ! _on_loopback "$ip"; then
        printf '[webhooks] REFUSING: %s/%s has ClusterIP %s, off loopback\n' "$name" "$APIEXT_SERVICE" "$ip" >&2
        apiext=refused
      elif [ -n "$ip" ]; then
        _start_apiext "$name" "$ip"; apiext=started
      fi
    fi
    echo "$injector $apiext" > "$dir/state"
    tick=$((tick + 1))
    sleep 1 & wait $!
  done
}

serve_webhooks() {
  local name=$1 server
  mkdir -p "$WORK/$name/webhooks/run"
  server=$("$B/kubectl" config view --kubeconfig "$WORK/$name/kubeconfig" --minify -o 'jsonpath={.clusters[0].cluster.server}')
  case $server in
    https://127.0.0.1:*) ;;
    *) printf '[webhooks] REFUSING: %s'"'"'s API server is %s, not on loopback\n' "$name" "$server" >&2; return 1 ;;
  esac
  [ -n "${WEBHOOK_INJECTOR}${WEBHOOK_APIEXT}" ] || return 0
  _watch_webhooks "$name" &
  PIDS+=($!)
}

# Both servers run for NAME and apiext has patched its CA into the CRDs: what Emissary's install
# waits for (the emissary-apiext Deployment available) before any getambassador.io object.
webhooks_ready() {
  local name=$1 state ok
  for _ in $(seq 120); do
    state=$(cat "$WORK/$name/webhooks/state" 2>/dev/null || echo "none none"); ok=true
    [ -z "$WEBHOOK_INJECTOR" ] || [ "${state% *}" = started ] || ok=false
    if [ -n "$WEBHOOK_APIEXT" ]; then
      [ "${state#* }" = started ] && [ -n "$("$B/kubectl" --kubeconfig "$WORK/$name/kubeconfig" get crd modules.getambassador.io \
        -o 'jsonpath={.spec.conversion.webhook.clientConfig.caBundle}' 2>/dev/null)" ] || ok=false
    fi
    $ok && return 0
    sleep 0.5
  done
  printf '[webhooks] FAILED: %s: the webhook servers are not ready (%s)\n' "$name" "$state" >&2
  return 1
}

# Every server started answered: the injector logged an admission request it handled, apiext's
# conversion endpoint is what the CRDs call (caBundle patched in, checked on the live CRDs by live.py).
webhooks_served() {
  local name=$1 dir=$WORK/$1/webhooks state
  state=$(cat "$dir/state" 2>/dev/null || echo "none none")
  if [ -n "$WEBHOOK_INJECTOR" ]; then
    [ "${state% *}" = started ] || { printf '[webhooks] FAILED: %s: the proxy injector never started (%s)\n' "$name" "$state" >&2; return 1; }
    grep -q "received " "$dir/proxy-injector.log" \
      || { tail -20 "$dir/proxy-injector.log" >&2; printf '[webhooks] FAILED: %s: the proxy injector handled no request\n' "$name" >&2; return 1; }
  fi
  if [ -n "$WEBHOOK_APIEXT" ]; then
    [ "${state#* }" = started ] || { printf '[webhooks] FAILED: %s: apiext never started (%s)\n' "$name" "$state" >&2; return 1; }
  fi
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "${1:-}" = --check ] || { echo "usage: $0 --check" >&2; exit 2; }
  webhooks_check
  [ -n "$WEBHOOK_INJECTOR" ] && [ -n "$WEBHOOK_APIEXT" ]
fi
