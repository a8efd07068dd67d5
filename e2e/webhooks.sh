#!/usr/bin/env bash
# e2e/webhooks.sh - the real webhook servers of the local clusters, as local processes on their
# Services' loopback ClusterIPs (the API server calls a webhook at ClusterIP:443; the service
# ranges of e2e/cluster.sh are inside 127.0.0.0/8, so that call ends here).
#
#   e2e/webhooks.sh --check      says which hand-built servers are in the tool cache; exits 1 if any is missing
#
# Sourced by e2e/tier.sh (needs $B, $WORK, $CACHE and the PIDS array the caller kills on exit):
#   webhooks_check               sets WEBHOOK_INJECTOR / WEBHOOK_SP_VALIDATOR / WEBHOOK_POLICY / WEBHOOK_APIEXT
#                                to the binaries found (empty when missing), says LOUDLY what is not served,
#                                and sets WEBHOOK_LINKERD_HA=true only when all three of Linkerd's are served
#   serve_webhooks NAME          a watcher for cluster NAME: as soon as a webhook's Service (and what its pod
#                                would mount or read) exist, it starts that server bound to exactly the
#                                ClusterIP; refuses anything off loopback
#   webhooks_ready NAME          waits until NAME's servers run and apiext's CA is in the CRDs
# e2e/test_full.py checks that each server started answered the API server ($WORK/NAME/webhooks: state, pids, logs).
#
# The servers (hand-built into the cache, never committed; CONTRIBUTING.md says how):
#   linkerd-controller-edge-26.8.3 proxy-injector | sp-validator   Linkerd's controller binary. Both read
#       their cert (and the injector linkerd-config's values and the trust roots) from fixed paths under
#       /var/run/linkerd, so each runs in its own mount namespace with the cluster's copies bind-mounted
#       on /run. The injector's trust roots follow the ConfigMap through a watch (_watch_roots).
#   linkerd-policy-controller-edge-26.8.3   Linkerd's policy controller (Rust, policy-controller/ at the
#       tag): the policy validator's admission server, with the container's own args read from the live
#       linkerd-destination Deployment. Its cert paths are args. It dials only the API server (the
#       kubeconfig's, on 127.0.0.1): --cluster-domain and --identity-domain only name things in its
#       answers, --cluster-networks and --probe-networks only classify addresses; it listens on the
#       ClusterIP (443, gRPC 8090, admin 9990) and needs the Deployment (its Lease's owner) to exist.
#   emissary-apiext-loopback-3.9.1   Emissary's apiext (its CA Secret, the CRDs' caBundle patching and
#       the conversion handler, all upstream code) with a main that serves on one address instead of
#       :8443 and :8080 on every interface.
#   linkerd-controller-edge-26.8.3 identity   not a webhook: Linkerd's identity controller, one process per
#       running identity pod, when the tier asked for it (identity_check sets WEBHOOK_IDENTITY; e2e/identity.sh).
# shellcheck source=e2e/identity.sh
. "$(dirname "${BASH_SOURCE[0]}")/identity.sh"
INJECTOR_NAMESPACE=linkerd
INJECTOR_SERVICE=linkerd-proxy-injector
INJECTOR_SECRET=linkerd-proxy-injector-k8s-tls
SP_VALIDATOR_SERVICE=linkerd-sp-validator
SP_VALIDATOR_SECRET=linkerd-sp-validator-k8s-tls
POLICY_SERVICE=linkerd-policy-validator
POLICY_SECRET=linkerd-policy-validator-k8s-tls
POLICY_DEPLOYMENT=linkerd-destination
APIEXT_NAMESPACE=emissary-system
APIEXT_SERVICE=emissary-apiext

webhooks_check() {
  local cache=${CACHE:-$HOME/.cache/aes-linkerd2} missing=0 found unserved=()
  WEBHOOK_INJECTOR=$cache/bin/linkerd-controller-edge-26.8.3
  WEBHOOK_SP_VALIDATOR=$WEBHOOK_INJECTOR
  WEBHOOK_POLICY=$cache/bin/linkerd-policy-controller-edge-26.8.3
  WEBHOOK_APIEXT=$cache/bin/emissary-apiext-loopback-3.9.1
  if [ ! -x "$WEBHOOK_INJECTOR" ]; then
    printf '[webhooks] MISSING %s: NOT SHOWN: the proxy injector serving its webhook (no pod is injected)\n' \
      "$WEBHOOK_INJECTOR" >&2
    printf '[webhooks] MISSING %s: NOT SHOWN: the ServiceProfile validator (linkerd-sp-validator)\n' "$WEBHOOK_INJECTOR" >&2
    WEBHOOK_INJECTOR=""; WEBHOOK_SP_VALIDATOR=""; missing=1
    unserved+=("linkerd-proxy-injector and linkerd-sp-validator (no $cache/bin/linkerd-controller-edge-26.8.3)")
  fi
  if [ ! -x "$WEBHOOK_POLICY" ]; then
    printf '[webhooks] MISSING %s: NOT SHOWN: the policy validator (linkerd-policy-validator)\n' "$WEBHOOK_POLICY" >&2
    unserved+=("linkerd-policy-validator (no $WEBHOOK_POLICY)")
    WEBHOOK_POLICY=""; missing=1
  fi
  if [ ! -x "$WEBHOOK_APIEXT" ]; then
    printf '[webhooks] MISSING %s: NOT SHOWN: Emissary'"'"'s conversion webhook; a STAND-IN of its CRDs stores v3alpha1\n' \
      "$WEBHOOK_APIEXT" >&2
    WEBHOOK_APIEXT=""; missing=1
  fi
  [ "$missing" = 0 ] || printf '[webhooks] build them as CONTRIBUTING.md says (hand-built, in the tool cache)\n' >&2
  for found in $WEBHOOK_INJECTOR $WEBHOOK_POLICY $WEBHOOK_APIEXT; do printf '[webhooks] found %s\n' "$found" >&2; done
  # HA's three Linkerd webhooks fail closed (failurePolicy Fail): HA only when every one is served.
  WEBHOOK_LINKERD_HA=true
  if [ ${#unserved[@]} -gt 0 ]; then
    WEBHOOK_LINKERD_HA=false
    printf '[webhooks] LINKERD HA OFF: HA'"'"'s webhooks fail closed and nothing would serve %s\n' "${unserved[*]}" >&2
  fi
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
    if path.endswith("ca-bundle.crt") and os.path.exists(path):
        continue  # once written, _watch_roots keeps the roots: a slower poll must not put an older copy back
    with open(path + ".new", "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(body)
    os.replace(path + ".new", path)
' "$run" "$INJECTOR_SECRET"
}

# The trust roots the injector reads at each admission, written as soon as the API server's watch says they changed.
# On a cluster the program restarts a workload only after the injector's own pods rolled with the new roots; here the
# injector is one process that never rolls, and the poll of the watcher below (every other tick, seconds under load)
# once let a restart right after a rotation's write be admitted with the old bundle. One process (python, its kubectl
# watch its child), its pid with the servers': killed with them. A watch the server ends is opened again.
_watch_roots() {  # _watch_roots NAME
  python3 -u - "$B/kubectl" "$WORK/$1/kubeconfig" "$INJECTOR_NAMESPACE" \
    "$WORK/$1/webhooks/run/linkerd/identity/trust-roots/ca-bundle.crt" <<'EOF_ROOTS' &
import json, os, signal, subprocess, sys, time
kubectl, kubeconfig, namespace, path = sys.argv[1:5]
child = None
def stop(*_):
    if child is not None:
        child.kill()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
decoder = json.JSONDecoder()
while True:
    child = subprocess.Popen([kubectl, "--kubeconfig", kubeconfig, "get", "-n", namespace,
                              "configmap/linkerd-identity-trust-roots", "--watch", "-o", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    buffer = ""
    for line in child.stdout:
        buffer += line
        try:
            found, end = decoder.raw_decode(buffer.lstrip())
        except ValueError:
            continue  # an object not yet whole
        buffer = buffer.lstrip()[end:]
        body = ((found.get("data") or {}).get("ca-bundle.crt") or "").encode()
        if body and not (os.path.exists(path) and open(path, "rb").read() == body):
            with open(path + ".new", "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
                out.write(body)
            os.replace(path + ".new", path)
    child.wait()
    time.sleep(1)
EOF_ROOTS
  echo $! >> "$WORK/$1/webhooks/pids"
}

# A webhook's TLS Secret as tls.crt/tls.key in DIR, each replaced only when it changed.
_tls_files() {  # _tls_files NAME SECRET DIR
  "$B/kubectl" --kubeconfig "$WORK/$1/kubeconfig" get -n "$INJECTOR_NAMESPACE" "secret/$2" --ignore-not-found -o json \
    2>/dev/null | python3 -c '
import base64, json, os, sys
try:
    data = json.load(sys.stdin)["data"]
except (ValueError, KeyError):  # not there yet (or gone at destroy): the caller tries again
    sys.exit(1)
os.makedirs(sys.argv[1], mode=0o700, exist_ok=True)
for name in ("tls.crt", "tls.key"):
    path, body = os.path.join(sys.argv[1], name), base64.b64decode(data[name])
    if os.path.exists(path) and open(path, "rb").read() == body:
        continue
    with open(path + ".new", "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(body)
    os.replace(path + ".new", path)
' "$3"
}

# The policy container's args from the live Deployment (what the chart rendered), its listening
# addresses moved to the ClusterIP and its cert paths to our copies, NUL-separated in OUT. Refuses an
# argument it does not know (from the chart at the tag): anything new could name something to dial.
_policy_args() {  # _policy_args NAME IP TLS_DIR OUT
  "$B/kubectl" --kubeconfig "$WORK/$1/kubeconfig" get -n "$INJECTOR_NAMESPACE" "deploy/$POLICY_DEPLOYMENT" \
    --ignore-not-found -o json 2>/dev/null | python3 -c '
import json, sys
ip, tls, out = sys.argv[1:4]
try:
    deployment = json.load(sys.stdin)
except ValueError:  # not there yet
    sys.exit(1)
containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
def refuse(message):  # exit 2: the watcher gives up on this server
    print(f"[webhooks] REFUSING the policy controller: {message}", file=sys.stderr)
    sys.exit(2)
if "policy" not in containers:
    refuse("the Deployment has no policy container")
moved = {"--admin-addr": f"{ip}:9990", "--grpc-addr": f"{ip}:8090", "--server-addr": f"{ip}:443",
         "--server-tls-key": f"{tls}/tls.key", "--server-tls-certs": f"{tls}/tls.crt"}
kept = {"--control-plane-namespace", "--cluster-networks", "--identity-domain", "--cluster-domain", "--default-policy",
        "--log-level", "--log-format", "--default-opaque-ports", "--global-egress-network-namespace", "--probe-networks"}
args = []
for arg in containers["policy"]["args"]:
    name, _, value = arg.partition("=")
    if name in moved:
        args.append(f"{name}={moved.pop(name)}")
    elif name in kept:
        args.append(arg)
    else:
        refuse(f"unknown argument {arg!r}")
if moved:
    refuse(f"the policy container lacks {sorted(moved)}")
open(out, "w").write("\0".join(args) + "\0")
' "$2" "$3" "$4"
}

_start_injector() {  # _start_injector NAME IP
  local name=$1 ip=$2 dir=$WORK/$1/webhooks
  # A private mount namespace: the bind mount on /run is seen by this process only.
  unshare --mount --propagation private -- /bin/sh -c 'mount --bind "$1" /run && shift && exec "$@"' sh \
    "$dir/run" "$WEBHOOK_INJECTOR" proxy-injector -addr "$ip:443" -metrics-addr "$ip:9995" \
    -kubeconfig "$WORK/$name/kubeconfig" -linkerd-namespace "$INJECTOR_NAMESPACE" -log-level info \
    > "$dir/proxy-injector.log" 2>&1 &
  echo $! >> "$dir/pids"; echo $! > "$dir/proxy-injector.pid"
  printf '[webhooks] %s: Linkerd'"'"'s proxy injector (pid %s) serves %s/%s on %s:443\n' "$name" "$!" \
    "$INJECTOR_NAMESPACE" "$INJECTOR_SERVICE" "$ip" >&2
}

_start_sp_validator() {  # _start_sp_validator NAME IP
  local name=$1 ip=$2 dir=$WORK/$1/webhooks
  unshare --mount --propagation private -- /bin/sh -c 'mount --bind "$1" /run && shift && exec "$@"' sh \
    "$dir/sp-run" "$WEBHOOK_SP_VALIDATOR" sp-validator -addr "$ip:443" -metrics-addr "$ip:9997" \
    -kubeconfig "$WORK/$name/kubeconfig" -log-level info > "$dir/sp-validator.log" 2>&1 &
  echo $! >> "$dir/pids"; echo $! > "$dir/sp-validator.pid"
  printf '[webhooks] %s: Linkerd'"'"'s ServiceProfile validator (pid %s) serves %s/%s on %s:443\n' "$name" "$!" \
    "$INJECTOR_NAMESPACE" "$SP_VALIDATOR_SERVICE" "$ip" >&2
}

_start_policy() {  # _start_policy NAME IP: 1 while the Deployment is not there yet, 2 when its args are refused
  local name=$1 ip=$2 dir=$WORK/$1/webhooks args=() rc=0
  _policy_args "$name" "$ip" "$dir/policy-tls" "$dir/policy.args" || rc=$?
  [ "$rc" = 0 ] || return "$rc"
  mapfile -d '' args < "$dir/policy.args"
  # HOSTNAME: the Lease claimant (a pod's name in the cluster).
  HOSTNAME=linkerd-destination-loopback "$WEBHOOK_POLICY" "${args[@]}" --kubeconfig "$WORK/$name/kubeconfig" \
    >> "$dir/policy.log" 2>&1 &
  echo $! >> "$dir/pids"; echo $! > "$dir/policy.pid"
  printf '[webhooks] %s: Linkerd'"'"'s policy controller (pid %s) serves %s/%s on %s:443\n' "$name" "$!" \
    "$INJECTOR_NAMESPACE" "$POLICY_SERVICE" "$ip" >&2
}

_start_apiext() {  # _start_apiext NAME IP
  local name=$1 ip=$2 dir=$WORK/$1/webhooks
  KUBECONFIG=$WORK/$name/kubeconfig "$WEBHOOK_APIEXT" "$APIEXT_NAMESPACE" "$APIEXT_SERVICE" "$ip:443" \
    > "$dir/apiext.log" 2>&1 &
  echo $! >> "$dir/pids"
  printf '[webhooks] %s: Emissary'"'"'s apiext (pid %s) serves %s/%s on %s:443\n' "$name" "$!" \
    "$APIEXT_NAMESPACE" "$APIEXT_SERVICE" "$ip" >&2
}

# STAND-IN for what kwok cannot give: the API server refuses its loopback pod IPs in Endpoints, so the
# endpoints controller never creates the Endpoints of a Service whose pods already had IPs when it was
# created (in HA, the proxy injector's, often). pulumi-kubernetes 4.25 awaits a selector Service until
# its Endpoints object has been seen and settled 10 s: without one it waits out its 10-minute timeout
# (then passes). An empty Endpoints object is what the controller makes for a Service with no pod IPs
# yet; owned by its Service, it goes with it.
_endpoints_stand_in() {  # _endpoints_stand_in NAME
  "$B/kubectl" --kubeconfig "$WORK/$1/kubeconfig" get svc,endpoints -A -o json 2>/dev/null | python3 -c '
import json, sys
try:
    items = json.load(sys.stdin)["items"]
except (ValueError, KeyError):
    sys.exit(0)
have = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items if i["kind"] == "Endpoints"}
missing = [
    {"apiVersion": "v1", "kind": "Endpoints",
     "metadata": {"name": s["metadata"]["name"], "namespace": s["metadata"]["namespace"],
                  "labels": {"e2e.aes-linkerd2/stand-in": "empty-endpoints"},
                  "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": s["metadata"]["name"],
                                       "uid": s["metadata"]["uid"]}]}}
    for s in items
    if s["kind"] == "Service" and s["spec"].get("selector") and s["spec"].get("clusterIP") != "None"
    and s["spec"].get("type") != "ExternalName" and "deletionTimestamp" not in s["metadata"]
    and (s["metadata"]["namespace"], s["metadata"]["name"]) not in have
]
if missing:
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": missing}))
' > "$WORK/$1/webhooks/endpoints.json" || return 0
  [ -s "$WORK/$1/webhooks/endpoints.json" ] || return 0
  "$B/kubectl" --kubeconfig "$WORK/$1/kubeconfig" create -f "$WORK/$1/webhooks/endpoints.json" 2>/dev/null \
    | sed "s/^/[webhooks] $1: STAND-IN empty /" >&2
  return 0
}

# The watcher: polls every second until every server runs, then keeps their files current.
# It stops its servers when it is stopped (the caller kills it by its pid).
# Each server's state: off (not built), wanted, started or refused; in $dir/state, in this order.
_watch_webhooks() {
  local name=$1 dir=$WORK/$1/webhooks ip tick=0 rc
  local injector=${WEBHOOK_INJECTOR:+wanted} apiext=${WEBHOOK_APIEXT:+wanted}
  local spv=${WEBHOOK_SP_VALIDATOR:+wanted} policy=${WEBHOOK_POLICY:+wanted}
  injector=${injector:-off} apiext=${apiext:-off} spv=${spv:-off} policy=${policy:-off}
  set +e  # a failed poll (the API server busy or gone) must not end the watcher and orphan its servers
  # shellcheck disable=SC2046  # one pid a line
  trap '[ -f "$dir/pids" ] && kill $(cat "$dir/pids") 2>/dev/null; identity_stop_all "$name"; exit 0' TERM INT
  while :; do
    if [ "$injector" = wanted ]; then
      ip=$(_cluster_ip "$name" "$INJECTOR_NAMESPACE" "$INJECTOR_SERVICE")
      if [ -n "$ip" ] && ! _on_loopback "$ip"; then
        printf '[webhooks] REFUSING: %s/%s has ClusterIP %s, off loopback\n' "$name" "$INJECTOR_SERVICE" "$ip" >&2
        injector=refused
      elif [ -n "$ip" ] && _injector_files "$name"; then
        _start_injector "$name" "$ip"; _watch_roots "$name"; injector=started
      fi
    # Its cert and linkerd-config's values, refreshed every other tick; its roots follow a watch (_watch_roots).
    elif [ "$injector" = started ] && [ $((tick % 2)) = 0 ]; then
      _injector_files "$name" || true
    fi
    if [ "$spv" = wanted ]; then
      ip=$(_cluster_ip "$name" "$INJECTOR_NAMESPACE" "$SP_VALIDATOR_SERVICE")
      if [ -n "$ip" ] && ! _on_loopback "$ip"; then
        printf '[webhooks] REFUSING: %s/%s has ClusterIP %s, off loopback\n' "$name" "$SP_VALIDATOR_SERVICE" "$ip" >&2
        spv=refused
      elif [ -n "$ip" ] && _tls_files "$name" "$SP_VALIDATOR_SECRET" "$dir/sp-run/linkerd/tls"; then
        _start_sp_validator "$name" "$ip"; spv=started
      fi
    elif [ "$spv" = started ] && [ $((tick % 10)) = 0 ]; then
      _tls_files "$name" "$SP_VALIDATOR_SECRET" "$dir/sp-run/linkerd/tls" || true
    fi
    if [ "$policy" = wanted ]; then
      ip=$(_cluster_ip "$name" "$INJECTOR_NAMESPACE" "$POLICY_SERVICE")
      if [ -n "$ip" ] && ! _on_loopback "$ip"; then
        printf '[webhooks] REFUSING: %s/%s has ClusterIP %s, off loopback\n' "$name" "$POLICY_SERVICE" "$ip" >&2
        policy=refused
      elif [ -n "$ip" ] && _tls_files "$name" "$POLICY_SECRET" "$dir/policy-tls"; then
        rc=0; _start_policy "$name" "$ip" || rc=$?
        case $rc in 0) policy=started ;; 2) policy=refused ;; esac
      fi
    elif [ "$policy" = started ] && [ $((tick % 10)) = 0 ]; then
      _tls_files "$name" "$POLICY_SECRET" "$dir/policy-tls" || true
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
    _endpoints_stand_in "$name"
    [ -z "${WEBHOOK_IDENTITY:-}" ] || [ $((tick % 2)) != 0 ] || identity_tick "$name"
    echo "$injector $apiext $spv $policy" > "$dir/state"
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
  [ -n "${WEBHOOK_INJECTOR}${WEBHOOK_POLICY}${WEBHOOK_APIEXT}${WEBHOOK_IDENTITY:-}" ] || return 0
  _watch_webhooks "$name" &
  PIDS+=($!)
}

# Every server runs for NAME and apiext has patched its CA into the CRDs: what Emissary's install
# waits for (the emissary-apiext Deployment available) before any getambassador.io object.
webhooks_ready() {
  local name=$1 injector apiext spv policy ok server
  for _ in $(seq 120); do
    read -r injector apiext spv policy < "$WORK/$name/webhooks/state" 2>/dev/null || injector=none; ok=true
    for server in "$injector" "$spv" "$policy"; do
      [ "$server" = off ] || [ "$server" = started ] || ok=false
    done
    if [ -n "$WEBHOOK_APIEXT" ]; then
      [ "$apiext" = started ] && [ -n "$("$B/kubectl" --kubeconfig "$WORK/$name/kubeconfig" get crd modules.getambassador.io \
        -o 'jsonpath={.spec.conversion.webhook.clientConfig.caBundle}' 2>/dev/null)" ] || ok=false
    fi
    $ok && return 0
    sleep 0.5
  done
  printf '[webhooks] FAILED: %s: the webhook servers are not ready (%s)\n' "$name" \
    "$(cat "$WORK/$name/webhooks/state" 2>/dev/null)" >&2
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "${1:-}" = --check ] || { echo "usage: $0 --check" >&2; exit 2; }
  webhooks_check
  [ -n "$WEBHOOK_INJECTOR" ] && [ -n "$WEBHOOK_POLICY" ] && [ -n "$WEBHOOK_APIEXT" ]
fi
