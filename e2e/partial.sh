#!/usr/bin/env bash
# The part of the end-to-end tier that can run here: the real Pulumi engine and Kubernetes provider
# against a local API server (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes), for
# the components that need neither the linkerd CLI nor pulumi-command (both refused by the Go
# module proxy). Tools come from e2e/build-tools.sh's cache. Checks the live objects, not what
# Pulumi reports: up, no-change preview, second up, refresh, destroy.
#   e2e/partial.sh            (about 3 minutes; needs: E2E_TOOLS="pulumi pulumi-python kubernetes kube etcd kwok")
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${E2E_CACHE:-$HOME/.cache/linkerd-aes-e2e}
E2E_TOOLS="pulumi pulumi-python kubernetes kube etcd kwok" e2e/build-tools.sh --check >/dev/null \
  || { echo "e2e/partial.sh: the tool cache is incomplete: run E2E_TOOLS=\"pulumi pulumi-python kubernetes kube etcd kwok\" e2e/build-tools.sh" >&2; exit 2; }
scripts/setup
# shellcheck disable=SC1091
. "$CACHE/versions.env"
B=$E2E_BIN
WORK=$(mktemp -d /tmp/aes-linkerd2-partial.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK" "$ROOT/e2e/partial/Pulumi.partial.yaml"
}
trap cleanup EXIT
say() { printf '[partial] %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- a cluster on loopback ------------------------------------------------------------------
ETCD_PORT=$(free_port); PEER_PORT=$(free_port); API_PORT=$(free_port)
openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
openssl rsa -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null
echo "partial-token,admin,admin,system:masters" > "$WORK/tokens.csv"
"$B/etcd" --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" > "$WORK/etcd.log" 2>&1 & PIDS+=($!)
"$B/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 127.0.0.1 --secure-port "$API_PORT" \
  --cert-dir "$WORK/certs" --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$WORK/sa.pub" \
  --service-account-signing-key-file "$WORK/sa.key" --token-auth-file "$WORK/tokens.csv" --authorization-mode RBAC \
  --service-cluster-ip-range 10.96.0.0/16 --advertise-address 127.0.0.1 > "$WORK/apiserver.log" 2>&1 & PIDS+=($!)
cat > "$WORK/kubeconfig" <<K
apiVersion: v1
kind: Config
clusters: [{name: partial, cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: partial-token}}]
contexts: [{name: partial, context: {cluster: partial, user: admin}}]
current-context: partial
K
export KUBECONFIG=$WORK/kubeconfig
for _ in $(seq 120); do "$B/kubectl" get --raw /readyz >/dev/null 2>&1 && break; sleep 1; done
common=(--kubeconfig "$KUBECONFIG" --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG" --leader-elect=false --bind-address 127.0.0.1 --secure-port 0)
"$B/kube-controller-manager" "${common[@]}" --service-account-private-key-file "$WORK/sa.key" > "$WORK/kcm.log" 2>&1 & PIDS+=($!)
"$B/kube-scheduler" "${common[@]}" > "$WORK/scheduler.log" 2>&1 & PIDS+=($!)
"$B/kwok" --kubeconfig "$KUBECONFIG" --manage-all-nodes=true --config "$KWOK_STAGES" --server-address 127.0.0.1:0 > "$WORK/kwok.log" 2>&1 & PIDS+=($!)
for n in 1 2 3; do
  "$B/kubectl" apply -f - >/dev/null <<N
apiVersion: v1
kind: Node
metadata: {name: fake-$n, annotations: {kwok.x-k8s.io/node: fake}, labels: {kubernetes.io/hostname: fake-$n}}
status: {allocatable: {cpu: "32", memory: 256Gi, pods: "110"}, capacity: {cpu: "32", memory: 256Gi, pods: "110"}}
N
done
say "cluster up: $("$B/kubectl" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'), 3 kwok nodes"

# --- the program on the real engine --------------------------------------------------------
# The language host built here predates Pulumi.yaml's virtualenv option: venv/bin goes first on PATH.
export PATH="$ROOT/venv/bin:$B:$PATH" PULUMI_HOME="$WORK/home" PULUMI_BACKEND_URL="file://$WORK/state"
export PULUMI_CONFIG_PASSPHRASE=partial PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$WORK/state"
cd "$ROOT/e2e/partial"
pulumi stack init partial --non-interactive >/dev/null
pulumi config set context partial --stack partial
timed() { local started=$SECONDS; "$@" > "$WORK/last.log" 2>&1 || { tail -40 "$WORK/last.log" >&2; exit 1; }; echo $((SECONDS - started)); }
live() { "$B/kubectl" get "$@" -o json; }

t_up=$(timed pulumi up --yes --skip-preview --stack partial)
say "up: ${t_up}s"
live svc -n ambassador edge-stack | python3 -c '
import json, sys
service = json.load(sys.stdin)
ports = [(p["name"], p["port"], p.get("targetPort")) for p in service["spec"]["ports"]]
assert ports == [("mc-probe", 80, 8080), ("https", 443, 8443), ("mc-gateway", 4143, 4143)], ports
notes = service["metadata"]["annotations"]
assert notes["mirror.linkerd.io/gateway-identity"] == "edge-stack.ambassador.serviceaccount.identity.linkerd.cluster.local", notes
assert notes["mirror.linkerd.io/probe-path"] == "/-/ambassador/ready" and notes["mirror.linkerd.io/probe-period"] == "3", notes
'
live deploy -n ambassador edge-stack | python3 -c '
import json, sys
notes = json.load(sys.stdin)["spec"]["template"]["metadata"]["annotations"]
expected = {"linkerd.io/inject": "enabled", "config.linkerd.io/skip-inbound-ports": "80,443",
            "config.linkerd.io/proxy-require-identity-inbound-ports": "4143", "config.linkerd.io/enable-gateway": "true"}
assert expected.items() <= notes.items(), notes
'
live ns default | python3 -c 'import json,sys; assert json.load(sys.stdin)["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}'
live svc qotm-linkerd2 | python3 -c 'import json,sys; assert json.load(sys.stdin)["metadata"]["labels"]["mirror.linkerd.io/exported"] == "true"'
live deploy qotm | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"].get("readyReplicas") == 1, d["status"]'
live mappings.getambassador.io -n ambassador public-health-check | python3 -c '
import json, sys
spec = json.load(sys.stdin)["spec"]
assert spec["rewrite"] == "/ambassador/v0/check_ready" and spec["service"] == "localhost:8877" and spec["bypass_auth"] is True, spec
'
say "live objects after up: as the page leaves them"
t_preview=$(timed pulumi preview --expect-no-changes --stack partial)
say "no-change preview: ${t_preview}s"
t_up2=$(timed pulumi up --yes --expect-no-changes --stack partial)
say "second up, no changes: ${t_up2}s"
t_refresh=$(timed pulumi refresh --yes --stack partial)
t_up3=$(timed pulumi up --yes --expect-no-changes --stack partial)
say "refresh (${t_refresh}s), then up without changes: ${t_up3}s"
t_destroy=$(timed pulumi destroy --yes --stack partial)
say "destroy: ${t_destroy}s"
live ns default | python3 -c 'import json,sys; assert not json.load(sys.stdin)["metadata"].get("annotations"), "default keeps an annotation"'
left=$("$B/kubectl" get deploy,svc,crd,mutatingwebhookconfigurations -A -o name | grep -v '^service/kubernetes$' || true)
[ -z "$left" ] || { echo "left behind: $left" >&2; exit 1; }
"$B/kubectl" get ns ambassador >/dev/null 2>&1 && { echo "namespace ambassador left behind" >&2; exit 1; }
say "after destroy: none of the objects left, the default namespace as it was"
say "passed: up ${t_up}s, no-change preview ${t_preview}s, second up ${t_up2}s, refresh ${t_refresh}s, destroy ${t_destroy}s"
