# e2e/cluster.sh - sourced by the end-to-end scripts: a Kubernetes control plane on loopback.
#
#   start_cluster NAME SERVICE_CIDR POD_CIDR   etcd, kube-apiserver, controller-manager, scheduler and
#                                             kwok with three nodes; adds context NAME to $KUBECONFIG
#   check_loopback NAME                       every ClusterIP and node address is on 127.0.0.0/8
#
# Needs: $B (the tool cache's bin), $WORK (a scratch folder), $KUBECONFIG (the file to write),
# $KWOK_STAGES, and a PIDS array the caller kills on exit.
#
# Nothing may leave loopback: the API server calls webhooks and conversion services at their
# Service's ClusterIP, so the service range is inside 127.0.0.0/8 (a call with no server behind it
# ends at once on this machine); kwok gives nodes a loopback IP and pods a loopback range, and
# nothing here dials a pod.

# Ports below the kernel's ephemeral range: one from there can be taken by an outgoing connection
# between its choice and the bind (tests/ports.py says more). `free_port N` prints N distinct ones.
PORTS_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/ports.py"
free_port() { python3 "$PORTS_PY" "${1:-1}"; }

# kwok's fast stages make a pod Ready the instant it is bound; pulumi-kubernetes then sometimes
# never sees a Deployment become available (seen here: one of ~40 awaited for 10 minutes though
# Ready). Pods take a second or two to start here, as they would on a real node.
slow_stages() {
  python3 - "$KWOK_STAGES" "$WORK/kwok-stages.yaml" <<'EOF'
import sys, yaml
stages = [s for s in yaml.safe_load_all(open(sys.argv[1])) if s]
for stage in stages:
    if stage["metadata"]["name"] == "pod-ready":
        stage["spec"]["delay"] = {"durationMilliseconds": 1000, "jitterDurationMilliseconds": 2000}
yaml.safe_dump_all(stages, open(sys.argv[2], "w"), sort_keys=False)
EOF
}

start_cluster() {
  local name=$1 service_cidr=$2 pod_cidr=$3 dir="$WORK/$1" etcd_port peer_port api_port n
  mkdir -p "$dir"
  read -r etcd_port peer_port api_port <<< "$(free_port 3 | tr '\n' ' ')"
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  echo "$name-token,admin,admin,system:masters" > "$dir/tokens.csv"
  # The PR preview's identity, with no group: only what deploy/preview-rbac.yaml grants it.
  echo "$name-preview-token,aes-linkerd2-preview,aes-linkerd2-preview" >> "$dir/tokens.csv"
  "$B/etcd" --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    > "$dir/etcd.log" 2>&1 & PIDS+=($!)
  "$B/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$dir/certs" --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-cluster-ip-range "$service_cidr" --advertise-address 127.0.0.1 > "$dir/apiserver.log" 2>&1 & PIDS+=($!)
  "$B/kubectl" config set-cluster "$name" --server "https://127.0.0.1:$api_port" --insecure-skip-tls-verify=true >/dev/null
  "$B/kubectl" config set-credentials "$name" --token "$name-token" >/dev/null
  "$B/kubectl" config set-context "$name" --cluster "$name" --user "$name" >/dev/null
  local k=("$B/kubectl" --context "$name")
  for _ in $(seq 120); do "${k[@]}" get --raw /readyz >/dev/null 2>&1 && break; sleep 1; done
  if grep -q "RequestWatchProgress feature is not supported" "$dir/apiserver.log"; then
    echo "WARNING: $("$B/etcd" --version | head -1) cannot serve watch progress requests: every informer of" >&2
    echo "  the controllers and kwok will back off and rollouts take minutes (build etcd 3.6 from the module proxy:" >&2
    echo "  ETCD_SOURCE=go E2E_TOOLS=etcd e2e/build-tools.sh)" >&2
  fi
  # The controllers read a kubeconfig whose current context is this cluster.
  "$B/kubectl" config view --minify --flatten --context "$name" > "$dir/kubeconfig"
  local common=(--kubeconfig "$dir/kubeconfig" --authentication-kubeconfig "$dir/kubeconfig"
    --authorization-kubeconfig "$dir/kubeconfig" --leader-elect=false --bind-address 127.0.0.1 --secure-port 0)
  "$B/kube-controller-manager" "${common[@]}" --service-account-private-key-file "$dir/sa.key" \
    --root-ca-file "$dir/certs/apiserver.crt" > "$dir/kcm.log" 2>&1 & PIDS+=($!)
  "$B/kube-scheduler" "${common[@]}" > "$dir/scheduler.log" 2>&1 & PIDS+=($!)
  [ -f "$WORK/kwok-stages.yaml" ] || slow_stages
  "$B/kwok" --kubeconfig "$dir/kubeconfig" --manage-all-nodes=true --config "$WORK/kwok-stages.yaml" \
    --node-ip 127.0.0.1 --cidr "$pod_cidr" --server-address 127.0.0.1:0 > "$dir/kwok.log" 2>&1 & PIDS+=($!)
  for n in 1 2 3; do
    "${k[@]}" apply -f - >/dev/null <<N
apiVersion: v1
kind: Node
metadata: {name: $name-$n, annotations: {kwok.x-k8s.io/node: fake}, labels: {kubernetes.io/hostname: $name-$n, kubernetes.io/os: linux, kubernetes.io/arch: amd64}}
status: {allocatable: {cpu: "32", memory: 256Gi, pods: "110"}, capacity: {cpu: "32", memory: 256Gi, pods: "110"}}
N
  done
  for _ in $(seq 60); do "${k[@]}" get sa default >/dev/null 2>&1 && break; sleep 1; done
  "${k[@]}" wait --for=condition=Ready node --all --timeout=60s >/dev/null
}

check_loopback() {
  local name=$1
  "$B/kubectl" --context "$name" get svc,nodes -A -o json | python3 -c '
import ipaddress, json, sys
loopback = ipaddress.ip_network("127.0.0.0/8")
bad = []
for item in json.load(sys.stdin)["items"]:
    addresses = [a["address"] for a in item.get("status", {}).get("addresses", []) if a["type"].endswith("IP")]
    addresses += [ip for ip in item.get("spec", {}).get("clusterIPs", []) if ip != "None"]
    where = item["kind"] + "/" + item["metadata"]["name"]
    bad += [where + ": " + a for a in addresses if ipaddress.ip_address(a) not in loopback]
if bad:
    sys.exit("off loopback: " + ", ".join(bad))
' || { echo "REFUSING TO GO ON: cluster $name has addresses off loopback" >&2; exit 1; }
}
