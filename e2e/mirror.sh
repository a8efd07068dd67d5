# e2e/mirror.sh - sourced by e2e/tier.sh: Linkerd's own service mirror for a Link, as a local process
# against the source's loopback API server, as e2e/webhooks.sh runs the webhook servers.
#
#   mirror_check                   MIRROR_BINARY: the hand-built edge-26.8.3 controller (its `service-mirror`
#                                  subcommand, multicluster/cmd/service-mirror at the tag), or "" and a LOUD
#                                  line saying what is missing (the caller skips, as with the webhooks)
#   mirror_forward PORT            before start_cluster: kwok forwards port 9999 (the controller's `ctrl-admin`)
#                                  of the pods in linkerd-multicluster to 127.0.0.1:PORT, where the mirror's
#                                  admin server listens: `linkerd multicluster gateways` reaches it as it would
#                                  a pod (port-forward through the API server and kwok's kubelet server)
#   kubelet_endpoints NAME         NAME's nodes name kwok's kubelet port (the API server dials it to port-forward)
#   serve_mirror NAME LINK PORT    a watcher (its pid in PIDS): once cluster NAME has the multicluster
#                                  extension's `controller-LINK` pod, the Link and its credentials, it starts
#                                  `service-mirror` with that Deployment's own arguments, as that pod's
#                                  ServiceAccount, HOSTNAME the pod's name (the Lease's holder); its log and
#                                  state in $WORK/NAME/mirror; stopped with the watcher
#   mirror_ready NAME              until the mirror runs (1 when it was refused or exited)
#
# Loopback only. Its one listener, the admin server (metrics, /ready, /ping), is given 127.0.0.1:PORT (its
# default is :9999, every interface). It dials: the source's API server (the kubeconfig here), the target's
# (the Link's credentials Secret: refused unless https://127.0.0.1:*), and its gateway probe, which dials the
# probe Service by name (`-probe-service`): in a private mount namespace its /etc/hosts names that Service's
# ClusterIP (what cluster DNS answers in a pod; refused off 127.0.0.0/8) and its /etc/resolv.conf names
# only 127.0.0.1, so no name is ever sent to the machine's resolver. Proxy variables are cleared.

MIRROR_NAMESPACE=linkerd-multicluster
MIRROR_ADMIN_PORT=9999  # the controller Deployment's `ctrl-admin` port, as the chart renders it

mirror_check() {
  MIRROR_BINARY=$B/linkerd-controller-edge-26.8.3
  if [ ! -x "$MIRROR_BINARY" ]; then
    printf '[mirror] MISSING: %s (its service-mirror subcommand; CONTRIBUTING.md: the edge-26.8.3 controller)\n' "$MIRROR_BINARY" >&2
    MIRROR_BINARY=""
  elif ! unshare --mount --propagation private true 2>/dev/null; then
    printf '[mirror] MISSING: unshare --mount (root): the service mirror gets its own /etc/hosts and /etc/resolv.conf\n' >&2
    MIRROR_BINARY=""
  fi
}

mirror_forward() {
  [ -f "$WORK/kwok-stages.yaml" ] || slow_stages
  cat >> "$WORK/kwok-stages.yaml" <<EOF
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata: {name: linkerd-service-mirror-admin}
spec:
  selector: {matchNamespaces: [$MIRROR_NAMESPACE]}
  forwards:
  - ports: [$MIRROR_ADMIN_PORT]
    target: {address: 127.0.0.1, port: $1}
EOF
}

# kwok serves the kubelet API on a free port (cluster.sh: --server-address 127.0.0.1:0); the API server
# reaches a node's kubelet at its address and status.daemonEndpoints' port.
kubelet_endpoints() {
  local name=$1 pid="" port="" node
  pid=$(pgrep -f -- "--kubeconfig $WORK/$name/kubeconfig --manage-all-nodes" | head -1)
  for _ in $(seq 30); do
    [ -n "$pid" ] && port=$(ss -ltnpH | awk -v pid="pid=$pid," '!found && index($0, pid) {n = split($4, a, ":"); print a[n]; found = 1}')
    [ -n "$port" ] && break
    sleep 1
  done
  [ -n "$port" ] || { printf '[mirror] FAILED: %s: kwok (pid %s) listens on no port\n' "$name" "$pid" >&2; return 1; }
  for node in $("$B/kubectl" --context "$name" get nodes -o name); do
    "$B/kubectl" --context "$name" patch "$node" --subresource=status --type=merge \
      -p "{\"status\":{\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":$port}}}}" >/dev/null
  done
}

# What the controller Deployment, its pod, the Link and the probe Service say, as NAME=VALUE lines in OUT;
# exit 1 while something is not there yet, 2 when something is refused (said on stderr). The Deployment's
# arguments are kept only if known (the chart's at the tag): anything new could name something to dial.
_mirror_plan() {  # _mirror_plan NAME LINK OUT
  "$B/kubectl" --context "$1" get -n "$MIRROR_NAMESPACE" deploy,pods,services,links.multicluster.linkerd.io,secrets \
    -o json 2>/dev/null | python3 -c '
import base64, ipaddress, json, re, shlex, sys, yaml
link_name, out = sys.argv[1:3]
def refuse(message):
    print(f"[mirror] REFUSING the service mirror: {message}", file=sys.stderr)
    sys.exit(2)
try:
    items = json.load(sys.stdin)["items"]
except (ValueError, KeyError):
    sys.exit(1)
found = {(i["kind"], i["metadata"]["name"]): i for i in items}
deployment = found.get(("Deployment", f"controller-{link_name}"))
link = found.get(("Link", link_name))
if deployment is None or link is None:
    sys.exit(1)
containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
if "controller" not in containers:
    refuse(f"controller-{link_name} has no controller container")
args = containers["controller"].get("args") or []
if args[:1] != ["service-mirror"] or args[-1:] != [link_name]:
    refuse(f"unexpected arguments {args!r}")
known = {"-log-level", "-log-format", "-event-requeue-limit", "-namespace", "-enable-headless-services",
         "-enable-namespace-creation", "-enable-pprof", "-probe-service", "-excluded-labels", "-excluded-annotations"}
flags = args[1:-1]
for arg in flags:
    if arg.partition("=")[0] not in known:
        refuse(f"unknown argument {arg!r}")
probe = next((a.partition("=")[2] for a in flags if a.startswith("-probe-service=")), "")
if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", probe):
    refuse(f"no usable -probe-service in {flags!r}")
selector = deployment["spec"]["selector"]["matchLabels"]
pods = [i for i in items if i["kind"] == "Pod" and "deletionTimestamp" not in i["metadata"]
        and all((i["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
probe_service = found.get(("Service", probe))
secret = found.get(("Secret", (link.get("spec") or {}).get("clusterCredentialsSecret", "")))
if not pods or probe_service is None or secret is None:
    sys.exit(1)
ip = probe_service["spec"].get("clusterIP", "")
if ipaddress.ip_address(ip) not in ipaddress.ip_network("127.0.0.0/8"):
    refuse(f"the probe Service {probe} has ClusterIP {ip}, off loopback")
credentials = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
servers = [c["cluster"]["server"] for c in credentials.get("clusters") or []]
if not servers or not all(re.fullmatch(r"https://127\.0\.0\.1:\d+", s) for s in servers):
    refuse(f"the Link credentials name API servers {servers!r}, not https://127.0.0.1:PORT")
pod = sorted(p["metadata"]["name"] for p in pods)[0]
account = deployment["spec"]["template"]["spec"].get("serviceAccountName") or "default"
with open(out, "w") as plan:
    for key, value in (("POD", pod), ("ACCOUNT", account), ("PROBE", probe), ("PROBE_IP", ip),
                       ("TARGET_API", servers[0]), ("ARGS", "\t".join(flags))):
        plan.write(f"{key}={shlex.quote(value)}\n")
' "$2" "$3"
}

# A kubeconfig for the pod's ServiceAccount (a short-lived token): the mirror gets only the chart's RBAC.
_mirror_kubeconfig() {  # _mirror_kubeconfig NAME ACCOUNT OUT
  local server token
  server=$("$B/kubectl" config view --context "$1" --minify -o 'jsonpath={.clusters[0].cluster.server}')
  case $server in https://127.0.0.1:*) ;; *) printf '[mirror] REFUSING: %s'"'"'s API server is %s\n' "$1" "$server" >&2; return 2 ;; esac
  token=$("$B/kubectl" --context "$1" create token "$2" -n "$MIRROR_NAMESPACE" --duration 2h) || return 1
  (umask 077 && KUBECONFIG=$3 "$B/kubectl" config set-cluster "$1" --server "$server" --insecure-skip-tls-verify=true >/dev/null \
    && KUBECONFIG=$3 "$B/kubectl" config set-credentials "$2" --token "$token" >/dev/null \
    && KUBECONFIG=$3 "$B/kubectl" config set-context "$1" --cluster "$1" --user "$2" >/dev/null \
    && KUBECONFIG=$3 "$B/kubectl" config use-context "$1" >/dev/null)
}

_start_mirror() {  # _start_mirror NAME LINK PORT: 1 while not ready, 2 when refused
  local name=$1 link=$2 port=$3 dir=$WORK/$1/mirror rc=0 flags=()
  _mirror_plan "$name" "$link" "$dir/plan.env" || rc=$?
  [ "$rc" = 0 ] || return "$rc"
  local POD ACCOUNT PROBE PROBE_IP TARGET_API ARGS
  # shellcheck disable=SC1091
  . "$dir/plan.env"
  IFS=$'\t' read -r -a flags <<< "$ARGS"
  _mirror_kubeconfig "$name" "$ACCOUNT" "$dir/kubeconfig" || return $?
  printf '127.0.0.1 localhost\n%s %s %s.%s %s.%s.svc.cluster.local\n' "$PROBE_IP" "$PROBE" "$PROBE" "$MIRROR_NAMESPACE" \
    "$PROBE" "$MIRROR_NAMESPACE" > "$dir/hosts"
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$dir/resolv.conf"
  env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY HOSTNAME="$POD" \
    unshare --mount --propagation private -- /bin/sh -c \
    'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"' sh \
    "$dir/hosts" "$dir/resolv.conf" "$MIRROR_BINARY" service-mirror "${flags[@]}" -kubeconfig "$dir/kubeconfig" \
    -metrics-addr "127.0.0.1:$port" "$link" > "$dir/service-mirror.log" 2>&1 &
  echo $! > "$dir/service-mirror.pid"
  printf '[mirror] %s: Linkerd'"'"'s service mirror (pid %s) for Link %s as %s/%s (pod %s): %s; admin on 127.0.0.1:%s; target API %s; probe %s -> %s\n' \
    "$name" "$!" "$link" "$MIRROR_NAMESPACE" "$ACCOUNT" "$POD" "${flags[*]}" "$port" "$TARGET_API" "$PROBE" "$PROBE_IP" >&2
}

_watch_mirror() {  # _watch_mirror NAME LINK PORT
  local dir=$WORK/$1/mirror state=waiting rc
  set +e
  trap '[ -f "$dir/service-mirror.pid" ] && kill "$(cat "$dir/service-mirror.pid")" 2>/dev/null; exit 0' TERM INT
  while [ "$state" = waiting ]; do
    rc=0; _start_mirror "$@" || rc=$?
    case $rc in 0) state=started ;; 2) state=refused ;; esac
    echo "$state" > "$dir/state"
    [ "$state" = waiting ] && { sleep 1 & wait $!; }
  done
  while :; do sleep 1 & wait $!; done
}

serve_mirror() {
  local name=$1 link=$2 port=$3
  [ -n "$MIRROR_BINARY" ] || return 0
  mkdir -p "$WORK/$name/mirror"
  echo waiting > "$WORK/$name/mirror/state"
  _watch_mirror "$name" "$link" "$port" &
  PIDS+=($!)
}

mirror_ready() {
  local dir=$WORK/$1/mirror state pid
  for _ in $(seq 120); do
    state=$(cat "$dir/state" 2>/dev/null)
    [ "$state" = refused ] && return 1
    if [ "$state" = started ]; then
      pid=$(cat "$dir/service-mirror.pid")
      kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/service-mirror.log" >&2; printf '[mirror] FAILED: %s: the service mirror exited\n' "$1" >&2; return 1; }
      return 0
    fi
    sleep 1
  done
  printf '[mirror] FAILED: %s: the service mirror never started (%s)\n' "$1" "$state" >&2
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "${1:-}" = --check ] || { echo "usage: $0 --check" >&2; exit 2; }
  B=${E2E_CACHE:-$HOME/.cache/aes-linkerd2}/bin
  mirror_check
  [ -n "$MIRROR_BINARY" ] && echo "service mirror: $MIRROR_BINARY"
  [ -n "$MIRROR_BINARY" ]
fi
